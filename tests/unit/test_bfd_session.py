"""The BFD session machine (fastha.bfd.session) stepped against itself on a virtual clock:
two machines exchange the bytes they encode (decoded again by _wire), a driver here keeps
their timers. Checks RFC 5880 §6.8 as keepalived 2.2.7's bfd_scheduler.c runs it."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
from tests.support.bfd_sim import MS, US, Net, Node, params

from fastha.bfd import actions as A
from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import Received, Reconfigure, Start, Stop, TimerExpired, TimerKind
from fastha.bfd.params import SessionParams
from fastha.bfd.session import Session, ttl_ok
from fastha.bfd.states import Diag, State, diag_text
from fastha.wire.bfd import BfdDropReason, decode_bfd, encode_bfd


def handshake(pa: SessionParams | None = None, pb: SessionParams | None = None) -> Net:
    net = Net(pa or params("a"), pb or params("b"))
    net.start("a")
    net.start("b", 3 * MS)
    net.run_for(3000 * MS)
    assert net.up()
    return net


@pytest.mark.unit
def test_three_way_handshake() -> None:
    net = Net(params("a"), params("b"))
    net.start("a")
    net.start("b", 3 * MS)
    net.run_for(3000 * MS)
    a, b = net.nodes["a"], net.nodes["b"]
    # a's first packet (Down) finds b not started yet; b's first (Down) puts a in Init;
    # a's Init puts b Up, and b's Up puts a Up (RFC 5880 §6.2).
    assert a.changes() == [(State.DOWN, State.INIT), (State.INIT, State.UP)]
    assert b.changes() == [(State.DOWN, State.UP)]
    assert [(e.name, e.up) for e in a.events()] == [("a", False), ("a", True)]
    assert [(e.name, e.up) for e in b.events()] == [("b", False), ("b", True)]
    assert net["a"].remote_discr == net["b"].local_discr != 0
    assert net["b"].remote_discr == net["a"].local_discr != 0
    # Up: the fast rate after a Poll sequence; Detection Time = mult x max(rx, peer's tx).
    for s in (net["a"], net["b"]):
        assert not s.poll
        assert s.local_tx_us == 10_000
        assert s.detect_time_us == 3 * 10_000
    # Before Up a packet says idle_tx as Desired Min TX; once Up, min_tx.
    states_tx = {(c.state, c.desired_min_tx_us) for _, c in a.sent}
    assert (State.DOWN, 1_000_000) in states_tx and (State.UP, 10_000) in states_tx
    assert all(tx == 1_000_000 for st, tx in states_tx if st != State.UP)


@pytest.mark.unit
def test_up_starts_a_poll_which_the_peer_answers_with_final() -> None:
    net = handshake()
    for name, other in (("a", "b"), ("b", "a")):
        sent = net.nodes[name].sent
        first_up = next(i for i, (_, c) in enumerate(sent) if c.state == State.UP)
        first = sent[first_up][1]
        if first.final:
            # it went Up on a Poll: keepalived sends its own new parameters with the F
            # instead of a Poll of its own (bfd_build_packet)
            assert not first.poll and first.desired_min_tx_us == 10_000
            continue
        assert first.poll  # idle_tx != min_tx: Poll on entering Up
        t_poll = sent[first_up][0]
        # the peer's next packet after receipt carries F, sent at once (no timer wait)
        replies = [(t, c) for t, c in net.nodes[other].sent if t > t_poll]
        assert replies[0][1].final and replies[0][0] == t_poll + net.delay
        assert not any(c.poll for t, c in sent if t > replies[0][0] + net.delay)


@pytest.mark.unit
def test_no_poll_when_idle_tx_equals_min_tx() -> None:
    net = handshake(params("a", idle_tx_us=1_000_000, min_tx_us=1_000_000))
    assert not any(c.poll for _, c in net.nodes["a"].sent)
    assert any(c.poll for _, c in net.nodes["b"].sent)


@pytest.mark.unit
def test_tx_intervals_are_jittered_as_keepalived() -> None:
    """Interval = tx - rand(tx/10, tx/4): between 75 % and 90 % of tx (RFC 5880 §6.8.7)."""
    net = handshake()
    t0 = net.now
    net.run_for(500 * MS)
    times = [t for t, _ in net.nodes["a"].sent_between(t0, net.now)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 40
    assert min(gaps) >= 7_500 * US and max(gaps) <= 9_000 * US
    assert max(gaps) - min(gaps) > 500 * US  # jittered, not a fixed period
    # before Up, the idle rate: one packet per 0.75..0.9 s
    idle = [t for t, c in net.nodes["a"].sent if c.state == State.DOWN]
    assert all(750 * MS <= b - a <= 900 * MS for a, b in itertools.pairwise(idle))


@pytest.mark.unit
@pytest.mark.parametrize(("pick", "gap_us"), [("lo", 9_000), ("hi", 7_500)])
def test_jitter_comes_from_the_random_source(pick: str, gap_us: int) -> None:
    calls: list[tuple[int, int]] = []

    def rand(lo: int, hi: int) -> int:
        calls.append((lo, hi))
        return lo if pick == "lo" else hi

    s = Session(params("a", idle_tx_us=10_000), rand=rand, new_discr=lambda: 7)
    acts = s.handle(Start(0))
    arm = next(a for a in acts if isinstance(a, A.ArmTimer))
    assert calls == [(1_000, 2_500)]
    assert (arm.kind, arm.deadline_ns) == (TimerKind.TX, gap_us * US)
    acts = s.handle(TimerExpired(TimerKind.TX, arm.deadline_ns, arm.deadline_ns + 40 * US))
    assert [type(a) for a in acts] == [A.SendControl, A.ArmTimer]
    # the next one counts from when this one went out (keepalived's thread_add_timer)
    assert acts[1].deadline_ns == arm.deadline_ns + 40 * US + gap_us * US  # type: ignore[union-attr]


@pytest.mark.unit
def test_link_cut_goes_down_at_the_detection_time() -> None:
    net = handshake()
    net.link = False
    cut = net.now
    net.run_for(100 * MS)
    for name in "ab":
        node = net.nodes[name]
        s = node.session
        assert s.state == State.DOWN and s.local_diag == Diag.EXPIRED
        last_rx = s.last_seen_ns
        assert cut - 10 * MS < last_rx <= cut
        (exp,) = [(t, a) for t, a in node.notes if isinstance(a, A.Expired)]
        assert exp[0] == last_rx + 30 * MS  # Detection Time after the last packet
        assert exp[1].after_ns == 30 * MS and exp[1].overdue_ns == 0 and exp[1].was_up
        down = node.events()[-1]
        assert (down.up, down.diag, down.sent_ns) == (False, Diag.EXPIRED, exp[0])
        assert diag_text(down.diag) == "Control Detection Time Expired"
        # keepalived: a new discriminator when leaving Up; the peer's forgotten
        assert s.local_discr not in (0, node.sent[0][1].my_discr)
        assert s.remote_state == State.DOWN and s.remote_discr == 0
        # back to the idle rate while Down
        assert s.local_tx_us == 1_000_000
    net.link = True
    net.run_for(3000 * MS)
    assert net.up()
    assert [e.up for e in net.nodes["a"].events()] == [False, True, False, True]


@pytest.mark.unit
def test_peer_killed_then_restarted() -> None:
    net = handshake()
    net.nodes["b"].alive = False
    net.run_for(100 * MS)
    assert net["a"].state == State.DOWN and net["a"].local_diag == Diag.EXPIRED
    # b comes back as a new process: a new session, Down, discriminator unknown to a
    b2 = Session(params("b"), rand=random.Random(9).randint, new_discr=lambda: 0xBEEF)
    net.nodes["b"] = Node(b2)
    net.start("b")
    net.run_for(3000 * MS)
    assert net.up() and net["a"].remote_discr == 0xBEEF


@pytest.mark.unit
def test_peer_restart_while_up_is_signalled_down() -> None:
    """An Up session hearing Down from its peer goes Down (diag 3), then Up again."""
    net = handshake()
    b2 = Session(params("b"), rand=random.Random(9).randint, new_discr=lambda: 0xBEEF)
    net.nodes["b"] = Node(b2)
    net.start("b")
    net.run_for(1 * MS)  # b's first packet (Down, sent on Start) reached a
    a = net.nodes["a"]
    assert a.changes()[-1] == (State.UP, State.DOWN)
    assert net["a"].local_diag == Diag.NBR_SIGNALLED_DOWN
    assert a.events()[-1].up is False and a.events()[-1].diag == Diag.NBR_SIGNALLED_DOWN
    net.run_for(3000 * MS)
    assert net.up()


@pytest.mark.unit
def test_reconfigure_polls_and_renegotiates() -> None:
    net = handshake()
    t0 = net.now
    net.feed("a", Reconfigure(params("a", min_tx_us=50_000, min_rx_us=20_000), net.now))
    assert net["a"].poll
    net.run_for(20 * MS)
    a_sent = net.nodes["a"].sent_between(t0, net.now)
    b_sent = net.nodes["b"].sent_between(t0, net.now)
    poll_pkts = [c for _, c in a_sent if c.poll]
    assert poll_pkts and poll_pkts[0].desired_min_tx_us == 50_000
    assert poll_pkts[0].required_min_rx_us == 20_000
    assert any(c.final for _, c in b_sent)
    assert not net["a"].poll  # Final ended the sequence
    # a sends at max(its min_tx, b's min_rx); b at max(b's min_tx, a's min_rx)
    assert net["a"].local_tx_us == 50_000 and net["b"].local_tx_us == 20_000
    # each detects with the other's multiplier x max(own min_rx, other's min_tx)
    assert net["a"].detect_time_us == 3 * 20_000
    assert net["b"].detect_time_us == 3 * 50_000
    assert any(isinstance(x, A.DetectTimeChanged) for _, x in net.nodes["b"].notes)
    assert any(isinstance(x, A.PollStarted) for _, x in net.nodes["a"].notes)
    net.run_for(2000 * MS)
    assert net.up()  # no false Down through the change
    assert [e.up for e in net.nodes["b"].events()] == [False, True]


@pytest.mark.unit
def test_reconfigure_without_timer_change_does_not_poll() -> None:
    net = handshake()
    acts = net.feed("a", Reconfigure(params("a", multiplier=5), net.now))
    assert not net["a"].poll
    # keepalived re-sends the current state to its consumers on reload
    assert [a for a in acts if isinstance(a, BfdStateChange)] == [
        BfdStateChange("a", True, net.now, 0)
    ]


@pytest.mark.unit
def test_stop_sends_admindown_and_the_peer_does_not_report_it() -> None:
    net = handshake()
    b_events = len(net.nodes["b"].events())
    acts = net.feed("a", Stop(net.now))
    sent = [decode_bfd(a.payload) for a in acts if isinstance(a, A.SendControl)]
    assert [(c.state, c.diag) for c in sent] == [(State.ADMIN_DOWN, Diag.ADMIN_DOWN)]
    assert net.nodes["a"].timers == {}
    net.run_for(100 * MS)
    assert net["b"].state == State.DOWN
    assert net["b"].local_diag == Diag.NBR_SIGNALLED_DOWN
    # RFC 5880 §6.8.16 / keepalived: AdminDown is not a path failure; no Down event
    assert len(net.nodes["b"].events()) == b_events
    # a, stopped, drops what b sends
    drops = [x for _, x in net.nodes["a"].notes if isinstance(x, A.Dropped)]
    assert drops and {d.reason for d in drops} == {BfdDropReason.ADMIN_DOWN}
    assert net.nodes["a"].sent[-1][1].state == State.ADMIN_DOWN
    net.start("a")
    net.run_for(3000 * MS)
    assert net.up()


@pytest.mark.unit
def test_passive_waits_for_the_peer_and_falls_silent_on_down() -> None:
    net = Net(params("a", passive=True), params("b"))
    net.start("a")
    net.run_for(2000 * MS)
    assert net.nodes["a"].sent == [] and net.nodes["a"].timers == {}
    net.start("b")
    net.run_for(3000 * MS)
    assert net.up()
    net.link = False
    net.run_for(100 * MS)
    assert net["a"].state == State.DOWN
    t_down = net.now
    net.run_for(3000 * MS)
    assert net.nodes["a"].sent_between(t_down, net.now) == []
    assert net.nodes["b"].sent_between(t_down, net.now) != []


@pytest.mark.unit
def test_both_passive_never_come_up() -> None:
    net = Net(params("a", passive=True), params("b", passive=True))
    net.start("a")
    net.start("b")
    net.run_for(5000 * MS)
    assert net.nodes["a"].sent == net.nodes["b"].sent == []


@pytest.mark.unit
@pytest.mark.parametrize(
    ("ttl", "max_hops", "rx_ttl", "ok"),
    [
        (255, 0, 255, True),
        (255, 0, 254, False),
        (255, 0, 0, True),  # no TTL from the kernel: keepalived lets it through
        (255, 5, 250, True),
        (255, 5, 249, False),
        (255, 255, 1, True),  # max_hops 255: no check
        (64, 0, 64, True),  # keepalived's IPv6 default hoplimit
        (64, 0, 63, False),
    ],
)
def test_gtsm(ttl: int, max_hops: int, rx_ttl: int, ok: bool) -> None:
    p = params("a", ttl=ttl, max_hops=max_hops)
    assert ttl_ok(rx_ttl, p) is ok
    s = Session(p, rand=random.Random(1).randint, new_discr=lambda: 5)
    s.handle(Start(0))
    pkt = decode_bfd(encode_bfd(1, 0, 3, 9, 0, 1_000_000, 10_000))
    acts = s.handle(Received(pkt, rx_ttl, MS))
    if ok:
        assert s.state == State.INIT
    else:
        assert acts == [A.Dropped(BfdDropReason.TTL)] and s.state == State.DOWN


@pytest.mark.unit
def test_stale_timer_expiry_is_ignored() -> None:
    s = Session(params("a"), rand=random.Random(1).randint, new_discr=lambda: 5)
    acts = s.handle(Start(0))
    arm = next(a for a in acts if isinstance(a, A.ArmTimer))
    assert s.handle(TimerExpired(TimerKind.TX, arm.deadline_ns + 1, arm.deadline_ns + 1)) == []
    assert s.handle(TimerExpired(TimerKind.DETECT, 5, 5)) == []
    assert s.timers() == {TimerKind.TX: arm.deadline_ns}


@pytest.mark.unit
def test_init_times_out_without_an_event() -> None:
    """Init not confirmed within the Detection Time: back to Down, consumers not told."""
    s = Session(params("a"), rand=random.Random(1).randint, new_discr=lambda: 5)
    s.handle(Start(0))
    s.handle(Received(decode_bfd(encode_bfd(1, 0, 3, 9, 0, 1_000_000, 10_000)), 255, MS))
    assert s.state == State.INIT
    deadline = s.timers()[TimerKind.DETECT]
    assert deadline == MS + 3 * 1_000_000 * US  # peer's mult x its (idle) Desired Min TX
    acts = s.handle(TimerExpired(TimerKind.DETECT, deadline, deadline))
    assert s.state == State.DOWN
    assert not any(isinstance(a, BfdStateChange) for a in acts)
    assert A.Expired(deadline - MS, 0, False) in acts


@pytest.mark.unit
def test_peer_demand_stops_periodic_packets_when_both_up() -> None:
    """We never ask for Demand mode; a peer that does is honoured as keepalived does."""
    net = handshake()
    b = net["b"]
    pkt = decode_bfd(
        encode_bfd(3, 0, 3, b.local_discr, b.remote_discr, 10_000, 10_000, demand=True)
    )
    net.feed("a", Received(pkt, 255, net.now))
    assert TimerKind.TX not in net.nodes["a"].timers
    assert all(not c.demand for _, c in net.nodes["a"].sent)


@pytest.mark.unit
def test_state_is_read_only_from_outside() -> None:
    s = Session(params("a"), rand=random.Random(1).randint, new_discr=lambda: 5)
    for name in ("state", "remote_state", "local_discr", "remote_discr", "poll", "params"):
        with pytest.raises(AttributeError):
            setattr(s, name, None)
    snap = s.snapshot()
    assert snap["local_state"] == "Down" and snap["local_discr"] == 5


@pytest.mark.unit
def test_reconfigured_params_are_used() -> None:
    net = handshake()
    new = replace(net["a"].params, idle_tx_us=2_000_000)
    net.feed("a", Reconfigure(new, net.now))
    assert net["a"].params is new
