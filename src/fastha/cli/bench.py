"""`fastha bench ...`: each benchmark is a module in fastha.bench exposing `command`."""

from __future__ import annotations

import click

from fastha.cli.lazy import LazyGroup

BENCHES: dict[str, str] = {
    "codec": "fastha.bench.codec:command",
    "timer": "fastha.bench.timer:command",
    "failover": "fastha.bench.failover:command",
    "jitter": "fastha.bench.jitter:command",
    "scale": "fastha.bench.scale:command",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def command() -> None:
    """Measure fastha on this machine (figures and in-run ratios)."""
