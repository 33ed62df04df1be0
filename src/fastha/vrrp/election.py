"""What a backup or a master makes of a received advert (RFC 5798 §6.4.2, §6.4.3, and
keepalived's vrrp_state_backup / vrrp_state_master_rx where it differs).

Pure decisions over the instance's parameters, its effective priority and the advert;
`fsm.Machine` applies them (state, timers, actions).
"""

from __future__ import annotations

import ipaddress
from enum import Enum, auto
from typing import NamedTuple

from fastha.vrrp.events import AdvertReceived
from fastha.vrrp.params import PRIO_OWNER, InstanceParams


def compare_addresses(theirs: str, ours: str | None) -> int:
    """Sign of (theirs - ours) as numbers (RFC 5798 §6.4.3 tie-break); 0 when not
    comparable (unknown or different families), as keepalived's vrrp_saddr_cmp does."""
    if ours is None:
        return 0
    try:
        a = ipaddress.ip_address(theirs)
        b = ipaddress.ip_address(ours)
    except ValueError:
        return 0
    if a.version != b.version:
        return 0
    x, y = int(a), int(b)
    return (x > y) - (x < y)


def learned_interval(p: InstanceParams, current_cs: int, advert_cs: int) -> int:
    """Master_Adver_Interval after accepting a master's advert: a v3 backup learns the
    master's interval (§6.4.2); v2 peers must agree on it, so nothing is learnt."""
    return advert_cs if p.version == 3 and advert_cs > 0 else current_cs


def backup_accepts(
    p: InstanceParams,
    priority: int,
    advert_priority: int,
    preempt_until_ns: int | None,
    now_ns: int,
) -> bool:
    """§6.4.2: does a backup accept the sender as master (restart its Master_Down_Timer)?
    No when it preempts: a lower-priority advert is discarded and the timer left running,
    unless nopreempt, or a preempt_delay still holds it back."""
    held = p.preempt_delay_ns > 0 and (preempt_until_ns is None or preempt_until_ns > now_ns)
    return p.nopreempt or advert_priority >= priority or held


def preempt_hold(
    p: InstanceParams,
    priority: int,
    advert_priority: int,
    preempt_until_ns: int | None,
    now_ns: int,
) -> int | None:
    """keepalived's preempt_delay after an accepted advert: it starts at the first
    lower-priority advert heard and is cancelled by a higher or equal one."""
    if not p.preempt_delay_ns:
        return preempt_until_ns
    if advert_priority >= priority:
        return None
    return now_ns + p.preempt_delay_ns if preempt_until_ns is None else preempt_until_ns


class KnownMaster(NamedTuple):
    """What an instance knows of the master: its interval (Master_Adver_Interval), its
    address and priority, and until when keepalived's preempt_delay holds us back from
    preempting it (None: no lower-priority advert heard since the hold last ended).
    A tuple, not a frozen dataclass: built and compared on the receive path, where a
    frozen dataclass costs several times as much."""

    adver_int_cs: int
    address: str | None = None
    priority: int = 0
    hold_until_ns: int | None = None

    @classmethod
    def ourselves(cls, p: InstanceParams, priority: int) -> KnownMaster:
        """A new master advertises its own configured interval (RFC 5798 §6.4.3)."""
        return cls(p.adver_int_cs, p.primary_address, priority)

    def followed(
        self, p: InstanceParams, ev: AdvertReceived, hold_until_ns: int | None = None
    ) -> KnownMaster:
        """The sender of `ev` taken as the master (and its interval, v3)."""
        interval = learned_interval(p, self.adver_int_cs, ev.adver_int_cs)
        same = (interval, ev.src, ev.priority, hold_until_ns) == self
        if same:  # the same master, advert after advert: no new record to build
            return self
        return KnownMaster(interval, ev.src, ev.priority, hold_until_ns)


class BackupRx(Enum):
    LEAVING = auto()  # §6.4.2 priority 0: the master is leaving: take over after Skew_Time
    ACCEPT = auto()  # §6.4.2: accept the master: restart the Master_Down_Timer
    PREEMPT = auto()  # §6.4.2: discard a lower-priority advert, leave the timer running


def backup_rx(
    p: InstanceParams, priority: int, master: KnownMaster, ev: AdvertReceived, now_ns: int
) -> tuple[BackupRx, KnownMaster]:
    """A backup's verdict on an advert, and what it knows of the master after it."""
    if ev.priority == 0:
        return BackupRx.LEAVING, master
    until = master.hold_until_ns
    if backup_accepts(p, priority, ev.priority, until, now_ns):
        hold = preempt_hold(p, priority, ev.priority, until, now_ns)
        return BackupRx.ACCEPT, master.followed(p, ev, hold)
    return BackupRx.PREEMPT, master._replace(address=ev.src)


class MasterRx(Enum):
    PRIO_ZERO = auto()  # §6.4.3: a master is leaving: advert at once, Adver_Timer reset
    OWN = auto()  # our own address and priority: a loop or a clone; keepalived only warns
    OWNER_CONFLICT = auto()  # two owners: a configuration error; keepalived steps to 254
    HIGHER = auto()  # §6.4.3: a better master exists: go Backup
    LOWER = auto()  # lower (or equal, lower address): keepalived re-asserts


def master_rx(
    p: InstanceParams, priority: int, src: str, advert_priority: int
) -> tuple[MasterRx, bool]:
    """A master's verdict on an advert, and whether it first answers with an advert of
    its own (always for priority 0; with higher_prio_send_advert for a better master)."""
    if advert_priority == 0:
        return MasterRx.PRIO_ZERO, True
    cmp = compare_addresses(src, p.primary_address)
    higher = advert_priority > priority or (advert_priority == priority and cmp > 0)
    answer = p.higher_prio_send_advert and higher
    if advert_priority == priority:
        if cmp == 0:
            return MasterRx.OWN, answer
        if priority == PRIO_OWNER:
            return MasterRx.OWNER_CONFLICT, answer
    return (MasterRx.HIGHER if higher else MasterRx.LOWER), answer
