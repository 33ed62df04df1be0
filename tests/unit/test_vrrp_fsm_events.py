"""The events that replaced other modules writing the machine's fields: a reload in
place (Reconfigure), a sync group's gate (JoinSyncGroup / LeaveSyncGroup) and the
owner's priority after a reload (PriorityChanged(PRIO_OWNER))."""

from __future__ import annotations

from typing import Any

import pytest

from fastha.vrrp.actions import ArmTimer, SendAdvert, StateChanged
from fastha.vrrp.events import (
    AdvertReceived,
    JoinSyncGroup,
    LeaveSyncGroup,
    PriorityChanged,
    Reconfigure,
    Startup,
    TimerExpired,
    TimerKind,
)
from fastha.vrrp.fsm import Machine
from fastha.vrrp.machine_view import MachineView
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import State
from fastha.vrrp.timing import master_down_interval_ns, skew_time_ns

pytestmark = pytest.mark.unit

S = 1_000_000_000
T0 = 1_000 * S
ME = "192.0.2.10"
PEER = "192.0.2.20"


def params(**kw: Any) -> InstanceParams:
    kw.setdefault("name", "VI_1")
    kw.setdefault("version", 3)
    kw.setdefault("primary_address", ME)
    return InstanceParams(**kw)


def started(**kw: Any) -> Machine:
    m = Machine(params(**kw))
    m.handle(Startup(), T0)
    return m


def down_deadline(m: Machine) -> int:
    return m.armed_timers[TimerKind.MASTER_DOWN][0]


def master(**kw: Any) -> Machine:
    m = started(**kw)
    m.handle(TimerExpired(TimerKind.MASTER_DOWN, down_deadline(m)), down_deadline(m))
    assert m.state == State.MASTER
    return m


# -- Reconfigure ------------------------------------------------------------------------


def test_reconfigure_with_the_same_parameters_changes_nothing() -> None:
    m = master(priority=100)
    timers, fields = m.armed_timers, (m.base_priority, m.master_adver_int_cs, m.params)
    assert m.handle(Reconfigure(params(priority=100)), T0 + 5 * S) == ()
    assert (m.armed_timers, (m.base_priority, m.master_adver_int_cs, m.params)) == (
        timers,
        fields,
    )
    assert m.state == State.MASTER


def test_reconfigure_priority_sets_the_base_and_tracking_sets_the_effective() -> None:
    m = started(priority=100)
    timers = m.armed_timers
    # The base moves at once; the running Master_Down_Timer and the effective priority
    # wait for tracking (the runner feeds PriorityChanged after rebuilding it).
    assert m.handle(Reconfigure(params(priority=200)), T0 + S) == ()
    assert (m.base_priority, m.effective_priority) == (200, 100)
    assert m.armed_timers == timers
    assert m.params.priority == 200
    acts = m.handle(PriorityChanged(200), T0 + S)
    delta = skew_time_ns(3, 200, 100) - skew_time_ns(3, 100, 100)
    assert acts == (ArmTimer(TimerKind.MASTER_DOWN, timers[TimerKind.MASTER_DOWN][0] + delta),)
    assert m.effective_priority == 200


def test_reconfigure_to_owner_then_owner_priority_without_moving_the_timer() -> None:
    m = started(priority=100)
    timers = m.armed_timers
    m.handle(Reconfigure(params(priority=255)), T0 + S)
    assert (m.base_priority, m.effective_priority) == (255, 100)
    # A tracked value for the old base is ignored: the owner's priority never moves...
    assert m.handle(PriorityChanged(90), T0 + S) == ()
    assert m.effective_priority == 100
    # ... except to PRIO_OWNER, as the runner's re-tracking after the reload asks.
    assert m.handle(PriorityChanged(255), T0 + S) == ()
    assert m.effective_priority == 255
    assert m.armed_timers == timers  # not moved, as before the event existed


def test_reconfigure_advert_interval_as_master_restarts_the_adver_grid() -> None:
    m = master(priority=100, adver_int_cs=100)
    old_anchor, _ = m.armed_timers[TimerKind.ADVER]
    now, new = old_anchor + 3 * S + S // 2, 7 * S // 10
    acts = m.handle(Reconfigure(params(priority=100, adver_int_cs=70)), now)
    # RFC 5798 §6.4.3: a master advertises its own configured interval: a new grid.
    assert acts == (ArmTimer(TimerKind.ADVER, now + new, new),)
    assert m.master_adver_int_cs == 70
    # The old grid's ticks are stale; the new one's send adverts.
    for tick in (old_anchor + 4 * S, old_anchor + 5 * S):
        assert m.handle(TimerExpired(TimerKind.ADVER, tick), tick) == ()
    tick = now + 2 * new
    assert m.handle(TimerExpired(TimerKind.ADVER, tick), tick) == (SendAdvert(100),)
    assert m.state == State.MASTER


def test_reconfigure_advert_interval_as_v3_backup_keeps_the_masters() -> None:
    m = started(priority=100, adver_int_cs=100)
    m.handle(AdvertReceived(PEER, 200, 200), T0 + S)  # a v3 backup learns 2 s
    timers = m.armed_timers
    assert m.handle(Reconfigure(params(priority=100, adver_int_cs=50)), T0 + 2 * S) == ()
    assert m.master_adver_int_cs == 200
    assert m.armed_timers == timers
    assert m.down_interval_ns == master_down_interval_ns(3, 100, 200)


def test_reconfigure_advert_interval_as_v2_backup_takes_it_at_once() -> None:
    # v2 peers must agree on the interval: a backup's Master_Down_Interval follows ours
    # from now on (the running timer is not restarted).
    m = started(version=2, priority=100, adver_int_cs=100)
    m.handle(AdvertReceived(PEER, 200, 100), T0 + S)
    timers = m.armed_timers
    assert m.handle(Reconfigure(params(version=2, priority=100, adver_int_cs=300)), T0 + S) == ()
    assert m.master_adver_int_cs == 300
    assert m.armed_timers == timers
    assert m.down_interval_ns == master_down_interval_ns(2, 100, 300)


def test_reconfigure_takes_params_as_the_configuration_normalised_them() -> None:
    """keepalived's fix-ups live in config/normalise_vrrp.py; the machine keeps what it gets."""
    m = started(priority=100)
    m.handle(Reconfigure(params(priority=150)), T0 + S)
    assert (m.params.priority, m.base_priority, m.warnings) == (150, 150, ())


# -- the sync group's gate --------------------------------------------------------------


def test_a_closed_gate_holds_a_backup_until_the_group_leaves() -> None:
    asked: list[MachineView] = []

    def gate(member: MachineView) -> bool:
        asked.append(member)
        return False

    m = started(priority=100)
    assert m.handle(JoinSyncGroup(gate)) == ()  # no clock needed
    due = down_deadline(m)
    acts = m.handle(TimerExpired(TimerKind.MASTER_DOWN, due), due)
    # keepalived vrrp_sync_can_goto_master: wait for the rest of the group.
    assert acts == (ArmTimer(TimerKind.MASTER_DOWN, due + m.down_interval_ns),)
    assert (m.state, m.wantstate, asked) == (State.BACKUP, State.MASTER, [m])
    assert m.handle(LeaveSyncGroup()) == ()
    due = down_deadline(m)
    acts = m.handle(TimerExpired(TimerKind.MASTER_DOWN, due), due)
    assert StateChanged(State.BACKUP, State.MASTER, "master down timer expired") in acts
    assert asked == [m]  # not asked again once out of the group


def test_an_owner_behind_a_closed_gate_starts_as_backup() -> None:
    m = Machine(params(priority=255))
    m.handle(JoinSyncGroup(lambda _: False))
    m.handle(Startup(), T0)
    assert m.state == State.BACKUP
    o = Machine(params(priority=255))
    o.handle(JoinSyncGroup(lambda _: True))
    o.handle(Startup(), T0)
    assert o.state == State.MASTER


def test_only_the_gate_events_go_without_a_clock() -> None:
    m = Machine(params())
    with pytest.raises(TypeError, match="Startup needs now_ns"):
        m.handle(Startup())
    assert m.state == State.INIT
    with pytest.raises(TypeError, match="not a VRRP event"):
        m.handle("Startup", T0)  # type: ignore[arg-type]  # the point: a wrong type
