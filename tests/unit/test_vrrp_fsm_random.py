"""Random event sequences never break the transition table or the timer invariants,
and only a truly illegal event (Startup once started) raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastha.vrrp.actions import StateChanged
from fastha.vrrp.events import (
    AdvertReceived,
    LinkChanged,
    PriorityChanged,
    Shutdown,
    Startup,
    SyncFault,
    SyncGoto,
    TimerExpired,
    TimerKind,
    TrackFault,
)
from fastha.vrrp.fsm import Machine
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import TRANSITIONS, IllegalTransition, State

pytestmark = pytest.mark.unit

S = 1_000_000_000

params = st.builds(
    InstanceParams,
    name=st.just("VI"),
    version=st.sampled_from([2, 3]),
    priority=st.integers(1, 255),
    adver_int_cs=st.sampled_from([1, 50, 100, 300]),
    initial_state=st.sampled_from([State.BACKUP, State.MASTER]),
    primary_address=st.sampled_from(["192.0.2.10", None]),
    nopreempt=st.booleans(),
    preempt_delay_ns=st.sampled_from([0, 2 * S]),
    down_timer_adverts=st.integers(1, 5),
    strict=st.booleans(),
    lower_prio_no_advert=st.sampled_from([None, True, False]),
    higher_prio_send_advert=st.booleans(),
    garp_master_refresh_ns=st.sampled_from([0, 10 * S]),
    dont_track_primary=st.booleans(),
)

events = st.one_of(
    st.just(Startup()),
    st.builds(
        AdvertReceived,
        src=st.sampled_from(["192.0.2.9", "192.0.2.10", "192.0.2.11", "fe80::1"]),
        priority=st.integers(0, 255),
        adver_int_cs=st.integers(1, 4095),
    ),
    st.builds(TimerExpired, kind=st.sampled_from(TimerKind), deadline_ns=st.integers(0, 100 * S)),
    st.tuples(st.just("fire"), st.integers(0, 4)),  # fire a currently armed timer
    st.builds(PriorityChanged, priority=st.integers(-10, 300)),
    st.builds(LinkChanged, up=st.booleans()),
    st.builds(TrackFault, fault=st.booleans()),
    st.builds(SyncGoto, state=st.sampled_from([State.MASTER, State.BACKUP])),
    st.builds(SyncFault, fault=st.booleans()),
    st.just(Shutdown()),
)


def check_invariants(m: Machine) -> None:
    timers = m.armed_timers
    if m.state == State.MASTER:
        assert TimerKind.ADVER in timers and m.vips_set
        assert TimerKind.MASTER_DOWN not in timers
    elif m.state == State.BACKUP:
        assert TimerKind.MASTER_DOWN in timers and not m.vips_set
        assert TimerKind.ADVER not in timers
    else:
        assert not timers and not m.vips_set
    assert 1 <= m.effective_priority <= 255


@given(params, st.lists(st.tuples(events, st.integers(0, 5 * S)), max_size=40))
def test_random_sequences_respect_the_table(p: InstanceParams, steps: list) -> None:
    m = Machine(p)
    now = 10 * S
    started = False
    for ev, dt in steps:
        now += dt
        if isinstance(ev, tuple):
            armed = sorted(m.armed_timers.items())
            if not armed:
                continue
            kind, (deadline, _interval) = armed[ev[1] % len(armed)]
            now = max(now, deadline)
            ev = TimerExpired(kind, deadline)
        before = m.state
        if isinstance(ev, Startup) and started:
            with pytest.raises(IllegalTransition):
                m.handle(ev, now)
            assert m.state == before
            continue
        if isinstance(ev, Startup):
            started = True
        if isinstance(ev, Shutdown):
            started = True  # a stopped machine cannot start again
        actions = m.handle(ev, now)
        state = before
        for a in actions:
            if isinstance(a, StateChanged):
                assert a.old == state
                assert a.new in TRANSITIONS[a.old]
                state = a.new
        assert state == m.state
        check_invariants(m)


def _view(m: Machine) -> tuple[object, ...]:
    """Everything a machine shows, to compare two of them."""
    return (
        m.state,
        m.wantstate,
        m.base_priority,
        m.effective_priority,
        m.master_address,
        m.master_priority,
        m.master_adver_int_cs,
        m.vips_set,
        m.armed_timers,
        m.counters,
    )


@given(params, st.lists(st.tuples(events, st.integers(0, 5 * S)), max_size=40))
def test_advert_tick_is_handle_of_the_advert_timer(p: InstanceParams, steps: list) -> None:
    """The runtime's hot path (`advert_tick`) answers an Adver_Timer tick as `handle`
    does and leaves the machine the same, current or stale tick; its advert is built
    once per priority, not per tick."""
    twin, fast = Machine(p), Machine(p)
    now = 10 * S
    for ev, dt in steps:
        now += dt
        if isinstance(ev, tuple):  # an armed timer's tick, or the next Adver_Timer one
            armed = sorted(twin.armed_timers.items())
            if not armed:
                continue
            kind, (deadline, interval) = armed[ev[1] % len(armed)]
            deadline += ev[1] * interval
            now = max(now, deadline)
            ev = TimerExpired(kind, deadline)
        if (isinstance(ev, Startup) and twin.state != State.INIT) or twin.state == State.STOP:
            continue
        if isinstance(ev, TimerExpired) and ev.kind == TimerKind.ADVER:
            answer = fast.advert_tick(ev.deadline_ns)
            assert answer == twin.handle(ev, now)
            if answer:
                assert fast.advert_tick(ev.deadline_ns) is answer  # prebuilt
                twin.handle(ev, now)
        else:
            assert fast.handle(ev, now) == twin.handle(ev, now)
        assert _view(fast) == _view(twin)
