"""`fastha status`: every VRRP instance and real server, from the running daemon."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from fastha.daemon.paths import DEFAULT_CONTROL_SOCKET, default_control_socket
from fastha.vrrp.states import STATE_NAMES

VRRP_STATES = STATE_NAMES


def socket_option(fn: Any) -> Any:
    return click.option(
        "--socket",
        "socket_path",
        default=default_control_socket,
        show_default=f"{DEFAULT_CONTROL_SOCKET}; in a named network namespace "
        "/run/fastha/NAME/control.sock",
        envvar="FASTHA_CONTROL_SOCKET",
        help="the daemon's control socket",
    )(fn)


def ask(socket_path: str, cmd: str) -> Any:
    """The daemon's answer, or exit 1 with the reason."""
    from fastha.runtime.control import ControlError, request_sync

    try:
        return request_sync(socket_path, cmd)
    except ControlError as exc:
        click.echo(f"fastha {cmd}: {exc}", err=True)
        sys.exit(1)


def table(rows: list[list[Any]]) -> str:
    """Left-aligned columns, two spaces apart; the first row is the header."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)) or not ts:
        return "-"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def render(status: dict[str, Any]) -> str:
    out: list[str] = []
    parent = status.get("parent") or {}
    rows: list[list[Any]] = [["CHILD", "PID", "RUNNING", "RESTARTS", "LAST EXIT"]]
    for kind, child in (parent.get("children") or {}).items():
        rows.append(
            [
                kind,
                child.get("pid") or "-",
                "yes" if child.get("running") else "no",
                child.get("restarts", 0),
                child.get("last_exit_status") or "-",
            ]
        )
    out.append(
        f"fastha pid {parent.get('pid')}  config {parent.get('config_file')}  "
        f"reloads {parent.get('reloads', 0)} (refused {parent.get('refused_reloads', 0)})"
    )
    out.append(table(rows))
    _child_table(out, status.get("vrrp"), "VRRP", _vrrp_rows)
    _child_table(out, status.get("check"), "Checkers", _check_rows)
    _child_table(out, status.get("bfd"), "BFD", _bfd_rows)
    return "\n".join(out)


def _child_table(
    out: list[str], child: Any, title: str, rows: Callable[[dict[str, Any]], list[list[Any]]]
) -> None:
    """A child's table (or the error asking it) after a blank line; nothing when the
    status holds nothing for that child."""
    if not isinstance(child, dict):
        return
    out.append("")
    if "error" in child:
        out.append(f"{title}: {child['error']}")
    else:
        out.append(table(rows(child)))


def _vrrp_rows(vrrp: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [
            "INSTANCE",
            "STATE",
            "PRIO",
            "BASE",
            "VRID",
            "IFACE",
            "MASTER",
            "MASTER PRIO",
            "LAST TRANSITION",
            "ADV RX",
            "ADV TX",
            "BECAME MASTER",
            "PRIO 0 RX/TX",
            "DROPPED",
            "VIP CLAIMED",
        ]
    ]
    for entry in vrrp.get("instances") or ():
        d, s = entry.get("data") or {}, entry.get("stats") or {}
        c = entry.get("counters") or {}
        state: Any = d.get("state")  # a number, or absent
        rows.append(
            [
                d.get("iname"),
                VRRP_STATES.get(state, state),
                d.get("effective_priority"),
                d.get("base_priority"),
                d.get("vrid"),
                d.get("ifp_ifname"),
                entry.get("master_address") or "-",
                entry.get("master_priority", "-"),
                _when(entry.get("last_transition")),
                s.get("advert_rcvd", "-"),
                s.get("advert_sent", "-"),
                s.get("become_master", "-"),
                f"{s.get('pri_zero_rcvd', '-')}/{s.get('pri_zero_sent', '-')}",
                sum((c.get("drops") or {}).values()) if c else "-",
                c.get("vip_claimed", "-"),
            ]
        )
    return rows


def _check_rows(check: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [
            "VIRTUAL SERVER",
            "QUORUM",
            "REAL SERVER",
            "HEALTH",
            "WEIGHT",
            "LAST CHECK",
            "CHECKS OK/FAILED",
        ]
    ]
    for vs in check.get("virtual_servers") or ():
        quorum = "up" if vs.get("quorum_up") else "DOWN"
        if vs.get("sorry_server_active"):
            quorum += " (sorry server)"
        for rs in vs.get("real_servers") or ():
            checks = rs.get("checks") or ()
            ok = sum(c.get("successes", 0) for c in checks)
            bad = sum(c.get("failures", 0) for c in checks)
            rows.append(
                [
                    vs.get("vs"),
                    quorum,
                    rs.get("rs"),
                    "UP" if rs.get("alive") else "DOWN",
                    rs.get("weight", "-"),
                    rs.get("last_check") or "-",
                    f"{ok}/{bad}",
                ]
            )
    return rows


def _bfd_rows(bfd: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["BFD", "STATE", "REMOTE", "NEIGHBOR", "LOCAL DIAG", "TX US", "DETECT US", "TX", "RX"]
    ]
    for s in bfd.get("sessions") or ():
        rows.append(
            [
                s.get("name"),
                s.get("state"),
                s.get("remote_state"),
                s.get("neighbor"),
                s.get("local_diag"),
                s.get("tx_interval_us"),
                s.get("detect_time_us"),
                s.get("sent"),
                s.get("received"),
            ]
        )
    return rows


@click.command("status")
@socket_option
@click.option("--json", "as_json", is_flag=True, help="the daemon's answer as JSON")
def command(socket_path: str, as_json: bool) -> None:
    """Show VRRP instances, real servers and children of the running daemon."""
    status = ask(socket_path, "status")
    if as_json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(status, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        click.echo(render(status))
