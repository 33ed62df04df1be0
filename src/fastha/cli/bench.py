"""`fastha bench ...`: each benchmark is a module in fastha.bench exposing `command`."""

from __future__ import annotations

import importlib.util
import sys

import click

from fastha.cli.lazy import LazyGroup

BENCHES: dict[str, str] = {
    "codec": "fastha.bench.codec:command",
    "timer": "fastha.bench.timer:command",
    "failover": "fastha.bench.failover:command",
    "jitter": "fastha.bench.jitter:command",
    "scale": "fastha.bench.scale:command",
}


def _need(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        click.echo(f"fastha bench: {why} needs {module}, which is not installed: "
                   "pip install 'fastha[bench]'", err=True)  # fmt: skip
        sys.exit(1)


@click.group(cls=LazyGroup, lazy=BENCHES)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Measure fastha on this machine (figures and in-run ratios)."""
    # Said before a lab is built, not after a run: the tables need rich, plots matplotlib.
    if ctx.resilient_parsing or any(a in ("-h", "--help") for a in ctx.args):
        return
    _need("rich", "the benches' live tables")
    if any(a == "--plot" or a.startswith("--plot=") for a in ctx.args):
        _need("matplotlib", "--plot")
