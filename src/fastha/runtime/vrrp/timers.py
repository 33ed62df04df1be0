"""One instance's armed timers on the child's precise timer, as the machine's ArmTimer
and CancelTimer actions ask."""

from __future__ import annotations

from collections.abc import Callable

from fastha.vrrp.actions import ArmTimer
from fastha.vrrp.events import TimerKind
from fastha.wire.timer import Periodic, PreciseTimer, TimerHandle

# (deadline_ns, now_ns, kind)
OnTimer = Callable[[int, int, TimerKind], None]


class InstanceTimers:
    def __init__(self, timer: PreciseTimer, on_timer: OnTimer) -> None:
        self.timer = timer
        self.on_timer = on_timer
        self.handles: dict[TimerKind, TimerHandle | Periodic] = {}

    def arm(self, action: ArmTimer) -> None:
        old = self.handles.pop(action.kind, None)
        if old is not None:
            old.cancel()
        if action.interval_ns:
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
