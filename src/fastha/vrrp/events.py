"""Inputs to the VRRP state machine. The driver builds these; the machine never reads
a clock or a socket. Adverts arrive already decoded and validated by the wire layer
(checksum, TTL, VRID, auth, address list): an invalid packet never reaches the machine,
so it can never reset or delay a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import State

if TYPE_CHECKING:
    from fastha.vrrp.machine_view import MachineView


class TimerKind(IntEnum):
    ADVER = 1  # Adver_Timer (RFC 5798 §6.2), periodic on a fixed grid
    MASTER_DOWN = 2  # Master_Down_Timer (§6.2), one-shot
    GARP_DELAY = 3  # keepalived garp_master_delay: second GARP burst, one-shot
    GARP_REFRESH = 4  # keepalived garp_master_refresh, periodic
    GARP_LOWER_PRIO = 5  # keepalived garp_lower_prio_delay, one-shot
    GARP_DEFEND = 6  # another MAC announced our VIP: announce again, one-shot


@dataclass(frozen=True, slots=True)
class Startup:
    """The instance's sockets are open: leave Initialize (RFC 5798 §6.4.1)."""


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    """A valid ADVERTISEMENT for our VRID.

    `adver_int_cs` is always centiseconds: the v3 field as is, a v2 field (whole
    seconds) multiplied by 100 by the driver.
    """

    src: str
    priority: int
    adver_int_cs: int


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """A timer armed by `ArmTimer` fired. `deadline_ns` is the tick it fired for; an
    expiry for a deadline the machine no longer has armed is stale and ignored."""

    kind: TimerKind
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class VipClaimed:
    """Another MAC announced one of our VIPs in ARP or an NA (drivers/arpwatch)."""

    address: str
    mac: str


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """New effective priority from tracking (already clamped by `TrackerSet`)."""

    priority: int


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The VRRP (primary) interface went up or down."""

    up: bool


@dataclass(frozen=True, slots=True)
class TrackFault:
    """A weightless tracked item failed (fault=True) or every one recovered."""

    fault: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BfdMasterDown:
    """fastha's extension (`fastha_bfd_master_down NAME`): the BFD session to the master
    went Down. A BACKUP takes it as its Master_Down_Timer expiring now; in any other
    state it means nothing (keepalived has no such event: without the keyword it is
    never fed)."""

    name: str


@dataclass(frozen=True, slots=True)
class SyncGoto:
    """Sync-group command: follow the group to MASTER or BACKUP (keepalived
    vrrp_sync_master / vrrp_sync_backup)."""

    state: State


@dataclass(frozen=True, slots=True)
class SyncFault:
    """Sync-group command: another member is in FAULT (fault=True) or all recovered."""

    fault: bool


@dataclass(frozen=True, slots=True)
class VipDeleted:
    """One of our VIPs / eVIPs (not `no_track`) was deleted from the system (by hand,
    `ip addr del`) while we hold them (keepalived_netlink.c netlink_if_address_filter)."""

    address: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop the instance: a master releases with priority 0 (RFC 5798 §6.4.3)."""


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Reload in place: new parameters for the same instance (interface, VRID, family).
    The machine keeps its state and timers. The new base priority is taken at once (the
    effective one follows through tracking: PriorityChanged); a master's new advert
    interval starts a new Adver_Timer grid; a v2 backup takes it as its
    Master_Adver_Interval (v2 peers must agree)."""

    params: InstanceParams


@dataclass(frozen=True, slots=True)
class JoinSyncGroup:
    """The instance is a member of a vrrp_sync_group: `can_goto_master(member)` says
    whether it may become master now (keepalived vrrp_sync_can_goto_master)."""

    can_goto_master: Callable[[MachineView], bool]


@dataclass(frozen=True, slots=True)
class LeaveSyncGroup:
    """The instance is no longer in a sync group (reload, or stopping for good)."""


Event = (
    Startup
    | AdvertReceived
    | TimerExpired
    | PriorityChanged
    | LinkChanged
    | TrackFault
    | BfdMasterDown
    | SyncGoto
    | SyncFault
    | Shutdown
    | VipClaimed
    | VipDeleted
    | Reconfigure
    | JoinSyncGroup
    | LeaveSyncGroup
)
