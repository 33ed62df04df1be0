"""The `fastha` entry point.

Subcommands live one per module in `fastha.cli` and are imported only when invoked,
so `fastha --version` and `fastha check-config` never pay for uvloop or scapy.
"""

from __future__ import annotations

import importlib

import click

from fastha import __version__

# command name -> module in fastha.cli exposing `command`
COMMANDS: dict[str, str] = {
    "decode": "decode",
    "bench": "bench",
    "check-config": "check_config",
    "daemon": "daemon",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        try:
            mod = importlib.import_module(f"fastha.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fastha.cli.{module}":
                return None  # command not built yet
            raise
        return mod.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="fastha")
def main() -> None:
    """fastha: keepalived-compatible VRRP and LVS health checking, measured."""


if __name__ == "__main__":
    main()
