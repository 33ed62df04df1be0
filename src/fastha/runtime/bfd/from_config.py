"""A `bfd_instance` as the BFD child runs it: keepalived 2.2.7's values and defaults
(bfd_parser.c bfd_end_handler, bfd_data.c alloc_bfd), in the units the wire uses (µs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastha.bfd.params import HOPLIMIT_V6, MAX_HOPS_NO_CHECK, TTL_V4, SessionParams
from fastha.config.model import Config
from fastha.config.scheduling import Scheduling


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """The machine's parameters and what only the I/O needs."""

    params: SessionParams
    neighbor: str
    source: str | None
    multihop: bool  # RFC 5883, port 4784 (not a keepalived 2.2.7 keyword)
    to_vrrp: bool  # where the Up/Down goes (keepalived's `vrrp` / `checker`)
    to_checker: bool

    @property
    def name(self) -> str:
        return self.params.name

    def same_peer(self, other: SessionSpec) -> bool:
        """Same neighbour, source and port: the session carries on through a reload."""
        return (self.neighbor, self.source, self.multihop) == (
            other.neighbor,
            other.source,
            other.multihop,
        )


@dataclass(frozen=True, slots=True)
class BfdSpec:
    sessions: tuple[SessionSpec, ...]
    sched: Scheduling
    process_name: str | None = None


def _us(ms: Any) -> int:
    return round(float(ms) * 1000)


def _ttl(bfd: Any, ipv6: bool) -> int:
    """`ttl` or `hoplimit`, whichever was written last (one variable in keepalived),
    else the family's default."""
    positions = getattr(bfd, "positions", {}) or {}
    given = [(positions[k].line, getattr(bfd, k)) for k in ("ttl", "hoplimit") if k in positions]
    given = [(line, v) for line, v in given if v]
    if given:
        return int(max(given)[1])
    return HOPLIMIT_V6 if ipv6 else TTL_V4


def session_spec(bfd: Any) -> SessionSpec:
    neighbor = str(bfd.neighbor_ip)
    ttl = _ttl(bfd, ":" in neighbor)
    max_hops = int(bfd.max_hops if bfd.max_hops is not None else 0)
    if max_hops < 0:  # keepalived's -1: stored as UCHAR_MAX, never checked
        max_hops = MAX_HOPS_NO_CHECK
    elif max_hops != MAX_HOPS_NO_CHECK:
        max_hops = min(max_hops, ttl)  # keepalived: "max_hops exceeds ttl/hoplimit"
    to_vrrp, to_checker = bool(bfd.vrrp), bool(bfd.checker)
    if not (to_vrrp or to_checker):  # neither named: both (specified_event_processes 0)
        to_vrrp = to_checker = True
    return SessionSpec(
        params=SessionParams(
            name=bfd.name,
            min_rx_us=_us(bfd.min_rx),
            min_tx_us=_us(bfd.min_tx),
            idle_tx_us=_us(bfd.idle_tx),
            multiplier=int(bfd.multiplier),
            passive=bool(bfd.passive),
            ttl=ttl,
            max_hops=max_hops,
        ),
        neighbor=neighbor,
        source=str(bfd.source_ip) if bfd.source_ip is not None else None,
        multihop=bool(getattr(bfd, "multihop", False)),
        to_vrrp=to_vrrp,
        to_checker=to_checker,
    )


def bfd_spec(config: Config) -> BfdSpec:
    """Every runnable `bfd_instance`: the first of a name, with a neighbor whose family
    its source shares, no second one for the same neighbor/source (what keepalived
    ignores with a configuration error, which validation has reported)."""
    sessions: list[SessionSpec] = []
    names: set[str] = set()
    pairs: set[tuple[str, str | None]] = set()
    for bfd in config.bfd_instances:
        if bfd.name in names or len(bfd.name) >= 32 or bfd.neighbor_ip is None:
            continue
        if bfd.source_ip is not None and bfd.source_ip.version != bfd.neighbor_ip.version:
            continue
        spec = session_spec(bfd)
        # find_bfd_by_addr: a session without a source clashes with any on its neighbor.
        if (spec.neighbor, spec.source) in pairs or (spec.neighbor, None) in pairs:
            continue
        if spec.source is None and any(n == spec.neighbor for n, _ in pairs):
            continue
        names.add(bfd.name)
        pairs.add((spec.neighbor, spec.source))
        sessions.append(spec)
    g = config.global_defs
    return BfdSpec(
        sessions=tuple(sessions),
        sched=Scheduling(
            nice=g.bfd_priority,
            rt_priority=g.bfd_rt_priority,
            rlimit_rttime_us=g.bfd_rlimit_rttime,
            no_swap=g.bfd_no_swap,
            cpu_affinity=g.bfd_cpu_affinity,
        ),
        process_name=g.bfd_process_name,
    )
