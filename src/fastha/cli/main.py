"""The `fastha` entry point.

Subcommands live one per module in `fastha.cli` and are imported only when invoked,
so `fastha --version` and `fastha check-config` never pay for uvloop or scapy.
"""

from __future__ import annotations

import click

from fastha import __version__
from fastha.cli.lazy import LazyGroup

COMMANDS: dict[str, str] = {
    "decode": "fastha.cli.decode:command",
    "bench": "fastha.cli.bench:command",
    "check-config": "fastha.cli.check_config:command",
    "daemon": "fastha.cli.daemon:command",
    "status": "fastha.cli.status:command",
    "reload": "fastha.cli.reload:command",
    "dump": "fastha.cli.dump:command",
    "lab": "fastha.cli.lab:command",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="fastha")
def main() -> None:
    """fastha: keepalived-compatible VRRP and LVS health checking, measured."""


if __name__ == "__main__":
    main()
