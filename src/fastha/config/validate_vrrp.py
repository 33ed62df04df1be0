"""Whole-model checks of the VRRP side, in keepalived's words (vrrp/vrrp.c
vrrp_complete_instance(), vrrp_data.c, vrrp_sync.c).

keepalived -t reports each of these and carries on ("- ignoring", "- resetting"); the
ones that leave an instance unusable (no VRID, a VRID clash) are errors, the rest
warnings. Every check runs; none stops at the first problem.

Where keepalived's VRRP child exits instead (vrrp_daemon.c start_vrrp:
vrrp_complete_init() false, or "Non-existent interface specified in configuration"), the
parent terminates with it: those problems are `stop`s, and fastha's daemon does not
start either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from fastha.config import bfd, route_options
from fastha.config import normalise_vrrp as fix
from fastha.config.diagnostics import Diagnostic, error, note, stop, warning
from fastha.config.model import Config
from fastha.config.model_vrrp import (
    Tracked,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
    VrrpSyncGroup,
)
from fastha.config.normalise_vrrp import OWNER_PRIORITY, effective_priority, family
from fastha.config.source import Where, where_of
from fastha.config.validate import Host, check

# How many VIPs fit one advert at MTU 1500 (count is an 8-bit field).
MAX_VIPS = {4: 255, 6: 90}


def interface_problem(
    config: Config, host: Host, name: str, where: Any, message: str, *, waits: bool = False
) -> Diagnostic | None:
    """An interface the configuration names (vrrp_instance interface, a VIP's, route's or
    rule's dev, track_interface, garp_group...) that does not exist. keepalived looks each
    up with IF_CREATE_IF_DYNAMIC (vrrp_if.c if_get_by_ifname): with dynamic_interfaces it
    waits for the interface (the instance is in FAULT until it appears); without, the VRRP
    child stops with "Non-existent interface specified in configuration", and keepalived
    with it."""
    if not host.check_interfaces or name in host.interfaces:
        return None
    if config.global_defs.dynamic_interfaces:
        # fastha waits for an instance's own interface (runtime/vrrp/sockets.py), not yet for the
        # others (a VIP's, route's, rule's dev, track_interface, the VRF): said here.
        later = "" if waits else " (fastha: not waited for, only an instance's interface is)"
        return note(
            where,
            f"Configuration specifies interface {name} which doesn't currently exist - "
            f"will use if created{later}",
        )
    return stop(where, message)


@check
def references(config: Config, host: Host) -> Iterator[Diagnostic]:
    """track_* names resolve to their blocks; names are unique."""
    scripts = {s.name for s in config.vrrp_scripts}
    files = {f.name for f in config.track_files}
    processes = {p.name for p in config.vrrp_track_processes}
    bfds = bfd.tracked(config.bfd_instances, vrrp=True)[0]
    owners: list[tuple[str, VrrpInstance | VrrpSyncGroup]]
    owners = [(f"({v.name})", v) for v in config.vrrp_instances]
    owners += [(f"({g.name})", g) for g in config.vrrp_sync_groups]
    for label, owner in owners:
        for kind, refs, known in (
            ("track script", owner.track_scripts, scripts),
            ("track file", owner.track_files, files),
            ("track process", owner.track_processes, processes),
            ("track bfd", owner.track_bfds, bfds),
        ):
            for ref in refs:
                if ref.name not in known:
                    yield warning(ref.where, f"{label} {kind} {ref.name} not found, ignoring...")
        yield from _duplicate_bfds(label, owner.track_bfds, bfds)
        name = getattr(owner, "fastha_bfd_master_down", None)
        if name is not None and name not in bfds:
            where = where_of(owner, "fastha_bfd_master_down")
            yield warning(where, f"{label} fastha_bfd_master_down {name} not found, ignoring...")
    for what, items in (
        ("vrrp instance", config.vrrp_instances),
        ("vrrp sync group", config.vrrp_sync_groups),
        ("vrrp_script", config.vrrp_scripts),
        ("track_file", config.track_files),
        ("vrrp_track_process", config.vrrp_track_processes),
        ("track_group", config.track_groups),
    ):
        seen: set[str] = set()
        for item in items:
            if item.name in seen:
                yield error(item.where, f"{what} {item.name} already defined")
            seen.add(item.name)
    for vscript in config.vrrp_scripts:
        if not vscript.script:
            yield warning(vscript.where, f"No script set for vrrp_script {vscript.name} - removing")
    for tfile in config.track_files:
        if not tfile.file:
            yield warning(tfile.where, f"No file set for track_file {tfile.name} - removing")
    for proc in config.vrrp_track_processes:
        if not proc.process:
            yield warning(proc.where, f"No process set for track_process {proc.name} - removing")
        yield from fix.quorum_max(proc)[1]
    instances = {v.name for v in config.vrrp_instances}
    sync = config.global_defs.lvs_sync_daemon
    if sync is not None and sync.instance is not None and sync.instance not in instances:
        yield warning(
            config.global_defs.where,
            f"lvs_sync_daemon vrrp instance {sync.instance} not found - ignoring",
        )
    groups = {g.name for g in config.track_groups}
    placed: list[VirtualAddress | VirtualRoute | VirtualRule] = []
    for vrrp in config.vrrp_instances:
        placed += (*vrrp.virtual_ipaddresses, *vrrp.virtual_routes, *vrrp.virtual_rules)
    placed += (*config.static_ipaddresses, *config.static_routes, *config.static_rules)
    for entry in placed:
        if entry.track_group is not None and entry.track_group not in groups:
            yield warning(entry.where, f"track_group {entry.track_group} not found")
    for tgroup in config.track_groups:
        for name in tgroup.group:
            if name not in instances:
                yield warning(
                    tgroup.where,
                    f"track_group {tgroup.name} vrrp instance {name} not found - ignoring",
                )


@check
def sync_groups(config: Config, host: Host) -> Iterator[Diagnostic]:
    by_name = {v.name: v for v in config.vrrp_instances}
    member_of: dict[str, str] = {}
    for group in config.vrrp_sync_groups:
        found = []
        for i, name in enumerate(group.group):
            if name not in by_name:
                yield warning(
                    where_of(group, "group", i),
                    f"Virtual router {name} specified in sync group {group.name} "
                    "doesn't exist - ignoring",
                )
            elif name in member_of:
                yield warning(
                    where_of(group, "group", i),
                    f"Virtual router {name} cannot exist in more than one sync group; "
                    f"ignoring {group.name}",
                )
            else:
                member_of[name] = group.name
                found.append(by_name[name])
        if not found:
            yield warning(
                group.where,
                f"Sync group {group.name}, no matching virtual router found in group "
                "declaration - removing",
            )
            continue
        if len(found) == 1:
            yield warning(
                group.where,
                f"Sync group {group.name} has only 1 virtual router(s) - this probably "
                "isn't what you want",
            )
        owners = {effective_priority(v) == OWNER_PRIORITY for v in found}
        if len(owners) > 1:
            yield note(
                group.where,
                f"Sync group {group.name} has some member(s) as address owner and some not "
                "as address owner. This won't work.",
            )
        if group.sync_group_tracking_weight:
            continue
        # Members' weighted trackers would give members different priorities.
        scripts = {s.name: s.weight for s in config.vrrp_scripts}
        for vrrp in found:
            for ref in vrrp.track_scripts:
                weight = ref.weight if ref.weight is not None else scripts.get(ref.name, 0)
                if weight:
                    yield warning(
                        ref.where,
                        f"({vrrp.name}) ignoring tracked script {ref.name} with weights "
                        f"due to SYNC group",
                    )
            for ref in (*vrrp.track_interfaces, *vrrp.track_files, *vrrp.track_processes):
                if ref.weight:
                    yield warning(
                        ref.where,
                        f"({vrrp.name}) ignoring weight of tracked {ref.name} due to SYNC group",
                    )
            for line, weight in bfd.weighted_lines(config, vrrp.track_bfds):
                yield warning(
                    line.where,
                    f"({vrrp.name}) ignoring tracked bfd {line.name} with weight {weight}"
                    " due to SYNC group",
                )


def _duplicate_bfds(
    label: str, refs: tuple[Tracked, ...], known: Mapping[str, object]
) -> Iterator[Diagnostic]:
    """vrrp_track.c alloc_track_bfd: a second line for the same bfd is ignored."""
    seen: set[str] = set()
    for ref in refs:
        if ref.name in known and ref.name in seen:
            yield warning(ref.where, f"{label} duplicate track_bfd {ref.name} - ignoring")
        seen.add(ref.name)


@check
def vrids(config: Config, host: Host) -> Iterator[Diagnostic]:
    """A VRID is unique per interface and address family (vrrp_data.c)."""
    seen: dict[tuple[str, int, int], VrrpInstance] = {}
    for vrrp in config.vrrp_instances:
        if vrrp.virtual_router_id is None:
            yield stop(vrrp.where, f"({vrrp.name}) the virtual router id must be set")
            continue
        ifname = vrrp.interface or config.global_defs.default_interface
        key = (ifname, family(vrrp), vrrp.virtual_router_id)
        if key in seen:
            yield stop(
                vrrp.where,
                f"{seen[key].name} and {vrrp.name} both use VRID {vrrp.virtual_router_id} "
                f"with IPv{key[1]} on interface {ifname}",
            )
        else:
            seen[key] = vrrp


@check
def instances(config: Config, host: Host) -> Iterator[Diagnostic]:
    for vrrp in config.vrrp_instances:
        yield from _instance(config, host, vrrp)


def _instance(config: Config, host: Host, vrrp: VrrpInstance) -> Iterator[Diagnostic]:
    name = f"({vrrp.name})"
    where = vrrp.where
    g = config.global_defs
    fam = family(vrrp)
    ver, said_version = fix.version(g, vrrp)
    is_strict = fix.strict(g, vrrp)
    prio = effective_priority(vrrp)
    master, said_strict_state, said_ah_state = fix.initial_master(g, vrrp, ver)

    # keepalived checks these as it reads the `interface` / `vrrp` line, and says so there.
    if_where = where_of(vrrp, "interface")
    missing = []
    if vrrp.interface is not None:
        missing.append(
            interface_problem(
                config,
                host,
                vrrp.interface,
                if_where,
                f"WARNING - interface {vrrp.interface} for vrrp_instance {vrrp.name} doesn't exist",
                waits=vrrp.use_vmac is None,
            )
        )
    if vrrp.vrf is not None:
        missing.append(
            interface_problem(
                config,
                host,
                vrrp.vrf,
                where_of(vrrp, "vrf"),
                f"{name} WARNING - VRF interface {vrrp.vrf} doesn't exist",
            )
        )
    for ref in vrrp.track_interfaces:
        missing.append(
            interface_problem(
                config,
                host,
                ref.name,
                ref.where,
                f"{name} tracked interface {ref.name} doesn't exist",
            )
        )
    for item in (*vrrp.virtual_ipaddresses, *vrrp.virtual_ipaddresses_excluded):
        if item.dev is not None:
            missing.append(
                interface_problem(
                    config,
                    host,
                    item.dev,
                    item.where,
                    f"WARNING - interface {item.dev} for ip address {item.address} doesn't exist",
                )
            )
    yield from (d for d in missing if d is not None)
    if vrrp.interface == "lo":
        yield warning(if_where, f"{name} cannot use a loopback interface (lo) for vrrp - ignoring")
    if vrrp.interface is None or vrrp.interface == "lo":
        # vrrp.c chk_min_cfg / vrrp_complete_instance: no interface (keepalived does not
        # fall back to default_interface here).
        if not vrrp.unicast_peers:
            yield stop(where, f"{name} Unknown interface!")
        elif vrrp.mcast_src_ip is None:
            yield stop(where, f"{name}: Unicast instances must have unicast_src_ip or interface")

    yield from said_version

    # Advert interval: v2 whole seconds 1-255, v3 centiseconds up to 40.95 s.
    yield from fix.advert_int_cs(vrrp, ver)[1]

    # Priority, state and preemption.
    yield from fix.preemption(g, vrrp, master)[1]
    if prio == OWNER_PRIORITY:
        scripts = {s.name: s.weight for s in config.vrrp_scripts}
        for ref in vrrp.track_scripts:
            weight = ref.weight if ref.weight is not None else scripts.get(ref.name, 0)
            if weight:
                yield warning(
                    ref.where,
                    f"{name} ignoring tracked script {ref.name} with weights due to address_owner",
                )
        for line, weight in bfd.weighted_lines(config, vrrp.track_bfds):
            yield warning(
                line.where,
                f"{name} ignoring tracked bfd {line.name} with weight {weight} due to address_owner",
            )

    # Virtual addresses.
    if not vrrp.virtual_ipaddresses:
        if ver == 3 or is_strict:
            # vrrp_complete_instance returns false: the VRRP child stops.
            yield stop(where, f"{name} No VIP specified; at least one is required")
        else:
            yield warning(where, f"{name} No VIP specified; at least one is sensible")
    for vip in vrrp.virtual_ipaddresses:
        if vip.address.version != fam:
            yield warning(
                vip.where,
                f"{name}: address family must match VRRP instance [{vip.address.ip}] - ignoring",
            )
    if fam == 6 and vrrp.virtual_ipaddresses:
        first = vrrp.virtual_ipaddresses[0].address
        if not first.ip.is_link_local:
            if is_strict:
                yield warning(where, f"{name} the first IPv6 VIP address must be link local")
            else:
                yield note(where, f"{name} the first IPv6 VIP address should be link local")
    if len(vrrp.virtual_ipaddresses) > MAX_VIPS[fam]:
        yield warning(
            where,
            f"{name} Number of VIPs ({len(vrrp.virtual_ipaddresses)}) exceeds maximum/space "
            f"available in packet (max {MAX_VIPS[fam]} addresses) - excess moved to eVIPs",
        )

    # Sources and peers share the instance's family.
    if vrrp.mcast_src_ip is not None and vrrp.mcast_src_ip.version != fam:
        yield warning(
            where,
            f"Configuration error: VRRP instance[{vrrp.name}] and src address"
            f"[{vrrp.mcast_src_ip}] MUST be of the same family !!! Skipping...",
        )
    if vrrp.mcast_dst_ip is not None:
        if vrrp.mcast_dst_ip.version != fam:
            yield warning(
                where,
                f"{name} mcast dest address {vrrp.mcast_dst_ip} MUST match VRRP instance "
                "family. Skipping...",
            )
        if vrrp.unicast_peers:
            yield warning(where, f"{name} multicast destination specified with unicast - ignoring")
    for peer in vrrp.unicast_peers:
        if peer.address.version != fam:
            yield warning(
                peer.where,
                f"Configuration error: VRRP instance[{vrrp.name}] and unicast peer address"
                f"[{peer.address}] MUST be of the same family !!! Skipping...",
            )
        if peer.min_ttl is not None and peer.max_ttl is not None and peer.min_ttl > peer.max_ttl:
            yield warning(peer.where, f"{name} unicast peer {peer.address} min_ttl > max_ttl")

    # Authentication (RFC 3768 only; removed by RFC 5798).
    # (AH's initial state is said only when authentication() says nothing else.)
    yield from said_ah_state
    yield from fix.authentication(g, vrrp, ver)[1]

    # vrrp_strict / strict_mode: RFC conformance.
    if is_strict:
        if vrrp.unicast_peers and vrrp.interface not in (None, "lo"):
            # Stops the VRRP child when the interface does multicast (every one fastha
            # runs VRRP on: the loopback is refused above).
            yield stop(where, f"{name} Unicast peers are not supported in strict mode")
        yield from said_strict_state
        if vrrp.use_vmac is not None and vrrp.use_vmac.mac is not None:
            yield warning(where, f"{name}: cannot specify MAC address with strict mode - clearing")
    yield from fix.down_timer_adverts(g, vrrp)[1]
    yield from fix.adverts(g, vrrp)[1]
    yield from fix.accept(g, vrrp, ver)[1]
    yield from fix.vmac_xmit_base(g, vrrp)[1]


@check
def garp_groups(config: Config, host: Host) -> Iterator[Diagnostic]:
    for index, group in enumerate(config.garp_groups):
        if group.garp_interval is None and group.gna_interval is None:
            yield warning(group.where, f"garp group {index} does not have any delay set - removing")
        if not group.interfaces:
            yield warning(group.where, "Warning - empty garp_group interfaces block")
        if host.check_interfaces:
            for ifname in group.interfaces:
                if ifname not in host.interfaces:
                    yield warning(
                        group.where,
                        f"WARNING - interface {ifname} specified for garp_group doesn't exist",
                    )
    for sgroup in config.vrrp_sync_groups:
        if not sgroup.group:
            yield warning(sgroup.where, f"Warning - sync group {sgroup.name} has empty group block")


@check
def address_interfaces(config: Config, host: Host) -> Iterator[Diagnostic]:
    """The `dev` of static addresses, and of static and virtual routes and rules
    (vrrp_ipaddress.c, vrrp_iproute.c, vrrp_iprule.c: IF_CREATE_IF_DYNAMIC); the VIPs'
    are checked with their instance."""
    routes = (*config.static_routes, *(r for v in config.vrrp_instances for r in v.virtual_routes))
    rules = (*config.static_rules, *(r for v in config.vrrp_instances for r in v.virtual_rules))
    found: list[Diagnostic | None] = []
    for addr in config.static_ipaddresses:
        if addr.dev is not None:
            message = f"WARNING - interface {addr.dev} for ip address {addr.address} doesn't exist"
            found.append(interface_problem(config, host, addr.dev, addr.where, message))
    for route in routes:
        if route.dev is not None:
            message = f"WARNING - interface {route.dev} for VROUTE nexthop doesn't exist"
            found.append(interface_problem(config, host, route.dev, route.where, message))
    for rule in rules:
        for ifname in (rule.iif, rule.oif):
            if ifname is not None:
                message = f"WARNING - interface {ifname} for rule doesn't exist"
                found.append(interface_problem(config, host, ifname, rule.where, message))
    yield from (d for d in found if d is not None)


@check
def route_rule_options(config: Config, host: Host) -> Iterator[Diagnostic]:
    """Route and rule options keepalived installs that fastha keeps but does not (the
    model's `options`): said at their line, never dropped in silence."""
    routes = (*config.static_routes, *(r for v in config.vrrp_instances for r in v.virtual_routes))
    rules = (*config.static_rules, *(r for v in config.vrrp_instances for r in v.virtual_rules))
    for kind, items in (("route", routes), ("rule", rules)):
        for item in items:
            for name, _value in item.options:
                if kind == "route" and name in route_options.INSTALLED:
                    continue
                yield note(
                    item.where,
                    f"{kind} option '{name}' is not installed by fastha yet (keepalived does)",
                )


RULE_START_PRIORITY = 16384  # vrrp_iprule.c


def rule_priorities(config: Config, order: Mapping[Where, int], diags: list[Diagnostic]) -> Config:
    """keepalived gives a static or virtual rule without a preference one of its own:
    16384, then one less for each such rule of the same family, in the order of the
    lines (vrrp_iprule.c alloc_rule), and says so. The model gets those numbers."""
    found: list[tuple[int, int, int, VirtualRule]] = []  # (line order, owner, index, rule)
    for i, rule in enumerate(config.static_rules):
        found.append((order.get(rule.where, 0) if rule.where else 0, -1, i, rule))
    for vi, vrrp in enumerate(config.vrrp_instances):
        for i, rule in enumerate(vrrp.virtual_rules):
            found.append((order.get(rule.where, 0) if rule.where else 0, vi, i, rule))
    nxt = {4: RULE_START_PRIORITY, 6: RULE_START_PRIORITY}
    new: dict[tuple[int, int], VirtualRule] = {}
    for _line, owner, i, rule in sorted(found, key=lambda f: f[0]):
        if rule.priority is not None:
            continue
        prio = nxt[rule.family]
        nxt[rule.family] -= 1
        diags.append(
            warning(
                rule.where,
                f"Rule has no preference specified - setting to {prio}. "
                "This is probably not what you want.",
            )
        )
        new[(owner, i)] = replace(rule, priority=prio)
    if not new:
        return config
    statics = tuple(new.get((-1, i), r) for i, r in enumerate(config.static_rules))
    instances = tuple(
        replace(v, virtual_rules=tuple(new.get((vi, i), r) for i, r in enumerate(v.virtual_rules)))
        if any(o == vi for o, _ in new)
        else v
        for vi, v in enumerate(config.vrrp_instances)
    )
    return replace(config, static_rules=statics, vrrp_instances=instances)
