"""`fastha lab up|down|status`: a VRRP lab in network namespaces (fastha.bench.lab).

fastha lab up                    # 2 fastha directors + client; Ctrl-C tears it down
fastha lab up --detach           # leave it running; `fastha lab down` later
fastha lab up --keepalived       # and a keepalived director in the same VRRP group
fastha lab status [NAME] [--json]
fastha lab down [NAME | --all]
"""

from __future__ import annotations

import json
import os
import time

import click

from fastha.bench.failover import vrrp_version
from fastha.bench.lab import (
    STATE_DIRS,
    Lab,
    LabError,
    LabSpec,
    default_directors,
    teardown_on_signals,
)

DEFAULT_NAME = "fhlab"


def _need_root() -> None:
    if os.geteuid() != 0:
        raise click.ClickException("needs root (network namespaces)")


def _names() -> list[str]:
    return sorted({p.stem for d in STATE_DIRS if d.is_dir() for p in d.glob("*.json")})


def _print_status(lab: Lab, as_json: bool) -> None:
    st = lab.status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(
        f"lab {st['name']}: VRRPv{st['version']}, advert_int {st['advert_int']:g} s, "
        f"{st['instances']} instance(s), VIPs {', '.join(st['vips'][:4])}"
        f"{' ...' if len(st['vips']) > 4 else ''}"
    )
    for name, n in st["nodes"].items():
        ns = n["namespace"] + ("" if n["present"] else " (gone)")
        if "impl" in n:
            states = ",".join(sorted(set(n["states"].values()))) or "-"
            run = f"pid {n['pid']}" if n["running"] else "not running"
            click.echo(
                f"  {name:8} {n['impl']:10} prio {n['priority']:3}  {n['ipv4']:13} {states:14} "
                f"{run:14} ip netns exec {ns} ..."
            )
        else:
            click.echo(
                f"  {name:8} {'client':10} {'':8}  {n['ipv4']:13} {'':14} {'':14} "
                f"ip netns exec {ns} ..."
            )
    click.echo(f"  state {st['state_file']}, logs under {st['workdir']}")


@click.group("lab")
def command() -> None:
    """A namespace lab: a bridge, VRRP directors, a client (198.18.0.0/15 only)."""


@command.command("up")
@click.option(
    "--name", default=DEFAULT_NAME, show_default=True, help="Lab name (namespace prefix)."
)
@click.option(
    "--nodes", default=2, show_default=True, help="fastha directors (a: 150, b: 100, c: 90 ...)."
)
@click.option("--keepalived", is_flag=True, help="Add a keepalived director (k: 50) to the group.")
@click.option(
    "--vrrp-version", "version", type=click.Choice(["2", "3"]), default="3", show_default=True
)
@click.option(
    "--advert-int", default=0.1, show_default=True, help="Seconds (VRRPv2: whole seconds)."
)
@click.option("--instances", default=1, show_default=True, help="VRRP instances per director.")
@click.option("--detach", is_flag=True, help="Leave the lab running; `fastha lab down` removes it.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a master.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up(
    name: str,
    nodes: int,
    keepalived: bool,
    version: str,
    advert_int: float,
    instances: int,
    detach: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Build the lab and start the daemons; without --detach, hold it until Ctrl-C."""
    _need_root()
    if not 1 <= nodes <= 10:
        raise click.BadParameter("--nodes: 1..10")
    try:
        spec = LabSpec(
            name=name,
            directors=default_directors(nodes, "fastha", keepalived),
            version=vrrp_version(version),
            advert_int=advert_int,
            instances=instances,
        )
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    lab = Lab(spec)
    keep = False  # only a lab that came up and is detached outlives this command
    with teardown_on_signals():
        try:
            lab.up()
            lab.wait_master(spec.directors[0].name, timeout=timeout)
            _print_status(lab, as_json)
            if detach:
                keep = True
                return
            click.echo("holding the lab; Ctrl-C (or SIGTERM) tears it down", err=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
        except LabError as e:
            raise click.ClickException(str(e)) from None
        finally:
            if not keep:
                removed = lab.down()
                click.echo(f"lab {name} down ({len(removed)} namespaces removed)", err=True)


@command.command("down")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every lab with a state file.")
def down(name: str | None, all_: bool) -> None:
    """Stop the daemons, delete the namespaces, the logs and the state file."""
    _need_root()
    names = _names() if all_ else [name or DEFAULT_NAME]
    failed = False
    for n in names:
        try:
            lab = Lab.load(n)
        except LabError as e:
            click.echo(str(e), err=True)
            failed = True
            continue
        removed = lab.down()
        click.echo(f"lab {n} down: removed {', '.join(removed) or 'nothing (already gone)'}")
    if failed:
        raise SystemExit(1)


@command.command("status")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(name: str | None, as_json: bool) -> None:
    """Namespaces, daemons and their VRRP states (from their logs)."""
    names = [name] if name else _names()
    if not names:
        click.echo("no labs")
        return
    for n in names:
        try:
            _print_status(Lab.load(n), as_json)
        except LabError as e:
            raise click.ClickException(str(e)) from None
