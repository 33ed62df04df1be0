"""vrrp_sync_group: members move together."""

from __future__ import annotations

import pytest

from fastha.vrrp.actions import GroupNotify, Notify, SendAdvert, StateChanged
from fastha.vrrp.events import (
    AdvertReceived,
    LinkChanged,
    Startup,
    TimerExpired,
    TimerKind,
    TrackFault,
)
from fastha.vrrp.fsm import Machine
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import State
from fastha.vrrp.sync import SyncGroup

pytestmark = pytest.mark.unit

S = 1_000_000_000
T0 = 1_000 * S


def group() -> tuple[SyncGroup, Machine, Machine]:
    a = Machine(
        InstanceParams("VI_1", vrid=1, version=3, priority=150, primary_address="192.0.2.1")
    )
    b = Machine(
        InstanceParams("VI_2", vrid=2, version=3, priority=100, primary_address="192.0.2.1")
    )
    g = SyncGroup("G1", {"VI_1": a, "VI_2": b})
    out = g.handle_all(Startup(), T0)
    assert ("", GroupNotify("G1", State.BACKUP)) in out
    return g, a, b


def fire_down(g: SyncGroup, name: str) -> tuple:
    m = g.members[name]
    d = m.armed_timers[TimerKind.MASTER_DOWN][0]
    return g.handle(name, TimerExpired(TimerKind.MASTER_DOWN, d), d)


def test_member_waits_for_the_group_then_all_go_master() -> None:
    g, a, b = group()
    fire_down(g, "VI_1")  # VI_2 does not want MASTER yet: stay backup
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)
    assert a.wantstate == State.MASTER
    out = fire_down(g, "VI_2")
    assert (a.state, b.state) == (State.MASTER, State.MASTER)
    assert ("", GroupNotify("G1", State.MASTER)) in out
    assert ("VI_1", SendAdvert(150)) in out and ("VI_2", SendAdvert(100)) in out


def test_advert_received_clears_want_master() -> None:
    g, a, b = group()
    fire_down(g, "VI_1")
    g.handle("VI_1", AdvertReceived("192.0.2.9", 200, 100), T0 + 5 * S)
    assert a.wantstate == State.BACKUP
    fire_down(g, "VI_2")
    assert b.state == State.BACKUP  # VI_1 no longer wants MASTER


def test_one_member_going_backup_takes_the_group() -> None:
    g, a, b = group()
    fire_down(g, "VI_1")
    fire_down(g, "VI_2")
    out = g.handle("VI_2", AdvertReceived("192.0.2.9", 200, 100), T0 + 10 * S)
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)
    assert ("", GroupNotify("G1", State.BACKUP)) in out


def test_member_fault_pulls_the_group_and_recovery_releases_it() -> None:
    g, a, b = group()
    fire_down(g, "VI_1")
    fire_down(g, "VI_2")
    out = g.handle("VI_1", LinkChanged(False), T0 + 10 * S)
    assert (a.state, b.state) == (State.FAULT, State.FAULT)
    assert ("VI_2", SendAdvert(0)) in out  # the master member releases with priority 0
    assert ("", GroupNotify("G1", State.FAULT)) in out
    out = g.handle("VI_1", LinkChanged(True), T0 + 11 * S)
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)
    assert ("", GroupNotify("G1", State.BACKUP)) in out


def test_members_down_together_leave_fault_once() -> None:
    """A group-wide tracker (both members down) recovers member by member: keepalived's
    try_up_instance keeps the first one in FAULT while the other is down
    (`--sync->num_member_fault`), so it never passes through BACKUP and back."""
    g, a, b = group()
    g.handle("VI_1", TrackFault(True, "file"), T0 + 1 * S)
    g.handle("VI_2", TrackFault(True, "file"), T0 + 1 * S)
    assert (a.state, b.state) == (State.FAULT, State.FAULT)
    out = g.handle("VI_1", TrackFault(False, "file"), T0 + 2 * S)
    assert (a.state, b.state) == (State.FAULT, State.FAULT)
    assert not [x for _, x in out if isinstance(x, StateChanged)]
    out = g.handle("VI_2", TrackFault(False, "file"), T0 + 2 * S)
    assert (a.state, b.state) == (State.BACKUP, State.BACKUP)
    changes = [(n, x.old, x.new) for n, x in out if isinstance(x, StateChanged)]
    assert sorted(changes) == [
        ("VI_1", State.FAULT, State.BACKUP),
        ("VI_2", State.FAULT, State.BACKUP),
    ]
    assert [x for _, x in out if isinstance(x, GroupNotify)] == [GroupNotify("G1", State.BACKUP)]


def test_group_notifies_come_where_keepalived_sends_them() -> None:
    """keepalived's vrrp_init_state sends a group's BACKUP before its members' start-up
    notifies; vrrp_sync_master/backup/fault send the group's after every member moved."""
    a = Machine(InstanceParams("VI_1", vrid=1, version=3, priority=150, primary_address="x"))
    b = Machine(InstanceParams("VI_2", vrid=2, version=3, priority=100, primary_address="x"))
    g = SyncGroup("G1", {"VI_1": a, "VI_2": b})
    out = g.handle("VI_1", Startup(), T0) + g.handle("VI_2", Startup(), T0)
    kinds = [(n, type(x).__name__) for n, x in out if isinstance(x, GroupNotify | Notify)]
    assert kinds[0] == ("", "GroupNotify") and len(kinds) == 3
    fire_down(g, "VI_1")
    out = fire_down(g, "VI_2")
    order = [n for n, x in out if isinstance(x, GroupNotify | Notify)]
    assert order[-1] == "" and sorted(order[:-1]) == ["VI_1", "VI_2"]
    out = g.handle("VI_2", LinkChanged(False), T0 + 10 * S)
    order = [n for n, x in out if isinstance(x, GroupNotify | Notify)]
    assert order == ["VI_2", "VI_1", ""]


def test_tracking_weight_flag() -> None:
    g, _, _ = group()
    assert g.member_ignores_weights
    g2 = SyncGroup("G2", {}, tracking_weight=True)
    assert not g2.member_ignores_weights
