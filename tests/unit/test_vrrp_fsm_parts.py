"""The pure pieces the VRRP machine applies: election (what an advert means), the timer
book, the ARP/ND defence's back-off and the announcement timers."""

from __future__ import annotations

from typing import Any

import pytest

from fastha.vrrp.actions import Action, ArmTimer, CancelTimer
from fastha.vrrp.defence import CLAIM_BACKOFF_MAX, CLAIMERS_MAX, Defence
from fastha.vrrp.election import (
    MasterRx,
    backup_accepts,
    learned_interval,
    master_rx,
    preempt_hold,
)
from fastha.vrrp.events import LinkChanged, SyncFault, TimerKind, TrackFault
from fastha.vrrp.faults import Faults
from fastha.vrrp.garp import burst, master_timers
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.timers import TimerBook, moved_deadline

pytestmark = pytest.mark.unit

S = 1_000_000_000
ME = "192.0.2.10"


def p(**kw: Any) -> InstanceParams:
    kw.setdefault("name", "VI_1")
    kw.setdefault("version", 3)
    kw.setdefault("primary_address", ME)
    return InstanceParams(**kw).normalised()[0]


# -- election ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "prio", "verdict", "answer"),
    [
        ("192.0.2.1", 0, MasterRx.PRIO_ZERO, True),
        ("192.0.2.1", 150, MasterRx.HIGHER, False),
        ("192.0.2.99", 100, MasterRx.HIGHER, False),  # equal, higher address
        ("192.0.2.1", 100, MasterRx.LOWER, False),  # equal, lower address
        (ME, 100, MasterRx.OWN, False),
        ("192.0.2.1", 50, MasterRx.LOWER, False),
    ],
)
def test_master_rx_verdicts(src: str, prio: int, verdict: MasterRx, answer: bool) -> None:
    assert master_rx(p(priority=100), 100, src, prio) == (verdict, answer)


def test_master_rx_owner_conflict_and_higher_prio_send_advert() -> None:
    assert master_rx(p(priority=255), 255, "192.0.2.1", 255) == (MasterRx.OWNER_CONFLICT, False)
    assert master_rx(p(priority=255), 255, "192.0.2.99", 255) == (MasterRx.OWNER_CONFLICT, False)
    hp = p(priority=100, higher_prio_send_advert=True)
    assert master_rx(hp, 100, "192.0.2.1", 150) == (MasterRx.HIGHER, True)
    assert master_rx(hp, 100, "192.0.2.1", 50) == (MasterRx.LOWER, False)


def test_backup_accepts_and_preempt_delay() -> None:
    plain = p(priority=100)
    assert backup_accepts(plain, 100, 100, None, 0)  # equal: accepted
    assert not backup_accepts(plain, 100, 99, None, 0)  # lower: preempt
    assert backup_accepts(p(priority=100, nopreempt=True), 100, 1, None, 0)
    held = p(priority=100, preempt_delay_ns=10 * S)
    assert backup_accepts(held, 100, 50, None, 0)  # the delay has not started
    assert preempt_hold(held, 100, 50, None, S) == 11 * S  # ... it starts now
    assert preempt_hold(held, 100, 50, 11 * S, 2 * S) == 11 * S  # ... and runs on
    assert backup_accepts(held, 100, 50, 11 * S, 10 * S)
    assert not backup_accepts(held, 100, 50, 11 * S, 11 * S)  # it ran out
    assert preempt_hold(held, 100, 150, 11 * S, 2 * S) is None  # a better master
    assert preempt_hold(plain, 100, 50, None, S) is None


def test_learned_interval_v3_only() -> None:
    assert learned_interval(p(version=3), 100, 250) == 250
    assert learned_interval(p(version=3), 100, 0) == 100
    assert learned_interval(p(version=2), 100, 300) == 100


# -- faults -----------------------------------------------------------------------------


def test_faults_each_cause_and_its_reason() -> None:
    f = Faults()
    assert f.own_up(False)
    f, why = f.after(LinkChanged(False))
    assert (f.own_up(False), f.own_up(True), why) == (False, True, "interface down")
    f, why = f.after(TrackFault(True, "chk failed"))
    assert (f.own_up(True), why) == (False, "chk failed")
    f, why = f.after(LinkChanged(True))
    f, why = f.after(TrackFault(False))
    assert (f.own_up(False), why) == (True, "tracking")
    f, why = f.after(SyncFault(True))
    assert (f.own_up(False), f.sync_fault, why) == (True, True, "sync group")


# -- the timer book ---------------------------------------------------------------------


def test_timer_book_one_shot_and_grid() -> None:
    book, out = TimerBook(), list[Action]()
    book.arm(TimerKind.MASTER_DOWN, 5 * S, 0, out)
    book.arm(TimerKind.ADVER, 2 * S, S, out)
    assert out == [ArmTimer(TimerKind.MASTER_DOWN, 5 * S, 0), ArmTimer(TimerKind.ADVER, 2 * S, S)]
    assert not book.fired(TimerKind.MASTER_DOWN, 4 * S)  # not its deadline
    assert book.fired(TimerKind.MASTER_DOWN, 5 * S)
    assert not book.fired(TimerKind.MASTER_DOWN, 5 * S)  # a one-shot is spent
    assert TimerKind.MASTER_DOWN not in book
    assert book.fired(TimerKind.ADVER, 4 * S) and book.fired(TimerKind.ADVER, 4 * S)
    assert not book.fired(TimerKind.ADVER, S)  # before the anchor
    assert not book.fired(TimerKind.ADVER, 4 * S + 1)  # off the grid
    out.clear()
    book.cancel(TimerKind.MASTER_DOWN, out)  # not armed: no action
    book.arm(TimerKind.GARP_DELAY, 9 * S, 0, out)
    book.cancel_all(out)
    assert out[1:] == [CancelTimer(TimerKind.ADVER), CancelTimer(TimerKind.GARP_DELAY)]
    assert book.snapshot() == {}


def test_moved_deadline_never_into_the_past() -> None:
    assert moved_deadline(10 * S, 2 * S, 3 * S, 4 * S) == 11 * S
    assert moved_deadline(10 * S, 9 * S, 4 * S, 2 * S) == 9 * S


# -- the ARP/ND defence -----------------------------------------------------------------


def test_defence_backs_off_a_mac_that_keeps_claiming() -> None:
    d, iv = Defence(), S
    assert d.claim("198.18.0.1", "m1", 0, iv)
    assert not d.claim("198.18.0.1", "m1", iv // 2, iv)  # within its back-off
    assert d.claim("198.18.0.2", "m1", iv, iv)  # answered again, then 2 intervals
    assert not d.claim("198.18.0.2", "m1", 2 * iv, iv)
    assert d.take() == ("198.18.0.1", "198.18.0.2")
    assert d.take() == ()
    t, backoff = 3 * iv, 2 * iv  # claimed again as soon as it may: doubling, capped
    for _ in range(8):
        assert d.claim("198.18.0.1", "m1", t, iv)
        backoff = min(2 * backoff, CLAIM_BACKOFF_MAX * iv)
        assert not d.claim("198.18.0.1", "m1", t + backoff - 1, iv)
        t += backoff
    assert backoff == CLAIM_BACKOFF_MAX * iv
    assert d.claim("198.18.0.1", "m1", t + backoff, iv)  # quiet for its back-off: anew
    assert not d.claim("198.18.0.1", "m1", t + backoff + iv - 1, iv)
    assert d.claim("198.18.0.1", "m1", t + backoff + iv, iv)


def test_defence_remembers_a_bounded_number_of_macs() -> None:
    d = Defence()
    for i in range(CLAIMERS_MAX + 1):
        assert d.claim("198.18.0.1", f"m{i}", 0, S)
    assert d.claim("198.18.0.1", "m0", 0, S)  # forgotten: answered again
    assert not d.claim("198.18.0.1", f"m{CLAIMERS_MAX}", 0, S)


# -- announcements ----------------------------------------------------------------------


def test_master_announcement_timers_and_bursts() -> None:
    q = p(
        garp_master_delay_ns=5 * S,
        garp_master_refresh_ns=60 * S,
        garp_master_repeat=3,
        garp_master_refresh_repeat=2,
        garp_lower_prio_repeat=4,
    )
    assert master_timers(q) == (
        (TimerKind.GARP_DELAY, 5 * S, 0),
        (TimerKind.GARP_REFRESH, 60 * S, 60 * S),
    )
    assert master_timers(p(garp_master_delay_ns=0)) == ()
    assert [burst(q, k) for k in (TimerKind.GARP_DELAY, TimerKind.GARP_DEFEND)] == [3, 3]
    assert (burst(q, TimerKind.GARP_REFRESH), burst(q, TimerKind.GARP_LOWER_PRIO)) == (2, 4)
