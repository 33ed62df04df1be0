"""Keywords fastha reads but does not act on (yet): each one set in a file is named at
its line, so an operator moving from keepalived sees what will not happen instead of
finding out in production. They are notes: `keepalived -t`'s verdict stands.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import MISSING, fields
from typing import Any

from fastha.config.diagnostics import Diagnostic, note
from fastha.config.model import Config
from fastha.config.source import where_of
from fastha.config.validate import Host, check

# field -> what happens instead (keyword names are the field names).
INSTANCE: Mapping[str, str] = {
    "vrf": "the instance's interface is used as it is",
    "use_vmac_addr": "the VMAC is made with the virtual MAC only",
    "use_ipvlan": "use_vmac (macvlan) is supported",
    "native_ipv6": "the family comes from the virtual addresses",
    "mcast_dst_ip": "adverts go to vrrp_mcast_group4/6",
    "track_src_ip": "the source address is not tracked",
    "unicast_fault_no_peer": "an instance with no unicast peer does not go to FAULT",
    "old_unicast_checksum": "unicast checksums are computed as RFC 5798 says",
    "garp_extra_if": "gratuitous ARPs go on the instance's interfaces only",
    "garp_extra_if_all": "gratuitous ARPs go on the instance's interfaces only",
    "promote_secondaries": "the kernel's promote_secondaries setting is left as it is",
    "notify_deleted": "notify scripts run for MASTER/BACKUP/FAULT/STOP",
    "kernel_rx_buf_size": "global vrrp_rx_bufs_* size the receive buffers",
    "linkbeat_use_polling": "links are followed by netlink events",
}
SYNC_GROUP: Mapping[str, str] = {
    "notify_deleted": "notify scripts run for MASTER/BACKUP/FAULT/STOP",
}
GLOBAL: Mapping[str, str] = {
    "vrrp_iptables": "no_accept is enforced with nftables (table `nftables` names)",
    "vrrp_ipsets": "no ipsets are made",
    "nftables_ipvs": "no nftables rules are added for IPVS",
    "disable_local_igmp": "the kernel's IGMP settings are left as they are",
    "vrrp_garp_extra_if": "gratuitous ARPs go on the instances' interfaces only",
    "vrrp_min_garp": "the garp_master_* settings apply as given",
    "snmp_socket": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_traps": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_snmp_vrrp": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_snmp_checker": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_snmp_rfc": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_snmp_rfcv2": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_snmp_rfcv3": "SNMP is not supported; `fastha daemon --metrics` serves Prometheus",
    "enable_dbus": "D-Bus is not supported; `fastha status --json` answers on a socket",
    "lvs_notify_fifo_script": "checker events reach the log and `fastha status`",
    "fifo_write_vrrp_states_on_reload": "states are written to the FIFO when they change",
    "reload_check_config": "a reload is always validated first; a bad file changes nothing",
    "reload_time_file": "reloads happen on SIGHUP",
    "reload_repeat": "reloads happen on SIGHUP",
    "reload_file": "reloads happen on SIGHUP",
    "process_names": "processes keep their names (fastha)",
    "process_name": "processes keep their names (fastha)",
    "vrrp_process_name": "processes keep their names (fastha)",
    "checker_process_name": "processes keep their names (fastha)",
    "checker_log_all_failures": "failures are logged on each health change",
    "no_email_faults": "FAULT transitions are mailed as smtp_alert says",
    "log_unknown_vrids": "adverts for unknown VRIDs are counted, not logged",
    "checker_priority": "the checker child keeps the default scheduling",
    "checker_rt_priority": "the checker child keeps the default scheduling",
    "checker_no_swap": "the checker child keeps the default scheduling",
    "checker_cpu_affinity": "the checker child keeps the default scheduling",
    "max_auto_priority": "vrrp_rt_priority is applied as given",
}


def _set(obj: Any, names: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(keyword, consequence) for each of `names` whose value is not the default."""
    for f in fields(obj):
        if f.name not in names:
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            continue
        if getattr(obj, f.name) != default:
            yield f.name, names[f.name]


def _note(obj: Any, label: str, keyword: str, instead: str) -> Diagnostic:
    return note(
        where_of(obj, keyword), f"{label}{keyword} is not supported by fastha; ignored ({instead})"
    )


@check
def unsupported(config: Config, host: Host) -> Iterator[Diagnostic]:
    g = config.global_defs
    for keyword, instead in _set(g, GLOBAL):
        yield _note(g, "", keyword, instead)
    for vi in config.vrrp_instances:
        for keyword, instead in _set(vi, INSTANCE):
            yield _note(vi, f"({vi.name}) ", keyword, instead)
    for sg in config.vrrp_sync_groups:
        for keyword, instead in _set(sg, SYNC_GROUP):
            yield _note(sg, f"({sg.name}) ", keyword, instead)
