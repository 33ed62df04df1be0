"""track_bfd's arithmetic (keepalived 2.2.7 vrrp_track.c initialise_track_bfd_state and
vrrp_scheduler.c vrrp_handle_bfd_event) and fastha's BfdMasterDown extension."""

from __future__ import annotations

import pytest
from tests.unit.test_vrrp_fsm import T0, mk, of, started_backup

from fastha.vrrp.actions import StateChanged
from fastha.vrrp.events import AdvertReceived, BfdMasterDown, PriorityChanged, TrackFault
from fastha.vrrp.states import State
from fastha.vrrp.trackers import BfdTracker, TrackerSet

pytestmark = pytest.mark.unit


def keepalived_total(base: int, weight: int, reverse: bool, ups: list[bool]) -> tuple[int, bool]:
    """keepalived's own steps: start Down, then each event applied as its handler does
    (|weight| * multiplier added on Up, taken away on Down); fault for weight 0."""
    mult = -1 if reverse else 1
    total, up = base, False
    if weight and weight < 0:
        total += weight * mult
    for now in ups:
        if now == up:
            continue
        up = now
        if weight:
            total += abs(weight) * mult if up else -abs(weight) * mult
    fault = weight == 0 and up == reverse
    return max(1, min(total, 254)), fault


@pytest.mark.parametrize("weight", [0, 10, -10, 253, -253])
@pytest.mark.parametrize("reverse", [False, True])
def test_priority_and_fault_follow_keepalived(weight: int, reverse: bool) -> None:
    for ups in ([], [True], [True, False], [True, True, False, True]):
        b = BfdTracker("b1")
        ts = TrackerSet(100)
        ts.track_bfd(b, weight, reverse)
        for up in ups:
            b.set(up)
        got = ts.evaluate()
        assert (got.priority, got.fault) == keepalived_total(100, weight, reverse, ups), ups


def test_events_say_only_what_changed() -> None:
    b = BfdTracker("b1")
    ts = TrackerSet(100)
    ts.track_bfd(b, 0, False)
    assert ts.events() == (TrackFault(True, "bfd b1 down"),)  # Down until the first Up
    assert b.set(True) and ts.events() == (TrackFault(False, "tracking recovered"),)
    assert not b.set(True) and ts.events() == ()
    w = BfdTracker("b2", up=True)
    ts2 = TrackerSet(100)
    ts2.track_bfd(w, -30, False)
    assert ts2.events() == ()
    w.set(False)
    assert ts2.events() == (PriorityChanged(70),)


def test_bfd_master_down_makes_a_backup_master_at_once() -> None:
    m = started_backup()
    m.handle(AdvertReceived("192.0.2.1", 200, 100), T0 + 1)
    acts = m.handle(BfdMasterDown("b1"), T0 + 2)
    assert of(acts, StateChanged) == [
        StateChanged(State.BACKUP, State.MASTER, "master down timer expired")
    ]


def test_bfd_master_down_means_nothing_to_a_master_or_before_start() -> None:
    m = mk()
    assert m.handle(BfdMasterDown("b1"), T0) == ()
    m = started_backup()
    m.handle(BfdMasterDown("b1"), T0 + 1)
    assert m.state == State.MASTER
    assert m.handle(BfdMasterDown("b1"), T0 + 2) == ()
