"""Desired and kernel IPVS state as small frozen values (pure: no I/O).

The application maps keepalived's ``virtual_server``/``real_server`` model onto these; the
driver (``fastha.drivers.ipvs``) dumps the kernel into the same types, so the planner
compares like with like. Field names follow <linux/ip_vs.h>; values are the kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from fastha.wire import AF_INET, AF_INET6, family_of

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
PROTOCOLS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "sctp": IPPROTO_SCTP}


class Fwd(IntEnum):
    """IP_VS_CONN_F_FWD_MASK values: keepalived lb_kind NAT/DR/TUN = masq/route/tunnel."""

    MASQ = 0
    LOCAL = 1
    TUNNEL = 2
    ROUTE = 3
    BYPASS = 4


class TunType(IntEnum):
    """IP_VS_CONN_F_TUNNEL_TYPE_* (keepalived tun_type ipip/gue/gre)."""

    IPIP = 0
    GUE = 1
    GRE = 2


class TunFlags(IntFlag):
    """IP_VS_TUNNEL_ENCAP_FLAG_* (keepalived tun_flags nocsum/csum/remcsum)."""

    NOCSUM = 0
    CSUM = 1 << 0
    REMCSUM = 1 << 1


class SvcFlags(IntFlag):
    """IP_VS_SVC_F_*; SCHED1/2/3 mean sh-fallback/sh-port (sh) and mh-fallback/mh-port
    (mh)."""

    PERSISTENT = 0x0001
    HASHED = 0x0002  # kernel-internal, reported in dumps; never compared
    ONEPACKET = 0x0004
    SCHED1 = 0x0008
    SCHED2 = 0x0010
    SCHED3 = 0x0020


SCHED_FLAG_NAMES = {
    "sh-fallback": SvcFlags.SCHED1,
    "sh-port": SvcFlags.SCHED2,
    "mh-fallback": SvcFlags.SCHED1,
    "mh-port": SvcFlags.SCHED2,
    "flag-1": SvcFlags.SCHED1,
    "flag-2": SvcFlags.SCHED2,
    "flag-3": SvcFlags.SCHED3,
}
USER_FLAGS = ~SvcFlags.HASHED & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Dest:
    """One real server of a virtual service."""

    addr: str
    port: int = 0
    weight: int = 1
    fwd: Fwd = Fwd.MASQ
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: TunType = TunType.IPIP
    tun_port: int = 0
    tun_flags: TunFlags = TunFlags.NOCSUM

    @property
    def key(self) -> tuple[str, int]:
        return (self.addr, self.port)

    @property
    def af(self) -> int:
        return family_of(self.addr)

    def __str__(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{host}:{self.port}"


ServiceKey = tuple[int, int, str, int, int]  # (af, protocol, addr, port, fwmark)


@dataclass(frozen=True, slots=True)
class Service:
    """One virtual service: ``addr:port`` over ``protocol``, or a firewall mark.

    ``netmask`` is a prefix length (persistence granularity): /32 or /128 by default.
    ``dests`` is part of the value; ``attrs()`` compares the service alone.
    """

    addr: str = ""
    port: int = 0
    protocol: int = IPPROTO_TCP
    fwmark: int = 0
    af: int = 0  # 0: from addr (AF_INET for a fwmark service)
    scheduler: str = "wlc"
    flags: int = 0  # SvcFlags
    timeout: int = 0  # persistence timeout, seconds (sets PERSISTENT when nonzero)
    netmask: int | None = None
    pe_name: str = ""
    dests: tuple[Dest, ...] = ()

    def __post_init__(self) -> None:
        af = self.af or (family_of(self.addr) if self.addr else AF_INET)
        object.__setattr__(self, "af", af)
        if self.fwmark:  # the kernel keys fwmark services by (af, mark) alone
            object.__setattr__(self, "addr", "")
            object.__setattr__(self, "port", 0)
            object.__setattr__(self, "protocol", 0)
        if self.netmask is None:
            object.__setattr__(self, "netmask", 128 if af == AF_INET6 else 32)
        flags = SvcFlags(self.flags) & USER_FLAGS
        if self.timeout:
            flags |= SvcFlags.PERSISTENT
        object.__setattr__(self, "flags", SvcFlags(flags))
        object.__setattr__(self, "dests", tuple(self.dests))

    @property
    def key(self) -> ServiceKey:
        return (self.af, self.protocol, self.addr, self.port, self.fwmark)

    def attrs(self) -> tuple[object, ...]:
        """What SET_SERVICE can change in place."""
        return (self.scheduler, int(self.flags), self.timeout, self.netmask, self.pe_name)

    def dest_map(self) -> dict[tuple[str, int], Dest]:
        return {d.key: d for d in self.dests}

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}{' IPv6' if self.af == AF_INET6 else ''}"
        proto = {v: k.upper() for k, v in PROTOCOLS.items()}.get(self.protocol, self.protocol)
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{proto} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """``lvs_sync_daemon``: one master or backup sync thread set."""

    state: str  # "master" | "backup"
    ifname: str
    syncid: int = 0
    maxlen: int = 0  # 0: kernel default (from the interface MTU)
    mcast_group: str = ""  # "": kernel default 224.0.0.81
    mcast_port: int = 0  # 0: kernel default 8848
    mcast_ttl: int = 0  # 0: kernel default 1


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``lvs_timeouts``: seconds; 0 leaves a value unchanged (as ipvsadm --set)."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0
