"""`fastha dump`: the running configuration and each child's state, as JSON."""

from __future__ import annotations

import sys

import click

from fastha.cli.status import ask, socket_option


@click.command("dump")
@socket_option
def command(socket_path: str) -> None:
    """Print the daemon's running configuration and children's dumps as JSON."""
    import orjson

    sys.stdout.buffer.write(orjson.dumps(ask(socket_path, "dump"), option=orjson.OPT_INDENT_2))
    sys.stdout.buffer.write(b"\n")
