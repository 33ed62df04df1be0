"""One instance's armed timers on the child's precise timer, as the machine's ArmTimer
and CancelTimer actions ask; and the child's garbage collection, run between timer
passes (PassCollector)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from fastha.vrrp.actions import ArmTimer
from fastha.vrrp.events import TimerKind
from fastha.wire.timer import Periodic, PreciseTimer, TimerHandle

# (deadline_ns, now_ns, kind)
OnTimer = Callable[[int, int, TimerKind], None]
# (deadline_ns, now_ns): the advert timer's own callback, its kind implied
OnAdver = Callable[[int, int], None]


class InstanceTimers:
    def __init__(self, timer: PreciseTimer, on_timer: OnTimer, on_adver: OnAdver) -> None:
        self.timer = timer
        self.on_timer = on_timer
        self.on_adver = on_adver
        self.handles: dict[TimerKind, TimerHandle | Periodic] = {}

    def arm(self, action: ArmTimer) -> None:
        old = self.handles.pop(action.kind, None)
        if old is not None:
            old.cancel()
        if action.kind == TimerKind.ADVER and action.interval_ns:
            # The hot path: a callback of its own, called with no extra argument.
            self.handles[action.kind] = self.timer.every(
                action.interval_ns, self.on_adver, first_deadline_ns=action.deadline_ns
            )
        elif action.interval_ns:
            self.handles[action.kind] = self.timer.every(
                action.interval_ns,
                self.on_timer,
                action.kind,
                first_deadline_ns=action.deadline_ns,
            )
        else:
            self.handles[action.kind] = self.timer.call_at(
                action.deadline_ns, self.on_timer, action.kind
            )

    def cancel(self, kind: TimerKind) -> None:
        t = self.handles.pop(kind, None)
        if t is not None:
            t.cancel()

    def cancel_all(self) -> None:
        for handle in self.handles.values():
            handle.cancel()
        self.handles.clear()


class PassCollector:
    """The garbage collector run between adverts, not inside them.

    Python collects when allocations pass a threshold, i.e. in whatever code allocates
    next: often the advert timer's callback, just before its advert leaves. With this
    in place automatic collection is off; the same collections (same thresholds, same
    generations) run right after a timer pass has sent its adverts (``after_pass``),
    when the next deadline is furthest away. A child with no pass for ``fallback_s``
    (a backup hears adverts, its timers never fire) collects from the loop instead.
    """

    def __init__(
        self, timer: PreciseTimer, loop: asyncio.AbstractEventLoop, fallback_s: float = 1.0
    ):
        self.timer = timer
        self.loop = loop
        self.fallback_s = fallback_s
        self.thresholds = gc.get_threshold()
        self.collections = 0
        self._fallback: asyncio.TimerHandle | None = None

    def start(self) -> None:
        gc.disable()
        self.timer.after_pass = self.collect
        self._fallback = self.loop.call_later(self.fallback_s, self._tick)

    def stop(self) -> None:
        if self.timer.after_pass == self.collect:
            self.timer.after_pass = None
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None
        gc.enable()

    def collect(self) -> None:
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if t0 == 0 or c0 < t0:
            return
        # As the interpreter picks: the oldest generation whose count is over its threshold.
        gen = 2 if c1 >= t1 and c2 >= t2 else 1 if c1 >= t1 else 0
        gc.collect(gen)
        self.collections += 1

    def _tick(self) -> None:
        self.collect()
        self._fallback = self.loop.call_later(self.fallback_s, self._tick)
