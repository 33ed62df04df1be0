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
    "checkers": "fastha.bench.checkers:command",
    "bfd": "fastha.bench.bfd:command",
}


def _need(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        click.echo(
            f"fastha bench: {why} needs {module}, which is not installed: "
            "pip install 'fastha[bench]'",
            err=True,
        )
        sys.exit(1)


class BenchGroup(LazyGroup):
    """Keeps the words after `bench` for the check below (click hands the group's
    callback none of them)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["fastha.bench.args"] = list(args)
        return super().parse_args(ctx, args)


@click.group(cls=BenchGroup, lazy=BENCHES)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Measure fastha on this machine (figures and in-run ratios)."""
    # Said before a lab is built, not after a run: the tables need rich, plots matplotlib.
    args = ctx.meta.get("fastha.bench.args", [])
    if ctx.resilient_parsing or any(a in ("-h", "--help") for a in args):
        return
    _need("rich", "the benches' live tables")
    if any(a == "--plot" or a.startswith("--plot=") for a in args):
        _need("matplotlib", "--plot")
