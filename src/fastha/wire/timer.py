"""Public face of the precise timer compiled in fastha._wire.

Protocol deadlines use this, never loop.call_later: one timerfd on CLOCK_MONOTONIC armed
with absolute deadlines, periodic schedules on a fixed grid (DESIGN.md, principle 6).
"""

from __future__ import annotations

from fastha._wire import (
    LATENESS_BUCKETS,
    Periodic,
    PreciseTimer,
    TimerHandle,
    get_timer_slack_ns,
    monotonic_ns,
    set_timer_slack_ns,
)

__all__ = [
    "LATENESS_BUCKETS",
    "Periodic",
    "PreciseTimer",
    "TimerHandle",
    "get_timer_slack_ns",
    "lateness_bucket_bounds_ns",
    "monotonic_ns",
    "set_timer_slack_ns",
]


def lateness_bucket_bounds_ns() -> list[int]:
    """Upper bound (exclusive) in ns of each lateness histogram bucket; the last is open."""
    return [1 << b for b in range(LATENESS_BUCKETS)]
