"""VRRP state machine: RFC 5798 §6.4 behaviour and keepalived's additions."""

from __future__ import annotations

import itertools

import pytest

from fastha.vrrp.actions import (
    AddVips,
    ArmTimer,
    CancelTimer,
    Notify,
    NotifyKind,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    StateChanged,
)
from fastha.vrrp.events import (
    AdvertReceived,
    LinkChanged,
    PriorityChanged,
    Shutdown,
    Startup,
    TimerExpired,
    TimerKind,
    TrackFault,
    VipClaimed,
)
from fastha.vrrp.fsm import Machine, compare_addresses
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import TRANSITIONS, IllegalTransition, State, check_transition
from fastha.vrrp.timers import PHASE_STEP_NS, phase_aligned
from fastha.vrrp.timing import master_down_interval_ns, skew_time_min_ns, skew_time_ns

pytestmark = pytest.mark.unit

S = 1_000_000_000
MS = 1_000_000
T0 = 1_000 * S
ME = "192.0.2.10"


def mk(**kw: object) -> Machine:
    kw.setdefault("name", "VI_1")
    kw.setdefault("version", 3)
    kw.setdefault("primary_address", ME)
    return Machine(InstanceParams(**kw))  # type: ignore[arg-type]


def of(actions: tuple[object, ...], cls: type) -> list:
    return [a for a in actions if isinstance(a, cls)]


def down_deadline(m: Machine) -> int:
    return m.armed_timers[TimerKind.MASTER_DOWN][0]


def started_backup(**kw: object) -> Machine:
    m = mk(**kw)
    m.handle(Startup(), T0)
    assert m.state == State.BACKUP
    return m


def started_master(**kw: object) -> Machine:
    m = started_backup(**kw)
    m.handle(TimerExpired(TimerKind.MASTER_DOWN, down_deadline(m)), down_deadline(m))
    assert m.state == State.MASTER
    return m


# -- the transition table -------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), list(itertools.product(State, State)))
def test_transition_table_enforced(old: State, new: State) -> None:
    if new in TRANSITIONS[old]:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new)


def test_stop_is_terminal_and_rfc_states_connected() -> None:
    assert TRANSITIONS[State.STOP] == frozenset()
    assert State.MASTER in TRANSITIONS[State.BACKUP]
    assert State.BACKUP in TRANSITIONS[State.MASTER]
    assert State.MASTER not in TRANSITIONS[State.STOP]


def test_startup_twice_is_illegal() -> None:
    m = started_backup()
    with pytest.raises(IllegalTransition):
        m.handle(Startup(), T0)


def test_startup_after_stop_is_illegal() -> None:
    m = started_master()
    m.handle(Shutdown(), T0 + 5 * S)
    with pytest.raises(IllegalTransition):
        m.handle(Startup(), T0 + 6 * S)


# -- startup ----------------------------------------------------------------------


def test_startup_backup_waits_master_down_interval() -> None:
    m = mk(priority=100)
    acts = m.handle(Startup(), T0)
    down = master_down_interval_ns(3, 100, 100)
    assert acts == (
        StateChanged(State.INIT, State.BACKUP, "startup"),
        ArmTimer(TimerKind.MASTER_DOWN, T0 + down, 0),
        Notify(NotifyKind.BACKUP, 100),
    )


def test_startup_state_master_hint_waits_one_interval_plus_min_skew() -> None:
    m = mk(priority=150, initial_state=State.MASTER)
    m.handle(Startup(), T0)
    assert m.state == State.BACKUP
    assert down_deadline(m) == T0 + 1 * S + skew_time_min_ns(3, 100)


def test_owner_goes_master_at_once_and_adverts_before_vips() -> None:
    m = mk(priority=255)
    acts = m.handle(Startup(), T0)
    assert m.state == State.MASTER
    kinds = [type(a) for a in acts]
    assert kinds.index(SendAdvert) < kinds.index(AddVips) < kinds.index(SendGratuitous)
    assert SendAdvert(255) in acts
    assert ArmTimer(TimerKind.ADVER, T0 + 1 * S, 1 * S) in acts
    assert AddVips(accept=True) in acts
    assert m.counters.become_master == 1


def test_startup_with_link_down_enters_fault() -> None:
    m = mk()
    m.handle(LinkChanged(False), T0)
    acts = m.handle(Startup(), T0)
    assert m.state == State.FAULT
    assert of(acts, StateChanged) == [StateChanged(State.INIT, State.FAULT, "startup with a fault")]


# -- backup -------------------------------------------------------------------------


def test_backup_becomes_master_when_down_timer_fires() -> None:
    m = started_backup(priority=100, garp_master_repeat=3)
    d = down_deadline(m)
    acts = m.handle(TimerExpired(TimerKind.MASTER_DOWN, d), d + 50_000)
    assert m.state == State.MASTER
    assert acts[0] == StateChanged(State.BACKUP, State.MASTER, "master down timer expired")
    assert SendAdvert(100) in acts
    assert SendGratuitous(3) in acts
    assert ArmTimer(TimerKind.ADVER, phase_aligned(d + 50_000 + S, S), S) in acts
    assert ArmTimer(TimerKind.GARP_DELAY, d + 50_000 + 5 * S, 0) in acts
    assert Notify(NotifyKind.MASTER, 100) in acts


def test_stale_timer_expiry_is_ignored() -> None:
    m = started_backup(priority=100)
    old = down_deadline(m)
    m.handle(AdvertReceived("192.0.2.20", 200, 100), T0 + S)
    assert down_deadline(m) != old
    assert m.handle(TimerExpired(TimerKind.MASTER_DOWN, old), old) == ()
    assert m.state == State.BACKUP
    # a kind that was never armed is stale too
    assert m.handle(TimerExpired(TimerKind.ADVER, T0 + 2 * S), T0 + 2 * S) == ()


def test_backup_accepts_higher_priority_and_restarts_timer() -> None:
    m = started_backup(priority=100)
    acts = m.handle(AdvertReceived("192.0.2.20", 200, 100), T0 + S)
    assert acts == (ArmTimer(TimerKind.MASTER_DOWN, T0 + S + m.down_interval_ns, 0),)
    assert m.master_address == "192.0.2.20"
    assert m.master_priority == 200


def test_backup_accepts_equal_priority_whatever_the_address() -> None:
    m = started_backup(priority=100)
    acts = m.handle(AdvertReceived("192.0.2.1", 100, 100), T0 + S)
    assert of(acts, ArmTimer)


def test_lower_priority_advert_never_restarts_a_preempting_backups_timer() -> None:
    """RFC 5798 §6.4.2: Preempt_Mode true and lower priority -> discard the advert;
    the Master_Down_Timer keeps running and we take over when it fires."""
    m = started_backup(priority=200)
    deadline = down_deadline(m)
    for k in range(1, 4):
        assert m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + k * S) == ()
        assert down_deadline(m) == deadline
        assert m.lower_advert_ignored  # keepalived logs "... - discarding"
    acts = m.handle(TimerExpired(TimerKind.MASTER_DOWN, deadline), deadline)
    assert m.state == State.MASTER
    assert SendAdvert(200) in acts


def test_lower_priority_advert_does_not_teach_its_interval_to_a_preempting_backup() -> None:
    m = started_backup(priority=200)
    m.handle(AdvertReceived("192.0.2.20", 100, 7), T0 + S)
    assert m.master_adver_int_cs == 100


def test_nopreempt_backup_accepts_lower_priority_master() -> None:
    m = started_backup(priority=200, nopreempt=True)
    before = down_deadline(m)
    m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + S)
    assert down_deadline(m) == T0 + S + m.down_interval_ns != before
    assert not m.lower_advert_ignored


def test_preempt_delay_holds_then_preempts() -> None:
    m = started_backup(priority=200, preempt_delay_ns=10 * S)
    # First lower-priority advert starts the delay and is accepted.
    m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + S)
    assert down_deadline(m) == T0 + S + m.down_interval_ns
    # Still within the delay: accepted again.
    m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + 9 * S)
    held = down_deadline(m)
    assert held == T0 + 9 * S + m.down_interval_ns
    # Delay over: ignored, timer keeps running, then we preempt.
    assert m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + 12 * S) == ()
    assert down_deadline(m) == held
    m.handle(TimerExpired(TimerKind.MASTER_DOWN, held), held)
    assert m.state == State.MASTER


def test_preempt_delay_is_cancelled_by_a_higher_priority_master() -> None:
    m = started_backup(priority=200, preempt_delay_ns=10 * S)
    m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + S)
    m.handle(AdvertReceived("192.0.2.30", 250, 100), T0 + 2 * S)
    # A new lower-priority master restarts the delay from now.
    m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + 12 * S)
    assert down_deadline(m) == T0 + 12 * S + m.down_interval_ns


def test_priority_zero_makes_backup_take_over_after_skew_time() -> None:
    m = started_backup(priority=100)
    acts = m.handle(AdvertReceived("192.0.2.20", 0, 100), T0 + S)
    skew = skew_time_ns(3, 100, 100)
    assert acts == (ArmTimer(TimerKind.MASTER_DOWN, T0 + S + skew, 0),)
    assert m.counters.pri_zero_rcvd == 1
    m.handle(TimerExpired(TimerKind.MASTER_DOWN, T0 + S + skew), T0 + S + skew)
    assert m.state == State.MASTER


def test_backup_learns_master_adver_int_v3() -> None:
    m = started_backup(priority=100, adver_int_cs=100)
    m.handle(AdvertReceived("192.0.2.20", 200, 25), T0)
    assert m.master_adver_int_cs == 25
    assert down_deadline(m) == T0 + master_down_interval_ns(3, 100, 25)


def test_v2_does_not_learn_the_interval() -> None:
    m = started_backup(version=2, priority=100)
    m.handle(AdvertReceived("192.0.2.20", 200, 300), T0)
    assert m.master_adver_int_cs == 100
    assert down_deadline(m) == T0 + 3 * S + skew_time_ns(2, 100, 100)


def test_down_timer_adverts_multiplier() -> None:
    m = started_backup(priority=100, down_timer_adverts=1)
    m.handle(AdvertReceived("192.0.2.20", 200, 100), T0)
    assert down_deadline(m) == T0 + 1 * S + skew_time_ns(3, 100, 100)


def test_priority_change_moves_running_down_timer_by_the_skew_change() -> None:
    m = started_backup(priority=100)
    before = down_deadline(m)
    acts = m.handle(PriorityChanged(200), T0 + S)
    delta = skew_time_ns(3, 200, 100) - skew_time_ns(3, 100, 100)
    assert acts == (ArmTimer(TimerKind.MASTER_DOWN, before + delta, 0),)
    assert m.effective_priority == 200


def test_priority_is_clamped_and_owner_priority_never_changes() -> None:
    m = started_backup(priority=100)
    m.handle(PriorityChanged(400), T0)
    assert m.effective_priority == 254
    m.handle(PriorityChanged(-5), T0)
    assert m.effective_priority == 1
    o = mk(priority=255)
    o.handle(Startup(), T0)
    assert o.handle(PriorityChanged(100), T0) == ()
    assert o.effective_priority == 255


# -- master ---------------------------------------------------------------------------


def test_master_adverts_on_fixed_grid() -> None:
    m = started_master(priority=100)
    anchor, interval = m.armed_timers[TimerKind.ADVER]
    assert interval == S
    for k in range(3):
        assert m.handle(TimerExpired(TimerKind.ADVER, anchor + k * S), anchor + k * S + 10) == (
            SendAdvert(100),
        )
    # off-grid and pre-anchor ticks are stale
    assert m.handle(TimerExpired(TimerKind.ADVER, anchor + S // 2), anchor + S) == ()
    assert m.handle(TimerExpired(TimerKind.ADVER, anchor - S), anchor) == ()


def test_master_hearing_higher_priority_goes_backup() -> None:
    m = started_master(priority=100)
    now = T0 + 10 * S
    acts = m.handle(AdvertReceived("192.0.2.20", 150, 50), now)
    assert m.state == State.BACKUP
    assert StateChanged(State.MASTER, State.BACKUP, "higher priority advert") in acts
    assert CancelTimer(TimerKind.ADVER) in acts
    assert RemoveVips() in acts
    assert SendAdvert(0) not in acts  # no priority 0 on a normal hand-over
    # learned interval (v3) drives the new master down timer
    assert m.master_adver_int_cs == 50
    assert ArmTimer(TimerKind.MASTER_DOWN, now + master_down_interval_ns(3, 100, 50), 0) in acts
    assert m.counters.release_master == 1


def test_higher_prio_send_advert() -> None:
    m = started_master(priority=100, higher_prio_send_advert=True)
    acts = m.handle(AdvertReceived("192.0.2.20", 150, 100), T0 + 10 * S)
    assert acts.index(SendAdvert(100)) < acts.index(RemoveVips())


@pytest.mark.parametrize(
    ("src", "wins"),
    [("192.0.2.11", True), ("192.0.2.9", False), ("10.0.0.1", False), ("203.0.113.1", True)],
)
def test_equal_priority_tie_break_by_primary_address(src: str, wins: bool) -> None:
    m = started_master(priority=100)
    m.handle(AdvertReceived(src, 100, 100), T0 + 10 * S)
    assert m.state == (State.BACKUP if wins else State.MASTER)


def test_equal_priority_tie_break_ipv6_numeric() -> None:
    assert compare_addresses("fe80::10", "fe80::9") == 1
    assert compare_addresses("fe80::9", "fe80::a") == -1
    assert compare_addresses("192.0.2.1", "fe80::1") == 0
    m = started_master(priority=100, primary_address="fe80::a")
    m.handle(AdvertReceived("fe80::b", 100, 100), T0 + 10 * S)
    assert m.state == State.BACKUP


def test_master_hearing_lower_priority_reasserts_by_default() -> None:
    m = started_master(priority=200)
    now = T0 + 10 * S
    acts = m.handle(AdvertReceived("192.0.2.20", 100, 100), now)
    assert m.state == State.MASTER
    assert acts == (
        SendAdvert(200),
        SendGratuitous(5),
        ArmTimer(TimerKind.GARP_LOWER_PRIO, now + 5 * S, 0),
        Notify(NotifyKind.MASTER_RX_LOWER_PRI, 200),
    )
    assert m.handle(TimerExpired(TimerKind.GARP_LOWER_PRIO, now + 5 * S), now + 5 * S) == (
        SendGratuitous(5),
    )


def test_lower_prio_no_advert_and_garp_lower_prio_settings() -> None:
    m = started_master(
        priority=200,
        lower_prio_no_advert=True,
        garp_lower_prio_repeat=2,
        garp_lower_prio_delay_ns=0,
    )
    acts = m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + 10 * S)
    assert acts == (SendGratuitous(2), Notify(NotifyKind.MASTER_RX_LOWER_PRI, 200))


def test_master_re_announces_a_vip_another_mac_claims_an_interval_later() -> None:
    m = started_master(priority=150)  # advert_int 1 s, garp_master_repeat 5
    now = T0 + 10 * S
    claim = VipClaimed("192.0.2.100", "02:00:00:00:00:99")
    assert m.handle(claim, now) == (ArmTimer(TimerKind.GARP_DEFEND, now + S, 0),)
    # The rest of that node's burst, and its answer to ours: absorbed in the pending one.
    assert m.handle(claim, now + 1000) == ()
    assert m.handle(claim, now + S - 1) == ()
    answer = m.handle(TimerExpired(TimerKind.GARP_DEFEND, now + S), now + S)
    assert answer == (SendGratuitous(5, ("192.0.2.100",)),)
    assert m.counters.vip_claimed == 3  # absorbed claims are counted all the same
    later = now + 3 * S
    assert m.handle(claim, later) == (ArmTimer(TimerKind.GARP_DEFEND, later + S, 0),)
    assert m.counters.vip_claimed == 4
    assert m.state == State.MASTER


def test_a_defence_announces_only_the_claimed_addresses() -> None:
    m = started_master(priority=150)
    now = T0 + 10 * S
    m.handle(VipClaimed("192.0.2.102", "02:00:00:00:00:98"), now)
    m.handle(VipClaimed("192.0.2.100", "02:00:00:00:00:99"), now + 1000)
    answer = m.handle(TimerExpired(TimerKind.GARP_DEFEND, now + S), now + S)
    assert answer == (SendGratuitous(5, ("192.0.2.100", "192.0.2.102")),)
    # Answered: the next defence starts from nothing claimed.
    m.handle(VipClaimed("192.0.2.101", "02:00:00:00:00:97"), now + 2 * S)
    answer = m.handle(TimerExpired(TimerKind.GARP_DEFEND, now + 3 * S), now + 3 * S)
    assert answer == (SendGratuitous(5, ("192.0.2.101",)),)


def test_a_mac_that_keeps_claiming_is_answered_less_and_less_often() -> None:
    m = started_master(priority=150)  # advert_int 1 s
    start = T0 + 10 * S
    mac, other = "02:00:00:00:00:99", "02:00:00:00:00:98"
    due: int | None = None
    answers: list[int] = []
    for now in range(start, start + 40 * S, S // 20):  # a claim every 50 ms for 40 s
        if due is not None and now >= due:
            acts = m.handle(TimerExpired(TimerKind.GARP_DEFEND, due), due)
            assert acts == (SendGratuitous(5, ("192.0.2.100",)),)
            answers.append((due - start) // S)
            due = None
        for act in m.handle(VipClaimed("192.0.2.100", mac), now):
            assert isinstance(act, ArmTimer) and act.kind == TimerKind.GARP_DEFEND
            due = act.deadline_ns
    assert answers == [1, 2, 4, 8, 16, 32]  # 1, 2, 4, 8, 16 intervals apart
    assert m.counters.vip_claimed == 800
    assert m.counters.vip_claim_ignored == 800 - 6
    # Another MAC's claim is not held back by that one's back-off.
    now = start + 40 * S
    assert m.handle(VipClaimed("192.0.2.100", other), now) == (
        ArmTimer(TimerKind.GARP_DEFEND, now + S, 0),
    )


def test_leaving_master_drops_a_pending_re_announcement() -> None:
    m = started_master(priority=100)
    now = T0 + 10 * S
    m.handle(VipClaimed("192.0.2.100", "02:00:00:00:00:99"), now)
    acts = m.handle(AdvertReceived("192.0.2.20", 200, 100), now + 1000)
    assert CancelTimer(TimerKind.GARP_DEFEND) in acts
    assert m.state == State.BACKUP
    assert m.handle(TimerExpired(TimerKind.GARP_DEFEND, now + S), now + S) == ()


def test_backup_ignores_vip_claims() -> None:
    m = started_backup(priority=100)
    assert m.handle(VipClaimed("192.0.2.100", "02:00:00:00:00:99"), T0 + 10 * S) == ()
    assert m.state == State.BACKUP
    assert m.counters.vip_claimed == 0


def test_strict_master_ignores_lower_priority_silently() -> None:
    # What fastha.config.normalise_vrrp makes of vrrp_strict: no advert, no GARP repeat.
    m = started_master(
        priority=200, strict=True, lower_prio_no_advert=True, garp_lower_prio_repeat=0
    )
    acts = m.handle(AdvertReceived("192.0.2.20", 100, 100), T0 + 10 * S)
    assert acts == (Notify(NotifyKind.MASTER_RX_LOWER_PRI, 200),)


def test_master_hearing_priority_zero_adverts_at_once_and_resets_grid() -> None:
    m = started_master(priority=100)
    now = T0 + 10 * S + 123
    acts = m.handle(AdvertReceived("192.0.2.20", 0, 100), now)
    assert acts == (SendAdvert(100), ArmTimer(TimerKind.ADVER, now - 123 + S, S))
    assert m.state == State.MASTER


def test_two_owners_conflict_lowers_ours() -> None:
    m = mk(priority=255)
    m.handle(Startup(), T0)
    m.handle(AdvertReceived("192.0.2.1", 255, 100), T0 + S)
    assert m.effective_priority == 254
    assert m.state == State.BACKUP


def test_garp_refresh_is_periodic() -> None:
    m = started_master(priority=100, garp_master_refresh_ns=60 * S, garp_master_refresh_repeat=2)
    anchor, interval = m.armed_timers[TimerKind.GARP_REFRESH]
    assert interval == 60 * S
    assert m.handle(TimerExpired(TimerKind.GARP_REFRESH, anchor + 60 * S), anchor + 60 * S) == (
        SendGratuitous(2),
    )


@pytest.mark.parametrize(
    ("kw", "accept"),
    [
        ({}, True),
        ({"strict": True}, False),
        ({"accept": False}, False),
        ({"priority": 255, "strict": True}, True),
    ],
)
def test_accept_mode_flag(kw: dict[str, object], accept: bool) -> None:
    m = mk(**kw)
    m.handle(Startup(), T0)
    if m.state != State.MASTER:
        m.handle(TimerExpired(TimerKind.MASTER_DOWN, down_deadline(m)), down_deadline(m))
    assert m.params.accept_mode is accept


# -- fault and stop ---------------------------------------------------------------


def test_link_down_master_sends_priority_zero_and_faults_then_recovers_to_backup() -> None:
    m = started_master(priority=100)
    acts = m.handle(LinkChanged(False), T0 + 10 * S)
    assert m.state == State.FAULT
    assert SendAdvert(0) in acts and RemoveVips() in acts
    assert m.counters.pri_zero_sent == 1
    assert not m.armed_timers
    acts = m.handle(LinkChanged(True), T0 + 11 * S)
    assert m.state == State.BACKUP
    assert Notify(NotifyKind.BACKUP, 100) in acts
    assert down_deadline(m) == T0 + 11 * S + m.down_interval_ns


def test_owner_leaves_fault_straight_to_master() -> None:
    m = mk(priority=255)
    m.handle(Startup(), T0)
    m.handle(LinkChanged(False), T0 + S)
    m.handle(LinkChanged(True), T0 + 2 * S)
    assert m.state == State.MASTER


def test_dont_track_primary_ignores_link() -> None:
    m = started_backup(dont_track_primary=True)
    assert m.handle(LinkChanged(False), T0) == ()
    assert m.state == State.BACKUP


def test_tracker_fault_in_backup() -> None:
    m = started_backup()
    acts = m.handle(TrackFault(True, "script chk failed"), T0 + S)
    assert m.state == State.FAULT
    assert CancelTimer(TimerKind.MASTER_DOWN) in acts
    # adverts and timers are ignored in FAULT
    assert m.handle(AdvertReceived("192.0.2.20", 0, 100), T0 + 2 * S) == ()
    m.handle(TrackFault(False), T0 + 3 * S)
    assert m.state == State.BACKUP


def test_fault_needs_every_cause_cleared() -> None:
    m = started_backup()
    m.handle(LinkChanged(False), T0)
    m.handle(TrackFault(True, "x"), T0)
    m.handle(LinkChanged(True), T0)
    assert m.state == State.FAULT
    m.handle(TrackFault(False), T0)
    assert m.state == State.BACKUP


def test_shutdown_master_releases_with_priority_zero() -> None:
    m = started_master(priority=100)
    acts = m.handle(Shutdown(), T0 + 10 * S)
    assert m.state == State.STOP
    assert acts.index(SendAdvert(0)) < acts.index(RemoveVips())
    assert Notify(NotifyKind.STOP, 100) in acts
    assert not m.armed_timers
    assert m.handle(Shutdown(), T0 + 11 * S) == ()


def test_shutdown_before_startup() -> None:
    m = mk()
    acts = m.handle(Shutdown(), T0)
    assert m.state == State.STOP and StateChanged(State.INIT, State.STOP, "shutdown") in acts


# -- params -------------------------------------------------------------------------


def test_the_owner_starts_as_master_without_preempt_delay() -> None:
    # RFC 5798 §6.4.1; keepalived's fix-ups of configured values are tested in
    # tests/unit/test_config_normalise_vrrp.py.
    p, warns = InstanceParams("VI", priority=255, preempt_delay_ns=S).normalised()
    assert p.initial_state == State.MASTER and p.preempt_delay_ns == 0 and not warns
    p, _ = InstanceParams("VI", priority=254, preempt_delay_ns=S, nopreempt=True).normalised()
    assert p.initial_state == State.BACKUP and p.preempt_delay_ns == S and p.nopreempt


# -- two routers ----------------------------------------------------------------------


def test_election_between_two_routers_by_priority() -> None:
    a = mk(priority=150, primary_address="192.0.2.1")
    b = mk(priority=100, primary_address="192.0.2.2")
    a.handle(Startup(), T0)
    b.handle(Startup(), T0)
    # The higher priority has the shorter skew, so its timer fires first.
    assert down_deadline(a) < down_deadline(b)
    da = down_deadline(a)
    acts = a.handle(TimerExpired(TimerKind.MASTER_DOWN, da), da)
    (adv,) = of(acts, SendAdvert)
    b.handle(AdvertReceived("192.0.2.1", adv.priority, 100), da)
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)
    assert down_deadline(b) == da + b.down_interval_ns


# -- the advert grid's phase ---------------------------------------------------------


@pytest.mark.parametrize("interval", [10 * MS, 30 * MS, S, 40 * S])
@pytest.mark.parametrize("offset", [0, 1, 999_999, 1_000_000, 123_456_789])
def test_advert_grid_starts_on_the_phase_step_never_late(interval: int, offset: int) -> None:
    step = min(PHASE_STEP_NS, interval // 10)
    first = phase_aligned(T0 + offset + interval, interval)
    assert first % step == 0
    assert T0 + offset + interval - step < first <= T0 + offset + interval


def test_masters_taking_over_within_one_phase_step_share_their_advert_wakeups() -> None:
    a, b = started_backup(priority=100), started_backup(priority=100)
    da, db = down_deadline(a), down_deadline(b)
    cell = da + 10 * MS - (da + 10 * MS) % PHASE_STEP_NS  # both take over inside one step
    a.handle(TimerExpired(TimerKind.MASTER_DOWN, da), cell + 100_000)
    b.handle(TimerExpired(TimerKind.MASTER_DOWN, db), cell + 800_000)
    assert a.state == b.state == State.MASTER
    assert a.armed_timers[TimerKind.ADVER] == b.armed_timers[TimerKind.ADVER] == (cell + S, S)
