"""The VRRP machine's timer book: which timers are armed, and whether an expiry is current.

Each kind holds (deadline_ns or grid anchor, interval_ns; 0 = one-shot). A periodic timer
fires on the fixed grid `anchor + k * interval` (the driver keeps the grid); an expiry
for a deadline no longer armed is stale (cancelled or re-armed since) and ignored.
`fsm.Machine` owns its book; each change to it is also an action for the driver.
"""

from __future__ import annotations

from fastha.vrrp.actions import Action, ArmTimer, CancelTimer
from fastha.vrrp.events import TimerKind


class TimerBook:
    __slots__ = ("_armed",)

    def __init__(self) -> None:
        self._armed: dict[TimerKind, tuple[int, int]] = {}

    def snapshot(self) -> dict[TimerKind, tuple[int, int]]:
        return dict(self._armed)

    def __contains__(self, kind: TimerKind) -> bool:
        return kind in self._armed

    def deadline(self, kind: TimerKind) -> int | None:
        armed = self._armed.get(kind)
        return None if armed is None else armed[0]

    def arm(self, kind: TimerKind, deadline_ns: int, interval_ns: int, out: list[Action]) -> None:
        """Arm (or re-arm) `kind`; the ArmTimer action goes to `out`."""
        self._armed[kind] = (deadline_ns, interval_ns)
        out.append(ArmTimer(kind, deadline_ns, interval_ns))

    def restart(self, kind: TimerKind, now_ns: int, interval_ns: int, out: list[Action]) -> None:
        """Arm periodic `kind` on a new grid from now: first expiry one interval on, or
        up to one phase step sooner (`phase_aligned`)."""
        self.arm(kind, phase_aligned(now_ns + interval_ns, interval_ns), interval_ns, out)

    def cancel(self, kind: TimerKind, out: list[Action]) -> None:
        """Cancel `kind` if armed (a CancelTimer action to `out`)."""
        if self._armed.pop(kind, None) is not None:
            out.append(CancelTimer(kind))

    def cancel_all(self, out: list[Action]) -> None:
        out.extend(CancelTimer(kind) for kind in self._armed)
        self._armed.clear()

    def fired(self, kind: TimerKind, deadline_ns: int) -> bool:
        """Is an expiry of `kind` for `deadline_ns` current? A current one-shot is
        spent by it."""
        armed = self._armed.get(kind)
        if armed is None:
            return False
        anchor, interval = armed
        if interval == 0:
            if deadline_ns != anchor:
                return False
            del self._armed[kind]
            return True
        return deadline_ns >= anchor and (deadline_ns - anchor) % interval == 0


# Adverts of a child's instances share wakeups: a new advert grid starts on the last
# multiple of the phase step at or before its first deadline, so instances with the same
# interval fire in one timer pass (one wakeup, one sendmmsg) instead of one each. The step
# is at most 1 ms and a tenth of the interval: the first interval after a takeover is at
# most that much short (never long: a backup's Master_Down_Timer is not touched), and
# each advert after it is on its own grid as before. At 100 instances @10 ms this halved
# the child's CPU per advert (docs/BENCHMARKS.md).
PHASE_STEP_NS = 1_000_000


def phase_aligned(deadline_ns: int, interval_ns: int) -> int:
    """`deadline_ns` moved back onto the shared phase grid (see PHASE_STEP_NS)."""
    step = min(PHASE_STEP_NS, interval_ns // 10)
    return deadline_ns - deadline_ns % step if step > 0 else deadline_ns


def moved_deadline(deadline_ns: int, now_ns: int, old_down_ns: int, new_down_ns: int) -> int:
    """A running Master_Down_Timer after a priority change: moved by the change in
    Master_Down_Interval (Skew_Time depends on the priority), as keepalived does, not
    restarted; never into the past."""
    return max(now_ns, deadline_ns + new_down_ns - old_down_ns)
