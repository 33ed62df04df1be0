"""A `bfd_instance` as the BFD child runs it: keepalived 2.2.7's values and defaults
(bfd_parser.c bfd_end_handler, bfd_data.c alloc_bfd), in the units the wire uses (µs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastha.bfd.params import SessionParams
from fastha.config.bfd import sessions as bfd_sessions
from fastha.config.model import Config
from fastha.config.model_bfd import BfdInstance
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


def session_spec(bfd: BfdInstance) -> SessionSpec:
    """keepalived's values: `ttl`/`hoplimit` (one value) else 255 / 64 by family,
    max_hops as its uint8_t (-1: 255, never checked; cut to the TTL above it), events
    routed by `vrrp` / `checker` (neither: both) -- the model's reading of them."""
    assert bfd.neighbor_ip is not None  # config.bfd.sessions keeps only these
    return SessionSpec(
        params=SessionParams(
            name=bfd.name,
            min_rx_us=_us(bfd.min_rx),
            min_tx_us=_us(bfd.min_tx),
            idle_tx_us=_us(bfd.idle_tx),
            multiplier=int(bfd.multiplier),
            passive=bool(bfd.passive),
            ttl=bfd.hops,
            max_hops=bfd.max_hops_used,
        ),
        neighbor=str(bfd.neighbor_ip),
        source=str(bfd.source_ip) if bfd.source_ip is not None else None,
        multihop=bool(getattr(bfd, "multihop", False)),
        to_vrrp=bfd.to_vrrp,
        to_checker=bfd.to_checker,
    )


def bfd_spec(config: Config) -> BfdSpec:
    """The sessions keepalived's BFD process runs (config.bfd.sessions decides which;
    validation has printed what keepalived says of the others) and the `bfd_*` knobs."""
    kept, _said = bfd_sessions(config.bfd_instances)
    g = config.global_defs
    return BfdSpec(
        sessions=tuple(session_spec(b) for b in kept),
        sched=Scheduling(
            nice=g.bfd_priority,
            rt_priority=g.bfd_rt_priority,
            rlimit_rttime_us=g.bfd_rlimit_rttime,
            no_swap=g.bfd_no_swap,
            cpu_affinity=g.bfd_cpu_affinity,
        ),
        process_name=g.bfd_process_name,
    )
