"""Two BFD session machines under random operations (link cuts, loss, reordering, stops,
restarts, reloads, peer restarts) with the invariants checked after every event, and
liveness at the end: on a clean link both sessions come Up."""

from __future__ import annotations

import random

import pytest
from tests.support.bfd_sim import MS, US, Net, Node

from fastha.bfd import actions as A
from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import Event, Received, Reconfigure, Start, Stop, TimerExpired, TimerKind
from fastha.bfd.params import SessionParams
from fastha.bfd.session import Session
from fastha.bfd.states import State
from fastha.wire.bfd import decode_bfd

SEEDS = 24
RUN_NS = 12_000 * MS


def random_params(rng: random.Random, name: str, passive: bool) -> SessionParams:
    min_tx = rng.choice((1_000, 3_000, 10_000, 50_000))
    return SessionParams(
        name,
        min_rx_us=rng.choice((1_000, 3_000, 10_000, 50_000)),
        min_tx_us=min_tx,
        idle_tx_us=rng.choice((1_000_000, 1_000_000, 2_000_000, max(min_tx, 1_000_000))),
        multiplier=rng.randint(1, 5),
        passive=passive,
    )


class Checker:
    """The invariants, checked on every event's actions."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.last_event: dict[str, bool] = {}
        self.checked = 0

    def __call__(self, name: str, ev: Event, acts: list[A.Action]) -> None:
        s = self.net[name]
        self.checked += 1
        timers = dict(self.net.nodes[name].timers)
        for a in acts:
            if isinstance(a, A.ArmTimer):
                timers[a.kind] = a.deadline_ns
                assert a.deadline_ns >= ev.now_ns, f"{name} armed {a} in the past"
            elif isinstance(a, A.CancelTimer):
                timers.pop(a.kind)
        assert timers == s.timers(), "the actions describe the machine's timers"
        for a in acts:
            if isinstance(a, A.StateChanged):
                assert a.old != a.new
                if a.new == State.UP:
                    # §6.8.6: Up only from Init, or from Down on hearing Init
                    assert a.old == State.INIT or s.remote_state == State.INIT
                    assert s.remote_state in (State.INIT, State.UP)
            elif isinstance(a, BfdStateChange):
                assert a.name == name and a.sent_ns == ev.now_ns
                assert a.up == (s.state == State.UP)
                if isinstance(ev, Received | TimerExpired):
                    # a packet or a timer only ever reports a change
                    assert self.last_event.get(name) != a.up, f"{name}: {a} repeated"
                self.last_event[name] = a.up
            elif isinstance(a, A.SendControl):
                c = decode_bfd(a.payload)
                assert c.state == s.state or isinstance(ev, Stop)
                p = s.params
                assert c.desired_min_tx_us == (p.min_tx_us if c.state == State.UP else p.idle_tx_us)
                assert c.required_min_rx_us == p.min_rx_us and c.detect_mult == p.multiplier
                assert c.my_discr == s.local_discr != 0
                assert not c.demand and not c.auth
        if s.state == State.UP:
            assert TimerKind.DETECT in timers and TimerKind.RESET not in timers
        if s.state == State.ADMIN_DOWN:
            assert timers == {}
        if s.state == State.DOWN:
            assert TimerKind.DETECT not in timers
        if TimerKind.TX in timers and isinstance(ev, TimerExpired) and ev.kind == TimerKind.TX:
            gap = timers[TimerKind.TX] - ev.now_ns
            # keepalived's jitter: 75 % .. 90 % of the transmit interval
            assert s.local_tx_us * 750 <= gap <= s.local_tx_us * 900


def restart(net: Net, name: str, p: SessionParams, seed: int) -> None:
    """The peer process dies and comes back: a new machine, new discriminator."""
    rng = random.Random(seed)
    net.nodes[name] = Node(
        Session(p, rand=rng.randint, new_discr=lambda: rng.randrange(1, 2**32)), alive=True
    )
    net.feed(name, Start(net.now))


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_operations_keep_the_invariants_and_come_up(seed: int) -> None:
    rng = random.Random(seed)
    passive = rng.choice(("a", "b", None, None))
    pars = {n: random_params(rng, n, passive == n) for n in "ab"}
    net = Net(pars["a"], pars["b"], seed=seed)
    net.storm = 10**9  # 1 ms sessions over 12 s send many
    net.delay_jitter_ns = rng.choice((0, 200 * US, 5 * MS))  # reordering too
    check = Checker(net)
    net.on_actions = check
    net.start("a")
    net.start("b", rng.randint(0, 50) * MS)
    stopped: set[str] = set()
    while net.now < RUN_NS:
        net.run_for(rng.randint(50, 1500) * MS)
        op = rng.randrange(7)
        who = rng.choice("ab")
        if op == 0:
            net.link = not net.link
        elif op == 1:
            net.loss = rng.choice((0.0, 0.05, 0.3, 0.9))
        elif op == 2 and who not in stopped:
            net.feed(who, Stop(net.now))
            stopped.add(who)
        elif op == 3 and who in stopped:
            net.feed(who, Start(net.now))
            stopped.discard(who)
        elif op == 4:
            pars[who] = random_params(rng, who, pars[who].passive)
            net.feed(who, Reconfigure(pars[who], net.now))
        elif op == 5:
            restart(net, who, pars[who], seed * 100 + int(net.now // MS))
            stopped.discard(who)
    # liveness: a clean link, both running
    net.link, net.loss, net.delay_jitter_ns = True, 0.0, 0
    for who in sorted(stopped):
        net.feed(who, Start(net.now))
    slowest = max(p.idle_tx_us for p in pars.values()) * 1000
    net.run_for(4 * slowest + 4000 * MS)
    assert net.up(), (net["a"].snapshot(), net["b"].snapshot())
    assert check.checked > 100
    # and it stays Up
    t = net.now
    net.run_for(1000 * MS)
    assert net.up()
    for name in "ab":
        assert not [
            e for time, e in net.nodes[name].notes if time > t and isinstance(e, BfdStateChange)
        ]
