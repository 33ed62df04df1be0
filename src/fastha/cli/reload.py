"""`fastha reload`: as SIGHUP, but says whether the new file was accepted and why not."""

from __future__ import annotations

import sys

import click

from fastha.cli.status import ask, socket_option


@click.command("reload")
@socket_option
def command(socket_path: str) -> None:
    """Validate and apply the configuration file; exit 1 (errors listed) if refused."""
    outcome = ask(socket_path, "reload")
    for line in outcome.get("warnings") or ():
        click.echo(line, err=True)
    if outcome.get("accepted"):
        click.echo(f"reloaded; children signalled: {outcome.get('signalled')}")
        return
    for line in outcome.get("errors") or ():
        click.echo(line, err=True)
    click.echo("reload refused; the running configuration is unchanged", err=True)
    sys.exit(1)
