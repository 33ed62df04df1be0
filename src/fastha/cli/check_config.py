"""`fastha check-config`: keepalived -t, with every problem as `file:line: message`."""

from __future__ import annotations

import sys

import click

from fastha.config.diagnostics import ExitCode


def run_check(path: str, config_id: str | None, dump: bool, all_config: bool = False) -> int:
    from fastha.config.dump import dumps
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    result = load(
        path, config_id if config_id is not None else default_config_id(), all_config=all_config
    )
    for diag in result.diagnostics:
        # Every line is `file:line: severity: message`; a problem of the whole file
        # (it cannot be read) has no line.
        click.echo(str(diag) if diag.where is not None else f"{path}: {diag}", err=True)
    if dump and result.config is not None:
        sys.stdout.buffer.write(dumps(result.config) + b"\n")
    if result.exit_code == ExitCode.OK:
        click.echo(f"{path}: configuration OK", err=True)
    return int(result.exit_code)


@click.command("check-config")
@click.option(
    "-f",
    "--use-file",
    "path",
    default="/etc/keepalived/keepalived.conf",
    show_default=True,
    type=click.Path(dir_okay=True),
    help="configuration file",
)
@click.option("-i", "--config-id", default=None, help="select @id conditional lines")
@click.option(
    "-e",
    "--all-config",
    is_flag=True,
    help="every include must exist and be readable (keepalived -e)",
)
@click.option("--dump", is_flag=True, help="print the resolved model as JSON")
def command(path: str, config_id: str | None, all_config: bool, dump: bool) -> None:
    """Check a keepalived.conf; exit codes as keepalived -t (0, 4, 5, 6)."""
    sys.exit(run_check(path, config_id, dump, all_config))
