"""The pure decisions `fsm.Machine` applies, each on its own: a backup's verdict on an
advert and what it knows of the master after it (election), the effective priority
tracking sets (priority), the `state MASTER` wait (timing)."""

from __future__ import annotations

import pytest
from tests.unit.test_vrrp_fsm_parts import ME, S, p

from fastha.vrrp.actions import Action, ArmTimer
from fastha.vrrp.election import BackupRx, KnownMaster, backup_rx
from fastha.vrrp.events import AdvertReceived, TimerKind
from fastha.vrrp.priority import tracked_priority
from fastha.vrrp.timers import TimerBook
from fastha.vrrp.timing import adver_int_ns, skew_time_min_ns, state_master_wait_ns

pytestmark = pytest.mark.unit


def test_known_master_ourselves_and_followed() -> None:
    us = KnownMaster.ourselves(p(adver_int_cs=50), 200)
    assert us == KnownMaster(50, ME, 200, None)
    ev = AdvertReceived("192.0.2.1", 150, 300)
    assert us.followed(p(version=3), ev) == KnownMaster(300, "192.0.2.1", 150, None)
    assert us.followed(p(version=2, adver_int_cs=100), ev).adver_int_cs == 50  # v2: kept


def test_backup_rx_leaving_accept_preempt() -> None:
    seen = KnownMaster(100, "192.0.2.1", 150)
    plain = p(priority=100)
    leaving = AdvertReceived("192.0.2.1", 0, 100)
    assert backup_rx(plain, 100, seen, leaving, 0) == (BackupRx.LEAVING, seen)
    better = AdvertReceived("192.0.2.2", 120, 200)
    assert backup_rx(plain, 100, seen, better, 0) == (
        BackupRx.ACCEPT,
        KnownMaster(200, "192.0.2.2", 120, None),
    )
    lower = AdvertReceived("192.0.2.3", 50, 200)
    # Preempt: only the address is taken; the timer runs on.
    assert backup_rx(plain, 100, seen, lower, 0) == (
        BackupRx.PREEMPT,
        KnownMaster(100, "192.0.2.3", 150, None),
    )


def test_backup_rx_preempt_delay_holds_then_lets_go() -> None:
    held = p(priority=100, preempt_delay_ns=10 * S)
    lower = AdvertReceived("192.0.2.3", 50, 100)
    verdict, seen = backup_rx(held, 100, KnownMaster(100), lower, S)
    assert verdict == BackupRx.ACCEPT and seen.hold_until_ns == 11 * S
    verdict, seen = backup_rx(held, 100, seen, lower, 5 * S)
    assert verdict == BackupRx.ACCEPT and seen.hold_until_ns == 11 * S
    verdict, after = backup_rx(held, 100, seen, lower, 11 * S)
    assert verdict == BackupRx.PREEMPT and after.hold_until_ns == 11 * S
    better = AdvertReceived("192.0.2.2", 150, 100)
    assert backup_rx(held, 100, seen, better, 5 * S)[1].hold_until_ns is None


def test_tracked_priority_owner_and_clamp() -> None:
    assert tracked_priority(100, 100, 300) == (254, True)
    assert tracked_priority(100, 100, -5) == (1, True)
    assert tracked_priority(100, 90, 90) == (90, False)
    # The owner's stays, unless tracking sets PRIO_OWNER (after a reload made it the
    # owner); no timer moves for it.
    assert tracked_priority(255, 255, 100) == (255, False)
    assert tracked_priority(255, 100, 100) == (100, False)
    assert tracked_priority(255, 100, 255) == (255, False)


@pytest.mark.parametrize(("version", "interval"), [(2, 100), (3, 100), (3, 35)])
def test_state_master_wait(version: int, interval: int) -> None:
    want = adver_int_ns(interval) + skew_time_min_ns(version, interval)
    assert state_master_wait_ns(version, interval) == want


def test_timer_restart_starts_a_new_grid() -> None:
    book, out = TimerBook(), list[Action]()
    book.restart(TimerKind.ADVER, 7 * S, S, out)
    assert out == [ArmTimer(TimerKind.ADVER, 8 * S, S)]
    assert book.fired(TimerKind.ADVER, 9 * S) and not book.fired(TimerKind.ADVER, 7 * S)
