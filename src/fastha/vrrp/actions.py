"""Outputs of the VRRP state machine: what the driver must do, in order.

Timers: `ArmTimer(kind, deadline_ns, interval_ns)` replaces any timer of that kind.
With `interval_ns == 0` it is one-shot; otherwise it is periodic on the fixed grid
`deadline_ns + k * interval_ns` and the driver keeps the grid itself (no drift, no
re-arm per tick), reporting each tick as `TimerExpired(kind, tick)`.

Gratuitous ARP / unsolicited NA: explicit. The machine emits `SendGratuitous(repeat)`
for each burst and arms GARP_DELAY / GARP_REFRESH / GARP_LOWER_PRIO timers for the
delayed and periodic ones (keepalived garp_master_delay, garp_master_refresh,
garp_lower_prio_delay); the driver only spaces the `repeat` frames of one burst by
vrrp_garp_interval / vrrp_gna_interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fastha.vrrp.events import TimerKind
from fastha.vrrp.states import State


class NotifyKind(Enum):
    # keepalived notify_master / notify_backup / notify_fault / notify_stop, plus the
    # generic `notify` script which receives the state name.
    MASTER = "MASTER"
    BACKUP = "BACKUP"
    FAULT = "FAULT"
    STOP = "STOP"
    # keepalived notify_master_rx_lower_pri: a master heard a lower-priority advert.
    MASTER_RX_LOWER_PRI = "MASTER_RX_LOWER_PRI"


@dataclass(frozen=True, slots=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True, slots=True)
class ArmTimer:
    kind: TimerKind
    deadline_ns: int
    interval_ns: int = 0


@dataclass(frozen=True, slots=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True, slots=True)
class AddVips:
    """Install VIPs/eVIPs, virtual routes and rules. `accept=False` asks the driver to
    also install the drop rules for traffic to the VIPs (RFC 5798 §6.1 Accept_Mode)."""

    accept: bool


@dataclass(frozen=True, slots=True)
class RemoveVips:
    pass


@dataclass(frozen=True, slots=True)
class SendGratuitous:
    repeat: int
    # The VIPs to announce; empty: all of them. An ARP/ND defence announces only the
    # addresses another MAC claimed.
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    kind: NotifyKind
    priority: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class GroupNotify:
    """vrrp_sync_group notify_master / notify_backup / notify_fault."""

    group: str
    state: State


Action = (
    SendAdvert
    | ArmTimer
    | CancelTimer
    | AddVips
    | RemoveVips
    | SendGratuitous
    | Notify
    | StateChanged
    | GroupNotify
)
