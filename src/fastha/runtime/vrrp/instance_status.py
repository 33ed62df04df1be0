"""One instance's entry in keepalived's JSON signal output (vrrp_json.c), with fastha's
own summary beside it."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastha.runtime.vrrp.from_config import InstanceSpec
    from fastha.vrrp.fsm import Machine


def instance_status(
    name: str, spec: InstanceSpec, m: Machine, vips_installed: bool, vmac: str | None
) -> dict[str, Any]:
    """keepalived's JSON signal entry (vrrp_json.c): {"data": ..., "stats": ...}.

    Field names and meanings are keepalived's (state as VRRP_STATE_* numbers)."""
    p = spec.params
    c = m.counters
    drops = dict(c.drops)
    scripts = spec.notify
    data: dict[str, Any] = {
        "iname": name,
        "dont_track_primary": int(p.dont_track_primary),
        "skip_check_adv_addr": int(p.skip_check_adv_addr),
        "strict_mode": int(p.strict),
        "ifp_ifname": spec.ifname,
        "garp_delay": p.garp_master_delay_ns / 1e9,
        "garp_refresh": p.garp_master_refresh_ns // 1_000_000_000,
        "garp_rep": p.garp_master_repeat,
        "garp_refresh_rep": p.garp_master_refresh_repeat,
        "vrid": p.vrid,
        "base_priority": p.priority,
        "effective_priority": m.effective_priority,
        "vipset": vips_installed,
        "adver_int": p.adver_int_cs / 100,
        "accept": int(p.accept if p.accept is not None else not p.strict),
        "nopreempt": p.nopreempt,
        "preempt_delay": p.preempt_delay_ns // 1_000_000_000,
        "state": int(m.state),
        "version": p.version,
    }
    if vmac is not None:
        data["vmac_ifname"] = vmac
    for key, field_name in (
        ("BACKUP", "script_backup"),
        ("MASTER", "script_master"),
        ("FAULT", "script_fault"),
        ("STOP", "script_stop"),
        ("", "script"),
        ("MASTER_RX_LOWER_PRI", "script_master_rx_lower_pri"),
    ):
        if key in scripts:
            data[field_name] = " ".join(scripts[key].argv)
    for field_name, items in (
        ("vips", spec.vips),
        ("evips", spec.excluded),
    ):
        if items:
            data[field_name] = [_format_address(v, vips_installed) for v in items]
    if spec.track_interfaces:
        data["track_ifp"] = [t[0] for t in spec.track_interfaces]
    if spec.track_scripts:
        data["track_script"] = [t.name for t in spec.track_scripts]
    data["auth_type"] = spec.auth_type
    stats = {
        "advert_rcvd": c.advert_rcvd,
        "advert_sent": c.advert_sent,
        "become_master": c.become_master,
        "release_master": c.release_master,
        "packet_len_err": drops.get("LENGTH", 0) + drops.get("TOO_SHORT", 0),
        "advert_interval_err": drops.get("ADVER_INT", 0),
        "ip_ttl_err": drops.get("TTL", 0),
        "invalid_type_rcvd": drops.get("TYPE", 0),
        "addr_list_err": drops.get("ADDRESS_LIST", 0) + drops.get("ADDRESS_COUNT", 0),
        "invalid_authtype": drops.get("AUTH_TYPE", 0),
        "authtype_mismatch": drops.get("AUTH_TYPE", 0),
        "auth_failure": drops.get("AUTH_FAILURE", 0),
        "pri_zero_rcvd": c.pri_zero_rcvd,
        "pri_zero_sent": c.pri_zero_sent,
    }
    return {
        "data": data,
        "stats": stats,
        # fastha's own summary beside keepalived's objects: state by name and every
        # drop reason, including those keepalived has no counter for.
        "name": name,
        "state": m.state.name,
        "priority": p.priority,
        "effective_priority": m.effective_priority,
        "vrid": p.vrid,
        "interface": spec.ifname,
        "counters": {
            "advert_rcvd": c.advert_rcvd,
            "advert_sent": c.advert_sent,
            "become_master": c.become_master,
            "release_master": c.release_master,
            "pri_zero_rcvd": c.pri_zero_rcvd,
            "pri_zero_sent": c.pri_zero_sent,
            "vip_claimed": c.vip_claimed,
            "vip_claim_ignored": c.vip_claim_ignored,
            "drops": drops,
        },
    }


_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def _format_address(v: Any, is_set: bool) -> str:
    """keepalived's format_ipaddress() (vrrp_ipaddress.c), as its JSON dump writes a VIP."""
    out = f"{v.address}/{v.prefixlen}"
    six = v.family == socket.AF_INET6
    if not six and v.broadcast:
        out += f" brd {v.broadcast}"
    out += f" dev {v.dev}"
    scope = v.scope if v.scope is not None else 0
    out += f" scope {_SCOPE_NAMES.get(scope, scope) if isinstance(scope, int) else scope}"
    if v.label:
        out += f" label {v.label}"
    if v.peer:
        out += f" peer {v.peer}/{v.prefixlen}"
    if v.home:
        out += " home"
    if six and not v.nodad:
        out += " -nodad"  # the address is added with DAD: `-nodad` was written
    if v.noprefixroute:
        out += " noprefixroute"
    if six:
        if v.preferred_lft == 0:
            out += " deprecated"
        elif v.preferred_lft is None:
            out += " preferred_lft forever"
        else:
            out += f" preferred_lft {v.preferred_lft}"
    if is_set:
        out += " set"
    return out
