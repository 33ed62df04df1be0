"""Inputs to the BFD session machine (`fastha.bfd.session.Session.handle`).

The driver builds these; the machine reads no clock and no socket: every event carries
`now_ns` (CLOCK_MONOTONIC). A packet reaches the machine only after `decode_bfd`
accepted it and the receiver's demux found this session (by Your Discriminator, else by
address); the checks that need the session (GTSM TTL, AdminDown) are the machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from fastha.bfd.params import SessionParams


class TimerKind(IntEnum):
    TX = 1  # next periodic Control packet (one-shot, re-armed with fresh jitter)
    DETECT = 2  # Detection Time (RFC 5880 §6.8.4) without a packet: session Down
    RESET = 3  # keepalived's reset thread: a Detection Time after Down, forget the peer


class ControlPacket(Protocol):
    """What the machine reads of a received packet: `fastha.wire.bfd.BfdControl` as is."""

    @property
    def state(self) -> int: ...
    @property
    def diag(self) -> int: ...
    @property
    def poll(self) -> bool: ...
    @property
    def final(self) -> bool: ...
    @property
    def demand(self) -> bool: ...
    @property
    def detect_mult(self) -> int: ...
    @property
    def my_discr(self) -> int: ...
    @property
    def desired_min_tx_us(self) -> int: ...
    @property
    def required_min_rx_us(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Start:
    """The session's socket is open: start (Down; a first packet now unless passive)."""

    now_ns: int


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded packet for this session; `ttl` is the received TTL / hop limit (0: the
    kernel gave none, and the GTSM check is skipped, as keepalived does)."""

    packet: ControlPacket
    ttl: int
    now_ns: int


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """A timer armed by `ArmTimer(kind, deadline_ns)` fired; an expiry for a deadline no
    longer armed (cancelled or re-armed since) is stale and ignored."""

    kind: TimerKind
    deadline_ns: int
    now_ns: int


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """A reload kept this session (same name) with these parameters: state is kept; a
    changed min_rx/min_tx starts a Poll sequence (keepalived's bfd_complete_init)."""

    params: SessionParams
    now_ns: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the session: AdminDown, one AdminDown packet to the peer (RFC 5880 §6.8.16)."""

    now_ns: int


Event = Start | Received | TimerExpired | Reconfigure | Stop
