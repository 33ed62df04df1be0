"""The IPVS table the config and the checkers' verdicts ask for (pure: no I/O).

keepalived's ``virtual_server`` / ``real_server`` model is mapped onto the driver's values
(``fastha.ipvs.model``) so the planner can compare it with a kernel dump:

- ``virtual_server IP PORT``: one service (``protocol``, ``lvs_sched`` + flags,
  ``persistence_timeout``, ``persistence_granularity`` -> netmask prefix, ``ops``,
  ``persistence_engine``); ``virtual_server fwmark N``: one fwmark service whose family is
  ``ip_family``, else its real servers', else inet; ``virtual_server group NAME``: one
  service per address of every range (``10.0.0.1-10``, ``10.0.0.0/30``) and one per
  fwmark, all with the same real servers.
- Real servers: ``lvs_method`` NAT/DR/TUN (+ tunnel type, port, checksum), the weight the
  health model gives (0 = inhibited), ``uthreshold`` / ``lthreshold``; the sorry server
  with ``sorry_server_lvs_method``.
- keepalived's corrections of a doubtful config (validate_lvs warns): ``ops`` only on UDP,
  a port-0 service without persistence gets the default persistence.

    table = DesiredTable(config)
    table.services(vi, health.desired(vi))   # the kernel should hold exactly these dests
    table.owned()                            # everything the config names (ownership)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fastha.check.spec import RsKey, rs_key, sorry_key
from fastha.config.model_lvs import (
    PERSISTENCE_TIMEOUT_DEFAULT,
    Family,
    LvsMethod,
    Method,
    Protocol,
    RealServer,
    SchedFlag,
    TunnelCsum,
    TunnelType,
    VirtualServer,
    VirtualServerGroup,
    VsgFwmark,
    VsgRange,
    real_server_method,
    sorry_server_method,
)
from fastha.ipvs.model import (
    PROTOCOLS,
    SCHED_FLAG_NAMES,
    Dest,
    Fwd,
    Service,
    ServiceKey,
    SvcFlags,
    TunFlags,
    TunType,
)
from fastha.wire import AF_INET, AF_INET6

FWD = {Method.NAT: Fwd.MASQ, Method.DR: Fwd.ROUTE, Method.TUN: Fwd.TUNNEL}
TUN_TYPE = {TunnelType.IPIP: TunType.IPIP, TunnelType.GUE: TunType.GUE, TunnelType.GRE: TunType.GRE}
TUN_CSUM = {
    TunnelCsum.NOCSUM: TunFlags.NOCSUM,
    TunnelCsum.CSUM: TunFlags.CSUM,
    TunnelCsum.REMCSUM: TunFlags.REMCSUM,
}
# A group range wider than this is a typo, not a table (keepalived has no limit; the
# kernel would take minutes): refuse it rather than freeze the checker.
RANGE_MAX = 65536


class DesiredError(ValueError):
    """The config asks for something the kernel table cannot hold."""


@dataclass(frozen=True, slots=True)
class DestTemplate:
    """A destination's fixed attributes (everything but the weight)."""

    fwd: Fwd = Fwd.MASQ
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: TunType = TunType.IPIP
    tun_port: int = 0
    tun_flags: TunFlags = TunFlags.NOCSUM

    def dest(self, key: RsKey, weight: int) -> Dest:
        return Dest(
            str(key.address),
            key.port,
            weight,
            self.fwd,
            self.u_threshold,
            self.l_threshold,
            self.tun_type,
            self.tun_port,
            self.tun_flags,
        )


def dest_template(method: LvsMethod, rs: RealServer | None = None) -> DestTemplate:
    fwd = FWD[method.method]
    tunnel = fwd is Fwd.TUNNEL
    return DestTemplate(
        fwd=fwd,
        u_threshold=(rs.uthreshold or 0) if rs is not None else 0,
        l_threshold=(rs.lthreshold or 0) if rs is not None else 0,
        tun_type=TUN_TYPE[method.tun_type] if tunnel and method.tun_type else TunType.IPIP,
        tun_port=(method.tun_port or 0) if tunnel else 0,
        tun_flags=TUN_CSUM[method.tun_csum] if tunnel and method.tun_csum else TunFlags.NOCSUM,
    )


def netmask_of(granularity: str | None) -> int | None:
    """``persistence_granularity`` as written (IPv4 netmask or IPv6 prefix) -> prefix."""
    if granularity is None:
        return None
    if "." in granularity:
        return ipaddress.IPv4Network(f"0.0.0.0/{granularity}").prefixlen
    return int(granularity)


def _af(family: Family | None) -> int | None:
    return None if family is None else (AF_INET if family is Family.INET else AF_INET6)


def vs_family(vs: VirtualServer) -> int:
    """A fwmark service's family: ip_family, else persistence_granularity's, else its real
    servers', else inet (keepalived's default)."""
    af = _af(vs.ip_family)
    if af is not None:
        return af
    if vs.persistence_granularity is not None:
        return AF_INET if "." in vs.persistence_granularity else AF_INET6
    for rs in vs.real_servers:
        return AF_INET if rs.address.version == 4 else AF_INET6
    return AF_INET


def addresses(first: Any, last: Any) -> Iterator[str]:
    lo, hi = int(first), int(last)
    if hi < lo:
        raise DesiredError(f"range {first}-{last} runs backwards")
    if hi - lo >= RANGE_MAX:
        raise DesiredError(f"range {first}-{last} has more than {RANGE_MAX} addresses")
    cls = type(first)
    for n in range(lo, hi + 1):
        yield str(cls(n))


def base_service(vs: VirtualServer) -> Service:
    """The service attributes shared by every service a virtual server makes."""
    proto = vs.effective_protocol
    flags = SvcFlags(0)
    for f in vs.flags:
        if f is SchedFlag.OPS:
            if proto is Protocol.UDP:  # keepalived resets ops on anything else
                flags |= SvcFlags.ONEPACKET
        elif f is not SchedFlag.HASHED:  # kernel-internal
            flags |= SCHED_FLAG_NAMES[f.value]
    timeout = vs.persistence_timeout or 0
    return Service(
        protocol=PROTOCOLS[proto.value.lower()],
        scheduler=vs.effective_sched.value,
        flags=flags,
        timeout=timeout,
        netmask=netmask_of(vs.persistence_granularity),
        pe_name=vs.persistence_engine or "",
    )


def vs_services(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> list[Service]:
    """Every service (without dests) one virtual_server block makes."""
    base = base_service(vs)
    # `af` and `netmask` are given again so Service's defaults follow the address family.
    mask = netmask_of(vs.persistence_granularity)
    if vs.fwmark is not None:
        return [replace(base, fwmark=vs.fwmark, af=vs_family(vs), netmask=mask)]
    if vs.address is not None:
        port = vs.port or 0
        s = replace(base, addr=str(vs.address), port=port, af=0, netmask=mask)
        if not port and not s.timeout:  # keepalived: port 0 needs persistence
            s = replace(s, timeout=PERSISTENCE_TIMEOUT_DEFAULT)
        return [s]
    if vs.group is None or vs.group not in groups:
        raise DesiredError(f"virtual server {vs.describe()}: no virtual_server_group {vs.group}")
    out: list[Service] = []
    for e in groups[vs.group].items:
        if isinstance(e, VsgFwmark):
            af = _af(e.family) or vs_family(vs)
            out.append(replace(base, fwmark=e.fwmark, af=af, netmask=mask))
        elif isinstance(e, VsgRange):
            port = e.port if e.port is not None else (vs.port or 0)
            for addr in addresses(e.first, e.last):
                s = replace(base, addr=addr, port=port, af=0, netmask=mask)
                if not port and not s.timeout:
                    s = replace(s, timeout=PERSISTENCE_TIMEOUT_DEFAULT)
                out.append(s)
    return out


def runtime_protocol(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> str:
    """keepalived's service_type once the config is read (check_data.c): by fwmark
    alone (a fwmark, or a group of fwmarks only) it is none, whatever `protocol` says;
    otherwise `protocol`, defaulting to UDP."""
    g = groups.get(vs.group) if vs.group is not None else None
    if vs.fwmark is not None or (
        g is not None and g.items and all(isinstance(e, VsgFwmark) for e in g.items)
    ):
        return "none"
    return vs.effective_protocol.value.lower()


def runtime_name(vs: VirtualServer) -> str:
    """keepalived's format_vs at run time: `[GROUP]:PORT`, `FWM N` or
    `[ADDR]:PROTO:PORT` (the protocol after the UDP default)."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return f"[{vs.address}]:{vs.effective_protocol.value.lower()}:{vs.port or 0}"


@dataclass(frozen=True, slots=True)
class VsTable:
    """One virtual_server block: its services and how to build its destinations."""

    name: str  # keepalived's FMT_VS
    proto: str  # for FMT_RS in logs
    services: tuple[Service, ...]
    templates: Mapping[RsKey, DestTemplate]  # real servers and the sorry server
    configured: Mapping[RsKey, int]  # every dest the config names -> configured weight
    group: bool = False  # a virtual_server_group's services
    # keepalived's run-time FMT_VS and FMT_RS protocol (the lvs FIFO lines)
    fifo_name: str = ""
    fifo_proto: str = ""

    def dests(self, weights: Mapping[RsKey, int]) -> tuple[Dest, ...]:
        return tuple(self.templates[k].dest(k, w) for k, w in weights.items())

    def with_dests(self, weights: Mapping[RsKey, int]) -> list[Service]:
        dests = self.dests(weights)
        if not self.group:
            return [replace(s, dests=dests) for s in self.services]
        # keepalived ipvs_group_cmd: unless NAT, a group entry's destinations take the
        # entry's port (an address range's, 0 for a fwmark).
        return [
            replace(
                s, dests=tuple(d if d.fwd is Fwd.MASQ else replace(d, port=s.port) for d in dests)
            )
            for s in self.services
        ]


class DesiredTable:
    """The config's virtual servers, indexed as ``spec.build_plan`` indexes them."""

    def __init__(self, config: Any) -> None:
        groups = {g.name: g for g in getattr(config, "virtual_server_groups", ())}
        self.vss: list[VsTable] = []
        # service key -> index of the virtual server that makes it (logs, ownership)
        self.by_key: dict[ServiceKey, int] = {}
        for vi, vs in enumerate(config.virtual_servers):
            templates: dict[RsKey, DestTemplate] = {}
            configured: dict[RsKey, int] = {}
            ss = vs.sorry_server
            if ss is not None:
                key = sorry_key(vs)
                assert key is not None
                templates[key] = dest_template(sorry_server_method(vs))
                configured[key] = 1
            for rs in vs.real_servers:
                key = rs_key(vs, rs)
                templates[key] = dest_template(real_server_method(vs, rs), rs)
                configured[key] = rs.weight if rs.weight is not None else vs.weight
            table = VsTable(
                name=vs.describe(),
                proto=vs.effective_protocol.value.lower(),
                services=tuple(vs_services(vs, groups)),
                templates=templates,
                configured=configured,
                group=vs.group is not None,
                fifo_name=runtime_name(vs),
                fifo_proto=runtime_protocol(vs, groups),
            )
            self.vss.append(table)
            for s in table.services:
                self.by_key.setdefault(s.key, vi)

    def __len__(self) -> int:
        return len(self.vss)

    def services(self, vi: int, weights: Mapping[RsKey, int]) -> list[Service]:
        """Virtual server ``vi`` with exactly the dests ``weights`` names (the health
        model's ``desired(vi)``)."""
        return self.vss[vi].with_dests(weights)

    def owned(self, indices: Any = None) -> list[Service]:
        """Every service and dest the config names, whatever its health: what fastha may
        remove (a real server that went down) and what it removes on stop."""
        rng = range(len(self.vss)) if indices is None else indices
        return [s for vi in rng for s in self.vss[vi].with_dests(self.vss[vi].configured)]

    def vs_of(self, key: ServiceKey) -> VsTable | None:
        vi = self.by_key.get(key)
        return None if vi is None else self.vss[vi]


def desired_table(config: Any, health: Any) -> list[Service]:
    """The whole desired table from a config and a ``Health`` (tests, dry runs)."""
    table = DesiredTable(config)
    return [s for vi in range(len(table)) for s in table.services(vi, health.desired(vi))]
