"""keepalived's SIGUSR1 / SIGUSR2 files, as text close to keepalived's (vrrp_print.c,
check_data.c), so tools that parse them (keepalived-exporter's text mode, scripts that
grep `State = MASTER`) keep working.

    SIGUSR1 -> /tmp/keepalived.data        the VRRP child's topology
               /tmp/keepalived_check.data  the checker child's virtual/real servers
    SIGUSR2 -> /tmp/keepalived.stats       the VRRP child's counters

Built from the children's `status` answers (no second source of truth) and written
with `fastha.drivers.files.write_atomic` (as keepalived's fopen_safe: a random O_EXCL
temporary renamed over the target, mode 0644, in a directory checked from `/`): a
symlink or file planted in /tmp is replaced, never followed or reused, and a reader
never sees half a file. An unsafe directory is refused and logged.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from fastha.drivers.files import write_atomic
from fastha.vrrp.states import STATE_NAMES

log = logging.getLogger("fastha.daemon")

DATA_FILE = "/tmp/keepalived.data"
STATS_FILE = "/tmp/keepalived.stats"
CHECK_DATA_FILE = "/tmp/keepalived_check.data"
_STATES = STATE_NAMES


def check_data_file(data_file: str) -> str:
    """The checker's data file beside the VRRP one: keepalived.data -> keepalived_check.data."""
    root, ext = os.path.splitext(data_file)
    return f"{root}_check{ext or '.data'}"


def write_text(path: str, text: str | bytes) -> bool:
    """Every dump file is written here; False (logged) when refused or failed."""
    try:
        write_atomic(path, text.encode() if isinstance(text, str) else text, 0o644)
    except OSError as exc:
        log.error("Cannot write %s: %s", path, exc)
        return False
    return True


def _when(ts: float | None) -> str:
    if not ts:
        return "0 (Thu Jan  1 00:00:00 1970)"
    frac = f"{ts % 1:.6f}"[1:]
    return (
        f"{ts:.6f} ({time.strftime('%a %b %e %H:%M:%S', time.localtime(ts))}{frac} "
        f"{time.strftime('%Y', time.localtime(ts))})"
    )


def _globals(config: Any) -> list[str]:
    g = config.global_defs
    out = ["------< Global definitions >------"]
    out.append(f" Router ID = {g.router_id or os.uname().nodename}")
    if g.smtp_server:
        out.append(f" Smtp server = {g.smtp_server}")
        out.append(f" Smtp server port = {g.smtp_server_port}")
    if g.notification_emails:
        out.append(" Email notification(s):")
        out.extend(f"   {e}" for e in g.notification_emails)
    return out


def vrrp_data_text(config: Any, status: dict[str, Any]) -> str:
    """keepalived's dump_data_vrrp(): global definitions, then one block per instance."""
    out = _globals(config)
    groups = status.get("sync_groups") or []
    if groups:
        out.append("------< VRRP Sync groups >------")
        for g in groups:
            out.append(f" VRRP Sync Group = {g['name']}, {g['state']}")
            out.append("   VRRP member instances :")
            out.extend(f"     {m}" for m in g["members"])
    out.append("------< VRRP Topology >------")
    for e in status.get("instances") or []:
        d = e["data"]
        out.append(f" VRRP Instance = {d['iname']}")
        out.append(f"   VRRP Version = {d['version']}")
        out.append(f"   State = {_STATES.get(d['state'], d['state'])}")
        out.append(f"   Wantstate = {e.get('wantstate', '-')}")
        out.append(f"   Last transition = {_when(e.get('last_transition'))}")
        out.append(f"   Interface = {d['ifp_ifname']}")
        if e.get("sync_group"):
            out.append(f"   Sync group = {e['sync_group']}")
        out.append(f"   Virtual Router ID = {d['vrid']}")
        out.append(f"   Priority = {d['base_priority']}")
        out.append(f"   Effective priority = {d['effective_priority']}")
        if e.get("master_address"):
            out.append(f"   Master router = {e['master_address']}")
        out.append(f"   Master priority = {e.get('master_priority', 0)}")
        adv = d["adver_int"]
        # vrrp_data.c: whole seconds for v2, milliseconds for v3
        if d["version"] == 2:
            out.append(f"   Advert interval = {int(adv)} sec")
        else:
            out.append(f"   Advert interval = {round(adv * 1000)} milli-sec")
        out.append(f"   Accept = {'enabled' if d['accept'] else 'disabled'}")
        out.append(f"   Preempt = {'disabled' if d['nopreempt'] else 'enabled'}")
        out.append(f"   Preempt delay = {d['preempt_delay']} secs")
        out.append(f"   Gratuitous ARP delay = {d['garp_delay']:g}")
        out.append(f"   Gratuitous ARP repeat = {d['garp_rep']}")
        out.append(f"   Authentication type = {d.get('auth_type') or 'none'}")
        vips = d.get("vips") or []
        out.append(f"   Virtual IP ({len(vips)}):")
        out.extend(f"     {v}" for v in vips)
        evips = d.get("evips") or []
        if evips:
            out.append(f"   Virtual IP Excluded ({len(evips)}):")
            out.extend(f"     {v}" for v in evips)
        for key, label in (
            ("script_master", "Master"),
            ("script_backup", "Backup"),
            ("script_fault", "Fault"),
            ("script_stop", "Stop"),
            ("script", "Generic"),
        ):
            if d.get(key):
                out.append(f"   {label} state transition script = {d[key]}")
    return "\n".join(out) + "\n"


def vrrp_stats_text(status: dict[str, Any]) -> str:
    """keepalived's vrrp_print_stats(): the layout keepalived-exporter parses."""
    out: list[str] = []
    for e in status.get("instances") or []:
        s = e["stats"]
        out += [
            f"VRRP Instance: {e['data']['iname']}",
            "  Advertisements:",
            f"    Received: {s['advert_rcvd']}",
            f"    Sent: {s['advert_sent']}",
            f"  Became master: {s['become_master']}",
            f"  Released master: {s['release_master']}",
            "  Packet Errors:",
            f"    Length: {s['packet_len_err']}",
            f"    TTL: {s['ip_ttl_err']}",
            f"    Invalid Type: {s['invalid_type_rcvd']}",
            f"    Advertisement Interval: {s['advert_interval_err']}",
            f"    Address List: {s['addr_list_err']}",
            "  Authentication Errors:",
            f"    Invalid Type: {s['invalid_authtype']}",
            f"    Type Mismatch: {s['authtype_mismatch']}",
            f"    Failure: {s['auth_failure']}",
            "  Priority Zero:",
            f"    Received: {s['pri_zero_rcvd']}",
            f"    Sent: {s['pri_zero_sent']}",
        ]
    return "\n".join(out) + ("\n" if out else "")


def checker_data_text(config: Any, status: dict[str, Any]) -> str:
    """keepalived's dump_data_check(): virtual servers, real servers, their checkers."""
    out = _globals(config)
    out.append("------< LVS Topology >------")
    for vs in status.get("virtual_servers") or []:
        out.append(f" VS = {vs['vs']}")
        out.append(f"   Quorum = {vs['quorum']}, hysteresis = {vs['hysteresis']}")
        out.append(f"   Quorum state = {'UP' if vs['quorum_up'] else 'DOWN'}")
        if vs.get("sorry_server_active"):
            out.append("   Sorry server in use")
        for rs in vs.get("real_servers") or []:
            out.append(f"   RS = {rs['rs']}")
            out.append(f"     Alive = {'yes' if rs['alive'] else 'no'}")
            out.append(f"     Weight = {rs['weight']}")
            out.append(f"     Inhibit on failure = {'yes' if rs['inhibit_on_failure'] else 'no'}")
            out.append(f"     Last check = {rs['last_check']}")
            for c in rs.get("checks") or []:
                out.append(
                    f"     Checker = {c['check']}: {c['state']}, "
                    f"{c['successes']} ok / {c['failures']} failed"
                    + (", suspended" if c.get("suspended") else "")
                )
    return "\n".join(out) + "\n"
