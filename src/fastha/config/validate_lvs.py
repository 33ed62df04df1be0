"""Whole-model checks of the LVS side, in keepalived's words (check_data.c, check_parser.c).

keepalived corrects or drops what it cannot use and carries on, but `keepalived -t`
still reports each one (exit 5). fastha does the same: these are warnings (exit 5,
daemon still starts), worded as keepalived logs them so operators' greps keep working.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import replace
from typing import Any

from fastha.config import bfd
from fastha.config.diagnostics import Diagnostic, warning
from fastha.config.model_lvs import (
    PERSISTENCE_TIMEOUT_DEFAULT,
    BfdCheck,
    Family,
    FileCheck,
    HttpGet,
    Method,
    MiscCheck,
    RealServer,
    SchedFlag,
    Scheduler,
    UdpCheck,
    VirtualServer,
    VirtualServerGroup,
    VsgFwmark,
    VsgRange,
    family_of,
    real_server_method,
    real_server_weight,
    sorry_server_method,
)
from fastha.config.validate import Host, check


def _servers(config: Any) -> tuple[VirtualServer, ...]:
    return tuple(getattr(config, "virtual_servers", ()) or ())


def _groups(config: Any) -> dict[str, VirtualServerGroup]:
    out: dict[str, VirtualServerGroup] = {}
    for vsg in getattr(config, "virtual_server_groups", ()) or ():
        if vsg.items:  # keepalived removes empty groups
            out.setdefault(vsg.name, vsg)
    return out


def fmt_rs(vs: VirtualServer, address: Any, port: int | None) -> str:
    """keepalived's FMT_RS: `[10.0.0.2]:tcp:80`."""
    proto = vs.protocol.value.lower() if vs.protocol is not None else "none"
    return f"[{address}]:{proto}:{port or 0}"


def _rs_port(vs: VirtualServer, rs: RealServer) -> int | None:
    """The port a real server ends up with: its own, else the virtual server's
    (keepalived fills it in for NAT, and for other methods unless fwmark)."""
    if rs.port is not None or vs.fwmark is not None:
        return rs.port
    return vs.port


def _vs_family(vs: VirtualServer, groups: dict[str, VirtualServerGroup]) -> Family | None:
    """The family keepalived settles on before matching real servers: the header's
    address, else ip_family / persistence_granularity, else the group's if single."""
    if vs.address is not None:
        return family_of(vs.address)
    if vs.ip_family is not None:
        return vs.ip_family
    if vs.persistence_granularity is not None:
        return Family.INET if "." in vs.persistence_granularity else Family.INET6
    if vs.group is not None and vs.group in groups:
        vsg = groups[vs.group]
        if vsg.has_ipv4 != vsg.has_ipv6:
            return Family.INET if vsg.has_ipv4 else Family.INET6
    return None


@check
def check_virtual_server_groups(config: Any, host: Host) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for vsg in getattr(config, "virtual_server_groups", ()) or ():
        if not vsg.items:
            yield warning(vsg.where, f"virtual server group {vsg.name} has no entries - removing")
            continue
        if vsg.name in seen:
            yield warning(
                vsg.where, f"virtual server group {vsg.name} is duplicated - ignoring the second"
            )
        seen.add(vsg.name)
        if vsg.has_ipv4 and vsg.has_ipv6:
            # Mixed families need a family on every fwmark (keepalived's fwmark_no_family).
            for entry in vsg.items:
                if isinstance(entry, VsgFwmark) and entry.family is None:
                    yield warning(
                        entry.where,
                        f"virtual server group {vsg.name} has IPv4 and IPv6 addresses: "
                        f"fwmark {entry.fwmark} needs inet or inet6",
                    )


def _settle_virtual_servers(config: Any) -> Generator[Diagnostic, None, tuple[VirtualServer, ...]]:
    """Every virtual server's problems; returns the ones keepalived keeps (it drops a
    virtual server whose group is not configured, one left with no real servers, and a
    duplicate), each as keepalived runs it (what it says it clears, resets or sets)."""
    groups = _groups(config)
    seen: dict[tuple[Any, ...], VirtualServer] = {}
    kept: list[VirtualServer] = []
    for vs in _servers(config):
        settled = yield from _check_vs(vs, groups)
        key = (vs.address, vs.port, vs.fwmark, vs.group, vs.effective_protocol, vs.ip_family)
        if key in seen:
            yield warning(
                vs.where,
                f"Virtual server {vs.describe()} is duplicated "
                f"(first at {seen[key].where}) - ignoring",
            )
            continue
        seen[key] = vs
        if settled is not None:
            kept.append(settled)
    return tuple(kept)


@check
def check_virtual_servers(config: Any, host: Host) -> Iterator[Diagnostic]:
    yield from _settle_virtual_servers(config)


def kept_virtual_servers(config: Any) -> tuple[VirtualServer, ...]:
    """The virtual servers keepalived programs: the same walk as check_virtual_servers
    (one rule, one place), its diagnostics left to that check. The loader puts these in
    the model the daemon runs."""
    walk = _settle_virtual_servers(config)
    while True:
        try:
            next(walk)
        except StopIteration as done:
            kept: tuple[VirtualServer, ...] = done.value  # the generator's return value
            return kept


def _check_vs(
    vs: VirtualServer, groups: dict[str, VirtualServerGroup]
) -> Generator[Diagnostic, None, VirtualServer | None]:
    """Yields the problems of one virtual server; returns it as keepalived runs it
    (check_data.c validate_check_config's fix-ups made), or None if it drops it."""
    name = vs.describe()
    where = vs.where
    vsg: VirtualServerGroup | None = None
    if vs.group is not None:
        vsg = groups.get(vs.group)
        if vsg is None:
            yield warning(
                where,
                f"Virtual server group {vs.group} specified but not configured"
                f" - ignoring virtual server {name}",
            )
            return None
        if vsg.has_ipv4 and vsg.has_ipv6 and vs.ip_family is not None:
            yield warning(
                where,
                f"{vs.group}: virtual server group with IPv4 & IPv6 doesn't match"
                f" virtual server {name} - ignoring",
            )
        elif (vsg.has_ipv4 and vs.ip_family is Family.INET6) or (
            vsg.has_ipv6 and vs.ip_family is Family.INET
        ):
            yield warning(
                where, f"{vs.group}: address family doesn't match virtual server {name} - ignoring"
            )

    if (
        vs.ip_family is not None
        and vs.address is not None
        and family_of(vs.address) != vs.ip_family
    ):
        yield warning(
            where, f"Virtual server specified family {vs.ip_family} conflicts with server family"
        )
    family = _vs_family(vs, groups)

    if vs.persistence_granularity is not None and family is not None:
        gran_family = Family.INET if "." in vs.persistence_granularity else Family.INET6
        if gran_family != family:
            yield warning(
                where,
                f"Virtual server {name}: persistence_granularity {vs.persistence_granularity}"
                f" does not match the virtual server's address family",
            )

    # Sorry server (check_parser.c vs_end_handler; tunnelled ones may differ in family).
    ss = vs.sorry_server
    fixed: dict[str, Any] = {}  # what keepalived changes, by field
    if ss is None:
        if vs.sorry_server_inhibit:
            yield warning(
                where, "Ignoring sorry_server inhibit used before or without sorry_server"
            )
        if vs.sorry_server_lvs_method is not None:
            yield warning(where, "sorry_server forwarding used without sorry_server")
    elif sorry_server_method(vs).method is not Method.TUN:
        if family is None:
            family = family_of(ss.address)
        elif family_of(ss.address) != family:
            yield warning(
                ss.where or where,
                f"Address family of virtual server and sorry server {ss.address} don't match"
                " - skipping sorry server.",
            )
            fixed["sorry_server"] = ss = None

    # Real servers (rs_end_handler).
    kept: list[RealServer] = []
    for rs in vs.real_servers:
        if real_server_method(vs, rs).method is not Method.TUN:
            if family is None:
                family = family_of(rs.address)
            elif family_of(rs.address) != family:
                yield warning(
                    rs.where,
                    f"Address family of virtual server and real server {rs.address} don't match"
                    " - skipping real server.",
                )
                continue
        kept.append(rs)

    if not kept:
        # check_data.c validate_check_config: free_vs(), never programmed.
        yield warning(where, f"Virtual server {name} has no real servers - ignoring")
        return None

    fwmark_only = vs.fwmark is not None or (
        vsg is not None and not any(isinstance(e, VsgRange) for e in vsg.items)
    )
    uses_fwmark = vs.fwmark is not None or (
        vsg is not None and any(isinstance(e, VsgFwmark) for e in vsg.items)
    )
    if vs.ha_suspend and uses_fwmark:
        yield warning(
            where,
            f"Virtual server {name}: cannot use ha_suspend with fwmarks - clearing ha_suspend",
        )
        fixed["ha_suspend"] = False
    if not fwmark_only:
        if vs.protocol is None:
            yield warning(where, f"Virtual server {name}: no protocol set - defaulting to UDP")
        if SchedFlag.OPS in vs.flags and vs.effective_protocol.value != "UDP":
            yield warning(
                where, f"Virtual server {name}: one packet scheduling requires UDP - resetting"
            )
            fixed["flags"] = tuple(f for f in vs.flags if f is not SchedFlag.OPS)
        if vs.persistence_timeout is None and vsg is None and vs.fwmark is None and not vs.port:
            yield warning(
                where,
                f"Virtual server {name}: zero port only valid for persistent services - setting",
            )
            fixed["persistence_timeout"] = PERSISTENCE_TIMEOUT_DEFAULT
    if (
        vs.persistence_timeout is None
        and vsg is not None
        and any(isinstance(e, VsgRange) and not e.port for e in vsg.items)
    ):
        yield warning(
            where,
            f"Virtual server {name}: zero port only valid for persistent services - setting",
        )
        fixed["persistence_timeout"] = PERSISTENCE_TIMEOUT_DEFAULT
    if vs.protocol is not None and fwmark_only:
        yield warning(
            where,
            f"Warning: Virtual server {name}: protocol specified for fwmark - protocol will be ignored",
        )
    if vs.lvs_sched is None:
        yield warning(where, f"Virtual server {name}: no scheduler set, setting default 'wlc'")
    yield from _check_flags(vs, name)
    flags = tuple(
        f for f in fixed.get("flags", vs.flags) if _flag_scheduler(f) in (None, vs.effective_sched)
    )
    if flags != vs.flags:
        fixed["flags"] = flags

    # Duplicates, forwarding method, weights (validate_check_config).
    seen_rs: set[tuple[Any, int | None]] = set()
    servers: list[RealServer] = []
    weight_sum = 0
    method_warned = False
    for rs in kept:
        key = (rs.address, _rs_port(vs, rs))
        if key in seen_rs:
            yield warning(
                rs.where,
                f"VS {name}: real server {fmt_rs(vs, rs.address, key[1])} is duplicated"
                " - removing second rs",
            )
            continue
        seen_rs.add(key)
        servers.append(rs)
        if rs.lvs_method is None and vs.lvs_method is None and not method_warned:
            yield warning(
                where, f"Virtual server {name}: no forwarding method set, setting default NAT"
            )
            method_warned = True
        weight_sum += real_server_weight(vs, rs)
        yield from _check_ports(vs, rs, name, vsg)
        yield from _check_checkers(vs, rs)
    if (
        ss is not None
        and vs.sorry_server_lvs_method is None
        and vs.lvs_method is None
        and not method_warned
    ):
        yield warning(
            where, f"Virtual server {name}: no forwarding method set, setting default NAT"
        )

    quorum = vs.quorum
    if quorum > weight_sum:
        yield warning(
            where,
            f"Warning - quorum {quorum} for {name} exceeds total weight of real servers"
            f" {weight_sum}, reducing quorum to {weight_sum}",
        )
        fixed["quorum"] = quorum = weight_sum
    if vs.hysteresis >= quorum:
        yield warning(
            where,
            f"Virtual server {name}: hysteresis {vs.hysteresis} >= quorum {quorum};"
            f" setting hysteresis to {max(quorum - 1, 0)}",
        )
        fixed["hysteresis"] = max(quorum - 1, 0)
    if len(servers) != len(vs.real_servers):
        fixed["real_servers"] = tuple(servers)
    return replace(vs, **fixed) if fixed else vs


def _flag_scheduler(flag: SchedFlag) -> Scheduler | None:
    """The only scheduler a flag applies to (sh-port/sh-fallback, mh-port/mh-fallback)."""
    if flag in (SchedFlag.SH_PORT, SchedFlag.SH_FALLBACK):
        return Scheduler.SH
    if flag in (SchedFlag.MH_PORT, SchedFlag.MH_FALLBACK):
        return Scheduler.MH
    return None


def _check_flags(vs: VirtualServer, name: str) -> Iterator[Diagnostic]:
    sched = vs.effective_sched
    for flag in vs.flags:
        only = _flag_scheduler(flag)
        if only is not None and only is not sched:
            yield warning(vs.where, f"{flag} only applies to {only.value} scheduler - ignoring")


def _check_ports(
    vs: VirtualServer, rs: RealServer, name: str, vsg: VirtualServerGroup | None
) -> Iterator[Diagnostic]:
    """Unless NAT, the real server's port must be the virtual server's (none for fwmark)."""
    if real_server_method(vs, rs).method is Method.NAT or rs.port is None:
        return
    rs_name = fmt_rs(vs, rs.address, rs.port)
    if vsg is not None:
        if any(isinstance(e, VsgFwmark) for e in vsg.items):
            yield warning(
                rs.where,
                f"WARNING - fwmark virtual server {name}, real server {rs_name} has port"
                " specified - port will be ignored",
            )
        for entry in vsg.items:
            if isinstance(entry, VsgRange) and entry.port != rs.port:
                yield warning(
                    rs.where,
                    f"virtual server {name}:[{_fmt_vsge(entry)}] and real server {rs_name}"
                    " ports don't match",
                )
    elif vs.fwmark is not None:
        yield warning(
            rs.where,
            f"WARNING - fwmark virtual server {name}, real server {rs_name} has port"
            " specified - clearing",
        )
    elif vs.port != rs.port:
        yield warning(
            rs.where,
            f"WARNING - virtual server {name} and real server {rs_name} ports don't match"
            " - resetting",
        )


def _fmt_vsge(entry: VsgRange) -> str:
    if entry.first == entry.last:
        return f"{entry.first},{entry.port or 0}"
    return f"{entry.first}-{entry.last},{entry.port or 0}"


def _check_checkers(vs: VirtualServer, rs: RealServer) -> Iterator[Diagnostic]:
    rs_name = fmt_rs(vs, rs.address, _rs_port(vs, rs))
    bfds_seen: set[str] = set()
    for checker in rs.checkers:
        where = checker.where or rs.where
        if isinstance(checker, HttpGet):
            if not checker.urls:
                yield warning(where, "HTTP/SSL_GET checker has no urls specified - ignoring")
            for url in checker.urls:
                if url.path is None:
                    yield warning(url.where or where, "Url has no path - ignoring")
        elif isinstance(checker, MiscCheck) and not checker.misc_path:
            yield warning(where, "No misc_path specified for MISC_CHECK - ignoring")
        elif isinstance(checker, UdpCheck) and checker.min_reply_length > checker.max_reply_length:
            yield warning(
                where,
                f"UDP_CHECK min_reply_length {checker.min_reply_length} > max_reply_length"
                f" {checker.max_reply_length}",
            )
        elif isinstance(checker, FileCheck) and checker.track_file is None:
            yield warning(where, f"({rs_name}) FILE_CHECK has no track_file - skipping checker")
        elif isinstance(checker, BfdCheck):
            if checker.name is None:
                yield warning(
                    where, f"({rs_name}) No name has been specified for BFD_CHECKER - skipping"
                )
            elif checker.name in bfds_seen:
                yield warning(
                    where, f"({rs_name}) BFD_CHECK - RS already monitoring {checker.name}"
                )
            else:
                bfds_seen.add(checker.name)


@check
def check_checker_references(config: Any, host: Host) -> Iterable[Diagnostic]:
    """FILE_CHECK track_file and BFD_CHECK name must name configured objects."""
    files = {t.name for t in getattr(config, "track_files", ()) or ()}
    bfds = bfd.tracked(tuple(getattr(config, "bfd_instances", ()) or ()), vrrp=False)[0]
    out: list[Diagnostic] = []
    for vs in _servers(config):
        for rs in vs.real_servers:
            for checker in rs.checkers:
                where = checker.where or rs.where
                if isinstance(checker, FileCheck) and checker.track_file is not None:
                    if checker.track_file not in files:
                        out.append(warning(where, f"track_file {checker.track_file} not found"))
                elif (
                    isinstance(checker, BfdCheck)
                    and checker.name is not None
                    and checker.name not in bfds
                ):
                    rs_name = fmt_rs(vs, rs.address, _rs_port(vs, rs))
                    out.append(
                        warning(where, f"({rs_name}) BFD_CHECK - BFD {checker.name} not configured")
                    )
    return out


@check
def check_bfd_instances(config: Any, host: Host) -> Iterator[Diagnostic]:
    """What keepalived's BFD, VRRP and checker processes each say of the bfd_instances."""
    instances = tuple(getattr(config, "bfd_instances", ()) or ())
    said = bfd.sessions(instances)[1]
    said += bfd.tracked(instances, vrrp=True)[1]
    for s in said:
        yield warning(s.where, s.message)
