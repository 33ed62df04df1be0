"""The `fastha` entry point.

Subcommands live one per module in `fastha.cli` and are imported only when invoked,
so `fastha --version` and `fastha check-config` never pay for uvloop or scapy.

`main` is the click group; `run` (the `fastha` executable) runs it and turns a missing optional dependency (the
`bench` extra: rich, matplotlib, scapy) into one line saying what to install.
"""

from __future__ import annotations

import sys

import click

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

# Modules that only an extra installs: top-level module -> (extra, PyPI name).
OPTIONAL: dict[str, tuple[str, str]] = {
    "rich": ("bench", "rich"),
    "matplotlib": ("bench", "matplotlib"),
    "scapy": ("bench", "scapy"),
}


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """click's version_option, with the version read only when asked for: the daemon's
    parent runs this group, and the package metadata costs it ~6 MB (fastha.__init__)."""
    if not value or ctx.resilient_parsing:
        return
    from fastha import __version__

    click.echo(f"fastha, version {__version__}")
    ctx.exit()


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and exit.",
)
def main() -> None:
    """fastha: keepalived-compatible VRRP and LVS health checking, measured."""


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one line to print for an optional module that is not installed, else None."""
    top = (exc.name or "").partition(".")[0]
    if top not in OPTIONAL:
        return None
    extra, package = OPTIONAL[top]
    return (
        f"fastha: this command needs {package}, which is not installed: "
        f"pip install 'fastha[{extra}]'"
    )


def run(args: list[str] | None = None) -> None:
    try:
        main.main(args=args, prog_name="fastha")
    except ModuleNotFoundError as exc:
        line = missing_extra(exc)
        if line is None:
            raise
        click.echo(line, err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
