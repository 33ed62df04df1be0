"""A virtual-clock link between two BFD session machines (fastha.bfd.session) and the
driver side of both: their timers, and the bytes they send, decoded again by _wire on the
way. Used by tests/unit/test_bfd_session*.py."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from fastha.bfd import actions as A
from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import Event, Received, Start, TimerExpired, TimerKind
from fastha.bfd.params import SessionParams
from fastha.bfd.session import Session
from fastha.bfd.states import State
from fastha.wire.bfd import BfdControl, decode_bfd

MS = 1_000_000  # ns
STORM = 3000
US = 1_000  # ns


def params(name: str, **kw: object) -> SessionParams:
    base = {"min_rx_us": 10_000, "min_tx_us": 10_000, "idle_tx_us": 1_000_000, "multiplier": 3}
    base.update(kw)
    return SessionParams(name, **base)  # type: ignore[arg-type]


@dataclass
class Node:
    session: Session
    timers: dict[TimerKind, int] = field(default_factory=dict)
    sent: list[tuple[int, BfdControl]] = field(default_factory=list)
    notes: list[tuple[int, object]] = field(default_factory=list)  # the other actions
    alive: bool = False  # started

    def events(self) -> list[BfdStateChange]:
        return [a for _, a in self.notes if isinstance(a, BfdStateChange)]

    def changes(self) -> list[tuple[State, State]]:
        return [(a.old, a.new) for _, a in self.notes if isinstance(a, A.StateChanged)]

    def sent_between(self, t0: int, t1: int) -> list[tuple[int, BfdControl]]:
        return [(t, c) for t, c in self.sent if t0 <= t < t1]


class Net:
    """Two sessions joined by a link with a one-way delay; the driver side of both."""

    def __init__(
        self, pa: SessionParams, pb: SessionParams, delay_ns: int = 50 * US, seed: int = 1
    ):
        rng = random.Random(seed)
        discrs = itertools.count(0x1000)
        self.nodes = {
            n: Node(Session(p, rand=rng.randint, new_discr=lambda: next(discrs)))
            for n, p in (("a", pa), ("b", pb))
        }
        self.delay = delay_ns
        self.now = 0
        self.link = True
        self.loss = 0.0  # probability that a packet is lost on the link
        self.delay_jitter_ns = 0  # each packet's delay: delay_ns + uniform(0, this)
        self.ttl = 255
        self.storm = STORM
        self.on_actions: Callable[[str, Event, list[A.Action]], None] | None = None
        self._net_rng = random.Random(seed + 1)
        self._q: list[tuple[int, int, str, str, object]] = []
        self._seq = itertools.count()

    def __getitem__(self, name: str) -> Session:
        return self.nodes[name].session

    def feed(self, name: str, ev: Event) -> list[A.Action]:
        node = self.nodes[name]
        acts = node.session.handle(ev)
        if self.on_actions is not None:
            self.on_actions(name, ev, acts)
        other = "b" if name == "a" else "a"
        for a in acts:
            if isinstance(a, A.SendControl):
                node.sent.append((self.now, decode_bfd(a.payload)))
                # A few seconds at 10 ms send a few hundred; more is a packet storm
                # (e.g. two sides answering each other's Poll with a Poll).
                assert len(node.sent) < self.storm, f"{name} sent {self.storm} packets"
                if self.link and not (self.loss and self._net_rng.random() < self.loss):
                    extra = (
                        self._net_rng.randint(0, self.delay_jitter_ns)
                        if self.delay_jitter_ns
                        else 0
                    )
                    self._push(self.now + self.delay + extra, "pkt", other, a.payload)
            elif isinstance(a, A.ArmTimer):
                node.timers[a.kind] = a.deadline_ns
                self._push(a.deadline_ns, "tmr", name, a.kind)
            elif isinstance(a, A.CancelTimer):
                del node.timers[a.kind]
            else:
                node.notes.append((self.now, a))
        return acts

    def _push(self, t: int, kind: str, target: str, what: object) -> None:
        heapq.heappush(self._q, (t, next(self._seq), kind, target, what))

    def start(self, name: str, at: int | None = None) -> None:
        self.run_until(self.now if at is None else at)
        self.nodes[name].alive = True
        self.feed(name, Start(self.now))

    def run_until(self, t_end: int) -> None:
        while self._q and self._q[0][0] <= t_end:
            t, _, kind, target, what = heapq.heappop(self._q)
            self.now = t
            node = self.nodes[target]
            if not node.alive:
                continue
            if kind == "pkt":
                assert isinstance(what, bytes)
                self.feed(target, Received(decode_bfd(what), self.ttl, t))
            elif node.timers.get(what) == t:  # type: ignore[call-overload]
                del node.timers[what]  # type: ignore[arg-type]
                self.feed(target, TimerExpired(what, t, t))  # type: ignore[arg-type]
        self.now = t_end

    def run_for(self, ns: int) -> None:
        self.run_until(self.now + ns)

    def up(self) -> bool:
        return self["a"].state == State.UP and self["b"].state == State.UP
