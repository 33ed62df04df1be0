"""Tracking: vrrp_script rise/fall, track_interface, track_file, effective priority."""

from __future__ import annotations

import pytest

from fastha.vrrp.events import PriorityChanged, TrackFault
from fastha.vrrp.priority import clamp_priority, file_status, weighted_contribution
from fastha.vrrp.trackers import FileTracker, InterfaceTracker, ScriptTracker, TrackerSet

pytestmark = pytest.mark.unit


def test_script_rise_and_fall_counts() -> None:
    s = ScriptTracker("chk", rise=2, fall=3)
    assert s.feed(True) and s.ok  # init: one success is enough
    assert not s.feed(False) and s.ok
    assert not s.feed(False) and s.ok
    assert s.feed(False) and not s.ok  # third failure = fall
    assert not s.feed(True) and not s.ok
    assert s.feed(True) and s.ok  # second success = rise
    assert not s.feed(True)


def test_script_first_failure_reports() -> None:
    s = ScriptTracker("chk", rise=3, fall=3)
    assert s.pending_init and not s.ok
    assert s.feed(False) and not s.ok and not s.pending_init


def test_script_init_fail_starts_failed() -> None:
    s = ScriptTracker("chk", rise=2, init_fail=True)
    assert not s.pending_init and not s.ok
    assert not s.feed(True)
    assert s.feed(True) and s.ok


@pytest.mark.parametrize(
    ("ok", "weight", "reverse", "offset"),
    [
        (True, 10, False, 10),
        (False, 10, False, 0),
        (True, -10, False, 0),
        (False, -10, False, -10),
        (True, 10, True, -10),  # reverse: the weight applies, negated, on success
        (False, 10, True, 0),
        (False, -10, True, 10),
    ],
)
def test_weight_rule(ok: bool, weight: int, reverse: bool, offset: int) -> None:
    assert weighted_contribution(ok, weight, reverse) == offset


def test_script_weights_in_a_set() -> None:
    s = ScriptTracker("chk", weight=-30)
    ts = TrackerSet(100)
    ts.track_script(s)
    assert ts.evaluate().priority == 100  # not run yet: no contribution
    s.feed(False)
    assert ts.evaluate().priority == 70
    s.feed(True)
    assert ts.evaluate().priority == 100
    ts2 = TrackerSet(100)
    ts2.track_script(s, weight=20, reverse=True)  # per-instance override
    assert ts2.evaluate().priority == 80


def test_weightless_script_faults_and_init_holds() -> None:
    s = ScriptTracker("chk")
    ts = TrackerSet(100)
    ts.track_script(s)
    assert ts.evaluate().fault  # keepalived keeps the instance down until first result
    s.feed(True)
    assert not ts.evaluate().fault
    s.feed(False)
    assert ts.evaluate().faults == ("script chk failed",)


def test_init_fail_weight_applies_from_the_start() -> None:
    s = ScriptTracker("chk", weight=-50, init_fail=True)
    ts = TrackerSet(100)
    ts.track_script(s)
    assert ts.evaluate().priority == 50


def test_interface_tracking() -> None:
    eth1 = InterfaceTracker("eth1")
    eth2 = InterfaceTracker("eth2")
    ts = TrackerSet(100)
    ts.track_interface(eth1, weight=-20)
    ts.track_interface(eth2)  # weight 0 -> FAULT when down
    assert ts.evaluate().priority == 100
    eth1.set(False)
    assert ts.evaluate().priority == 80
    eth2.set(False)
    assert ts.evaluate().faults == ("interface eth2 down",)


def test_track_file() -> None:
    f = FileTracker("prio", weight=5)
    ts = TrackerSet(100)
    ts.track_file(f)
    f.set_value(4)
    assert ts.evaluate().priority == 120
    f.set_value(-3)
    assert ts.evaluate().priority == 85
    f.set_value(-254)
    assert ts.evaluate().fault  # status -254 is FAULT
    g = FileTracker("flag", weight=0)
    ts2 = TrackerSet(100)
    ts2.track_file(g)
    assert not ts2.evaluate().fault
    g.set_value(1)
    assert ts2.evaluate().fault  # weight 0: non-zero value -> FAULT
    assert file_status(0, 0, reverse=True) == -254
    assert file_status(100, 10) == 253


@pytest.mark.parametrize(
    ("text", "value"),
    [("42\n", 42), ("  -7", -7), ("0x10", 16), ("010", 8), ("junk", 0), ("", 0), ("999", 254)],
)
def test_track_file_parse_like_strtol(text: str, value: int) -> None:
    assert FileTracker.parse(text) == value


def test_clamping_and_owner() -> None:
    assert clamp_priority(0) == 1
    assert clamp_priority(300) == 254
    s = ScriptTracker("chk", weight=200)
    s.feed(True)
    ts = TrackerSet(100)
    ts.track_script(s)
    assert ts.evaluate().priority == 254
    owner = TrackerSet(255)
    owner.track_script(ScriptTracker("x", weight=-100, init_fail=True))
    assert owner.evaluate().priority == 255


def test_ignore_weights_for_sync_group_members() -> None:
    eth1 = InterfaceTracker("eth1", up=False)
    ts = TrackerSet(100, ignore_weights=True)
    ts.track_interface(eth1, weight=-20)
    assert ts.evaluate().fault


def test_events_report_changes_only() -> None:
    s = ScriptTracker("chk", weight=-30)
    eth = InterfaceTracker("eth1")
    ts = TrackerSet(100)
    ts.track_script(s)
    ts.track_interface(eth)
    assert ts.events() == ()
    s.feed(False)
    assert ts.events() == (PriorityChanged(70),)
    assert ts.events() == ()
    eth.set(False)
    assert ts.events() == (TrackFault(True, "interface eth1 down"),)
    eth.set(True)
    assert ts.events() == (TrackFault(False, "tracking recovered"),)
