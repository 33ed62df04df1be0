"""`fastha daemon`: keepalived's command line. For now only `-t` (config test) runs."""

from __future__ import annotations

import sys

import click

NOT_YET = (
    "fastha daemon: running the daemon is not yet available; "
    "only the configuration test works: fastha daemon -t [-f FILE] [-i ID]"
)


@click.command(
    "daemon",
    # keepalived's other flags (-D, -l, -n, ...) are accepted and answered below.
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.option(
    "-f",
    "--use-file",
    "path",
    default="/etc/keepalived/keepalived.conf",
    show_default=True,
    help="configuration file",
)
@click.option("-i", "--config-id", default=None, help="select @id conditional lines")
@click.option("-t", "--config-test", is_flag=True, help="check the configuration and exit")
@click.pass_context
def command(ctx: click.Context, path: str, config_id: str | None, config_test: bool) -> None:
    """Run as keepalived would (-f/--use-file, -i/--config-id, -t/--config-test)."""
    if not config_test:
        click.echo(NOT_YET, err=True)
        sys.exit(1)
    from fastha.cli.check_config import run_check

    # keepalived -t ignores its logging/foreground flags; so do we.
    sys.exit(run_check(path, config_id, dump=False))
