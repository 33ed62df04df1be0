"""The precise timer: behaviour only (grid, order, cancel, rearm, fd), never timing figures.

Timing figures live in benchmarks/bench_timer.py; this VM's scheduler jitter (~1.5 ms
p99) would make any threshold here flaky. Every test runs on uvloop and on asyncio.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from hypothesis import given
from hypothesis import strategies as st
from tests.support.strace import traced

from fastha.wire.timer import (
    LATENESS_BUCKETS,
    Periodic,
    PreciseTimer,
    TimerHandle,
    get_timer_slack_ns,
    lateness_bucket_bounds_ns,
    monotonic_ns,
    set_timer_slack_ns,
)

MS = 1_000_000
# A safety net so a broken timer fails instead of hanging; never a timing assertion.
HANG_S = 10.0


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    timer: PreciseTimer
    errors: list[dict[str, Any]] = field(default_factory=list)

    def run_until(self, done: asyncio.Future[None]) -> None:
        self.loop.run_until_complete(asyncio.wait_for(done, HANG_S))

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))


@pytest.fixture(params=["uvloop", "asyncio"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    loop = new_loop(request.param)
    timer = PreciseTimer(loop)
    r = Rig(loop, timer)
    loop.set_exception_handler(lambda _loop, ctx: r.errors.append(ctx))
    timer.start()
    yield r
    timer.close()
    loop.close()
    # Like uvloop's own suite: any unhandled loop exception fails the test.
    assert r.errors == [], r.errors


def recorder(
    rig: Rig, stop_after: int, calls: list[tuple[int, int]] | None = None
) -> tuple[list[tuple[int, int]], asyncio.Future[None], Callable[[int, int], None]]:
    calls = [] if calls is None else calls
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int) -> None:
        calls.append((deadline_ns, now_ns))
        if len(calls) == stop_after and not done.done():
            done.set_result(None)

    return calls, done, cb


def assert_on_grid(deadlines: list[int], first: int, interval: int, skipped: int) -> None:
    """Every deadline is first + k * interval, in order; only skipped slots are missing.

    `skipped` may include skips decided after the last recorded call, hence <=.
    """
    assert all((d - first) % interval == 0 for d in deadlines), deadlines
    ks = [(d - first) // interval for d in deadlines]
    assert ks[0] == 0
    assert ks == sorted(set(ks)), ks
    assert ks[-1] + 1 - len(ks) <= skipped


# -- clock --------------------------------------------------------------------------------


@pytest.mark.unit
def test_monotonic_ns_is_the_monotonic_clock() -> None:
    a = time.monotonic_ns()
    b = monotonic_ns()
    c = time.monotonic_ns()
    assert a <= b <= c


@pytest.mark.unit
def test_bucket_bounds_match_histogram_size() -> None:
    bounds = lateness_bucket_bounds_ns()
    assert len(bounds) == LATENESS_BUCKETS
    assert bounds[:4] == [1, 2, 4, 8]


# -- periodic grid ------------------------------------------------------------------------


@pytest.mark.unit
def test_periodic_deadlines_are_exactly_first_plus_k_interval(rig: Rig) -> None:
    interval = 3 * MS
    first = monotonic_ns() + 5 * MS
    calls, done, cb = recorder(rig, 25)
    p = rig.timer.every(interval, cb, first_deadline_ns=first)
    assert isinstance(p, Periodic)
    rig.run_until(done)
    p.cancel()
    deadlines = [d for d, _ in calls]
    assert_on_grid(deadlines, first, interval, p.skipped)
    if p.skipped == 0:
        assert deadlines == [first + k * interval for k in range(25)]
    # An absolute timerfd deadline never fires early.
    assert all(now >= d for d, now in calls)


@pytest.mark.unit
def test_default_first_deadline_is_one_interval_away(rig: Rig) -> None:
    before = monotonic_ns()
    p = rig.timer.every(50 * MS, lambda d, n: None)
    after = monotonic_ns()
    assert before + 50 * MS <= p.deadline_ns <= after + 50 * MS
    p.cancel()


@pytest.mark.unit
def test_late_callback_skips_whole_slots_and_stays_on_grid(rig: Rig) -> None:
    interval = 4 * MS
    first = monotonic_ns() + 2 * MS
    calls: list[tuple[int, int]] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    skipped_at_call: list[int] = []

    def cb(deadline_ns: int, now_ns: int) -> None:
        calls.append((deadline_ns, now_ns))
        skipped_at_call.append(p.skipped)
        if len(calls) == 2:
            time.sleep(3.5 * interval / 1e9)  # block the loop: the next slots pass by
        if len(calls) == 8:
            done.set_result(None)

    p = rig.timer.every(interval, cb, first_deadline_ns=first)
    rig.run_until(done)
    p.cancel()
    assert skipped_at_call[3] >= 2  # decided when the late call (index 2) requeued
    assert_on_grid([d for d, _ in calls], first, interval, p.skipped)
    # Exactly: the j-th call is for slot j + (slots skipped so far).
    ks = [(d - first) // interval for d, _ in calls]
    assert ks == [j + skipped_at_call[j] for j in range(len(calls))]


@pytest.mark.unit
def test_reset_reanchors_the_grid(rig: Rig) -> None:
    interval = 3 * MS
    first = monotonic_ns() + 2 * MS
    anchor: list[int] = []
    skipped_before: list[int] = []
    calls: list[tuple[int, int]] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int) -> None:
        calls.append((deadline_ns, now_ns))
        if len(calls) == 3:
            # Off the old grid on purpose: a backup heard an advert mid-interval.
            anchor.append(now_ns + 7 * MS + 123)
            skipped_before.append(p.skipped)
            p.reset(anchor[0])
        if len(calls) == 8:
            done.set_result(None)

    p = rig.timer.every(interval, cb, first_deadline_ns=first)
    rig.run_until(done)
    p.cancel()
    deadlines = [d for d, _ in calls]
    assert_on_grid(deadlines[:3], first, interval, skipped_before[0])
    assert_on_grid(deadlines[3:], anchor[0], interval, p.skipped - skipped_before[0])


@pytest.mark.unit
def test_reset_from_outside_moves_a_pending_schedule(rig: Rig) -> None:
    calls, done, cb = recorder(rig, 3)
    p = rig.timer.every(1000 * MS, cb)
    anchor = monotonic_ns() + 2 * MS
    p.reset(anchor)
    assert p.deadline_ns == anchor
    rig.run_until(done)
    p.cancel()
    assert_on_grid([d for d, _ in calls], anchor, 1000 * MS, p.skipped)


@pytest.mark.unit
def test_reset_rearms_a_cancelled_schedule(rig: Rig) -> None:
    calls, done, cb = recorder(rig, 2)
    p = rig.timer.every(2 * MS, cb)
    p.cancel()
    assert p.cancelled and not p.active
    anchor = monotonic_ns() + MS
    p.reset(anchor)
    assert not p.cancelled and p.active
    rig.run_until(done)
    p.cancel()
    assert calls[0][0] == anchor


@pytest.mark.unit
def test_interval_change_in_callback_applies_to_the_next_deadline(rig: Rig) -> None:
    first = monotonic_ns() + 2 * MS
    skipped_before: list[int] = []
    calls: list[tuple[int, int]] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int) -> None:
        calls.append((deadline_ns, now_ns))
        if len(calls) == 3:
            skipped_before.append(p.skipped)
            p.interval_ns = 5 * MS
        if len(calls) == 6:
            done.set_result(None)

    p = rig.timer.every(2 * MS, cb, first_deadline_ns=first)
    rig.run_until(done)
    p.cancel()
    deadlines = [d for d, _ in calls]
    assert_on_grid(deadlines[:3], first, 2 * MS, skipped_before[0])
    assert_on_grid(deadlines[2:], deadlines[2], 5 * MS, p.skipped - skipped_before[0])


@pytest.mark.unit
def test_interval_change_outside_keeps_the_pending_deadline(rig: Rig) -> None:
    first = monotonic_ns() + 3 * MS
    calls, done, cb = recorder(rig, 3)
    p = rig.timer.every(1000 * MS, cb, first_deadline_ns=first)
    p.interval_ns = 2 * MS
    assert p.deadline_ns == first
    rig.run_until(done)
    p.cancel()
    assert_on_grid([d for d, _ in calls], first, 2 * MS, p.skipped)


@pytest.mark.unit
def test_interval_must_be_positive(rig: Rig) -> None:
    with pytest.raises(ValueError):
        rig.timer.every(0, lambda d, n: None)
    p = rig.timer.every(MS, lambda d, n: None)
    with pytest.raises(ValueError):
        p.interval_ns = -1
    p.cancel()


@pytest.mark.unit
def test_periodic_cancelled_in_its_own_callback_stops(rig: Rig) -> None:
    calls: list[int] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int) -> None:
        calls.append(deadline_ns)
        if len(calls) == 2:
            p.cancel()
            rig.timer.call_at(deadline_ns + 5 * MS, lambda d, n: done.set_result(None))

    p = rig.timer.every(MS, cb)
    rig.run_until(done)  # later than every slot it would have had
    assert len(calls) == 2
    assert p.cancelled and not p.active
    assert rig.timer.pending == 0


@pytest.mark.unit
def test_periodic_args_are_passed_after_deadline_and_now(rig: Rig) -> None:
    got: list[tuple[Any, ...]] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int, *args: Any) -> None:
        got.append(args)
        done.set_result(None)
        p.cancel()

    p = rig.timer.every(MS, cb, "VI_1", 7)
    rig.run_until(done)
    assert got == [("VI_1", 7)]


# -- one-shots, ordering, cancel ----------------------------------------------------------


@pytest.mark.unit
def test_equal_and_interleaved_deadlines_run_in_deadline_then_scheduling_order(
    rig: Rig,
) -> None:
    base = monotonic_ns() + 5 * MS
    offsets = [(i * 7919) % 13 * 100_000 for i in range(3000)]  # 13 distinct, many equal
    order: list[int] = []
    done: asyncio.Future[None] = rig.loop.create_future()

    def cb(deadline_ns: int, now_ns: int, i: int) -> None:
        order.append(i)
        if len(order) == len(offsets):
            done.set_result(None)

    for i, off in enumerate(offsets):
        h = rig.timer.call_at(base + off, cb, i)
        assert isinstance(h, TimerHandle)
    rig.run_until(done)
    assert order == sorted(range(len(offsets)), key=lambda i: (offsets[i], i))
    assert rig.timer.pending == 0
    assert rig.timer.fired == len(offsets)
    assert sum(rig.timer.lateness_histogram()) == len(offsets)


@pytest.mark.unit
def test_deadline_in_the_past_runs_on_the_next_wakeup(rig: Rig) -> None:
    calls, done, cb = recorder(rig, 1)
    rig.timer.call_at(0, cb)
    rig.run_until(done)
    assert calls[0][0] == 0


@pytest.mark.unit
def test_cancelled_handles_never_run_and_are_dropped(rig: Rig) -> None:
    base = monotonic_ns() + 5 * MS
    ran: list[int] = []
    handles = [
        rig.timer.call_at(base + (i % 50) * 10_000, lambda d, n, i=i: ran.append(i))
        for i in range(2000)
    ]
    for h in handles[::2]:
        h.cancel()
    assert rig.timer.pending == 1000  # removed eagerly: nothing leaks in the heap
    done: asyncio.Future[None] = rig.loop.create_future()
    rig.timer.call_at(base + MS, lambda d, n: done.set_result(None))  # after all of them
    rig.run_until(done)
    assert sorted(ran) == list(range(1, 2000, 2))
    assert all(h.cancelled for h in handles[::2])
    assert not any(h.cancelled or h.active for h in handles[1::2])
    handles[1].cancel()  # after firing: a no-op that only marks it
    assert rig.timer.pending == 0


@pytest.mark.unit
def test_cancelling_the_earliest_wakes_once_and_runs_the_next(rig: Rig) -> None:
    now = monotonic_ns()
    ran: list[int] = []
    early = rig.timer.call_at(now + 2 * MS, lambda d, n: ran.append(d))
    calls, done, cb = recorder(rig, 1)
    rig.timer.call_at(now + 6 * MS, cb)
    early.cancel()
    rig.run_until(done)
    assert ran == []
    assert calls[0][0] == now + 6 * MS
    # The fd stayed armed for the cancelled deadline on purpose (no syscall on cancel):
    # one wakeup finds nothing due (none if the loop stalled past both deadlines).
    assert rig.timer.spurious_wakeups <= 1
    assert rig.timer.wakeups - rig.timer.spurious_wakeups == 1


@pytest.mark.unit
def test_new_earliest_deadline_rearms(rig: Rig) -> None:
    now = monotonic_ns()
    late_calls: list[int] = []
    rig.timer.call_at(now + 10_000 * MS, lambda d, n: late_calls.append(d))
    _calls, done, cb = recorder(rig, 1)
    rig.timer.call_at(now + 2 * MS, cb)
    rig.run_until(done)
    assert late_calls == []
    assert rig.timer.next_deadline_ns == now + 10_000 * MS


@pytest.mark.unit
def test_reschedule_moves_earlier_and_later(rig: Rig) -> None:
    now = monotonic_ns()
    order: list[str] = []
    done: asyncio.Future[None] = rig.loop.create_future()
    a = rig.timer.call_at(now + 2 * MS, lambda d, n: order.append("a"))
    b = rig.timer.call_at(now + 10_000 * MS, lambda d, n: order.append("b"))
    rig.timer.call_at(now + 8 * MS, lambda d, n: done.set_result(None))
    a.reschedule(now + 6 * MS)
    b.reschedule(now + 4 * MS)
    rig.run_until(done)
    assert order == ["b", "a"]
    assert a.deadline_ns == now + 6 * MS


@pytest.mark.unit
def test_callbacks_scheduled_from_a_callback_run(rig: Rig) -> None:
    _calls, done, cb = recorder(rig, 1)

    def first(deadline_ns: int, now_ns: int) -> None:
        rig.timer.call_at(deadline_ns + MS, cb)

    rig.timer.call_at(monotonic_ns() + MS, first)
    rig.run_until(done)


# -- failures and lifecycle ---------------------------------------------------------------


@pytest.mark.unit
def test_exception_is_reported_and_the_timer_carries_on(rig: Rig) -> None:
    def boom(deadline_ns: int, now_ns: int) -> None:
        raise RuntimeError("boom")

    _calls, done, cb = recorder(rig, 3)
    now = monotonic_ns()
    h = rig.timer.call_at(now + MS, boom)
    p = rig.timer.every(2 * MS, boom, first_deadline_ns=now + MS)
    rig.timer.every(2 * MS, cb, first_deadline_ns=now + MS)
    rig.run_until(done)
    p.cancel()
    assert len(rig.errors) >= 3  # the one-shot and at least two periodic runs
    assert all(isinstance(e["exception"], RuntimeError) for e in rig.errors)
    assert rig.errors[0]["handle"] in (h, p)
    rig.errors.clear()


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_close_removes_the_reader_and_the_fd(kind: str) -> None:
    loop = new_loop(kind)
    timer = PreciseTimer(loop)
    fd = timer.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[timerfd]"
    assert os.get_inheritable(fd) is False  # TFD_CLOEXEC
    timer.start()
    h = timer.call_at(monotonic_ns() + 1000 * MS, lambda d, n: None)
    timer.close()
    assert timer.closed and timer.fileno() == -1
    assert not os.path.exists(f"/proc/self/fd/{fd}") or (
        os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:[timerfd]"
    )
    assert not h.active and timer.pending == 0
    timer.close()  # idempotent
    with pytest.raises(RuntimeError):
        timer.call_at(0, lambda d, n: None)
    with pytest.raises(RuntimeError):
        h.reschedule(0)
    assert not loop.remove_reader(fd)  # the loop no longer watches it
    loop.close()


class RecordingLoop:
    """Delegates to a real loop and records the reader registrations."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.readers: set[int] = set()

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self.readers.add(fd)
        self.loop.add_reader(fd, cb)

    def remove_reader(self, fd: int) -> bool:
        self.readers.discard(fd)
        return self.loop.remove_reader(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_start_and_close_register_and_remove_the_reader_once(kind: str) -> None:
    loop = RecordingLoop(new_loop(kind))
    timer = PreciseTimer(loop)  # type: ignore[arg-type]
    fd = timer.fileno()
    timer.start()
    timer.start()
    assert loop.readers == {fd}
    timer.close()
    timer.close()
    assert loop.readers == set()
    loop.close()


@pytest.mark.unit
def test_close_inside_a_callback_stops_the_pass(rig: Rig) -> None:
    ran: list[int] = []
    base = monotonic_ns() + MS

    done: asyncio.Future[None] = rig.loop.create_future()

    def closer(deadline_ns: int, now_ns: int) -> None:
        ran.append(0)
        rig.timer.close()
        done.set_result(None)

    rig.timer.call_at(base, closer)
    rig.timer.call_at(base, lambda d, n: ran.append(1))
    rig.run_until(done)
    rig.run_for(0.005)
    assert ran == [0]
    assert rig.timer.closed


@pytest.mark.unit
def test_fd_is_nonblocking(rig: Rig) -> None:
    # A read with nothing expired must not block the loop.
    with pytest.raises(BlockingIOError):
        os.read(rig.timer.fileno(), 8)


@pytest.mark.unit
def test_a_pass_leaves_the_fd_unreadable(rig: Rig) -> None:
    # A wakeup does not read the expiration count: the pass's re-arm (or, with nothing
    # left, its disarm) must clear it, or the loop would spin on a readable fd.
    _, done, cb = recorder(rig, 3)
    periodic = rig.timer.every(MS, cb)
    rig.run_until(done)
    periodic.cancel()
    _, once, cb1 = recorder(rig, 1)
    rig.timer.call_at(0, cb1)
    rig.run_until(once)
    assert rig.timer.pending == 0
    wakeups = rig.timer.wakeups
    rig.run_for(0.02)
    assert rig.timer.wakeups <= wakeups + 1  # the cancelled periodic's, at most
    with pytest.raises(BlockingIOError):
        os.read(rig.timer.fileno(), 8)


_STRACE_TICKS = """
import asyncio, sys, uvloop
from fastha.wire.timer import PreciseTimer, monotonic_ns

async def main():
    timer = PreciseTimer(asyncio.get_running_loop())
    timer.start()
    done = asyncio.get_running_loop().create_future()
    seen = []
    def tick(deadline, now):
        seen.append(deadline)
        if len(seen) == 200:
            done.set_result(None)
    print(timer.fileno(), flush=True)
    sys.stdin.readline()  # strace attaches meanwhile
    p = timer.every(1_000_000, tick)
    await done
    p.cancel()
    print(timer.wakeups, flush=True)

uvloop.run(main())
"""


@pytest.mark.unit
def test_a_wakeup_costs_no_read_of_the_timerfd(tmp_path: Path) -> None:
    """200 ticks of a 1 ms periodic under strace: the timerfd is re-armed once per
    wakeup (timerfd_settime, which clears its count) and never read."""
    script = tmp_path / "ticks.py"
    script.write_text(_STRACE_TICKS)
    log = tmp_path / "strace.txt"
    trace = ["-e", "trace=read,timerfd_settime", "-o", str(log)]
    with traced([sys.executable, str(script)], trace, HANG_S) as (child, first):
        fd = int(first)
        assert child.stdout is not None
        wakeups = int(child.stdout.readline())
        child.wait(HANG_S)
    text = log.read_text()
    reads = len(re.findall(rf"^read\({fd},", text, re.M))
    settimes = len(re.findall(rf"^timerfd_settime\({fd},", text, re.M))
    assert wakeups >= 200 - 1  # a tick late by a whole interval may share a wakeup
    assert reads == 0, text[-2000:]
    assert wakeups <= settimes <= wakeups + 2  # + the first arm and the cancel's disarm


# -- the heap against a model -------------------------------------------------------------


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 20)),
        st.tuples(st.just("cancel"), st.integers(0, 200)),
        st.tuples(st.just("move"), st.integers(0, 200), st.integers(0, 20)),
    ),
    max_size=120,
)


@pytest.mark.unit
@given(ops)
def test_heap_order_matches_a_sorted_model(script: list[tuple[Any, ...]]) -> None:
    # Deadlines near 0 ns are all in the past: one wakeup runs everything, in order.
    loop = asyncio.new_event_loop()
    timer = PreciseTimer(loop)
    timer.start()
    order: list[int] = []
    handles: list[TimerHandle] = []
    model: dict[int, tuple[int, int]] = {}  # id -> (deadline, scheduling sequence)
    for seq, op in enumerate(script):
        if op[0] == "add":
            i = len(handles)
            handles.append(timer.call_at(op[1], lambda d, n, i=i: order.append(i)))
            model[i] = (op[1], seq)
        elif handles and op[0] == "cancel":
            i = op[1] % len(handles)
            handles[i].cancel()
            model.pop(i, None)
        elif handles and op[0] == "move":
            i = op[1] % len(handles)
            handles[i].reschedule(op[2])
            model[i] = (op[2], seq)
    assert timer.pending == len(model)
    loop.run_until_complete(asyncio.sleep(0.002))
    timer.close()
    loop.close()
    assert order == sorted(model, key=lambda i: model[i])


@pytest.mark.unit
def test_timer_slack_round_trips() -> None:
    before = get_timer_slack_ns()
    try:
        set_timer_slack_ns(1)
        assert get_timer_slack_ns() == 1
    finally:
        set_timer_slack_ns(before)
    assert get_timer_slack_ns() == before


@pytest.mark.unit
def test_hundreds_of_periodic_schedules_each_stay_on_their_grid(rig: Rig) -> None:
    # 255 VRRP instances at 10 ms, phases spread over the interval, plus master-down
    # one-shots that keep being pushed back as adverts arrive.
    interval = 10 * MS
    first = monotonic_ns() + 20 * MS
    n = 255
    calls: list[list[int]] = [[] for _ in range(n)]
    done: asyncio.Future[None] = rig.loop.create_future()
    finished = [0]

    def tick(deadline_ns: int, now_ns: int, i: int) -> None:
        calls[i].append(deadline_ns)
        # From the deadline, not now: the next tick always pops before it, unless
        # the loop stalled two whole intervals (then the timer rightly fires).
        downs[i].reschedule(deadline_ns + 3 * interval)
        if len(calls[i]) == 6:
            schedules[i].cancel()
            downs[i].cancel()
            finished[0] += 1
            if finished[0] == n:
                done.set_result(None)

    downs_fired: set[int] = set()

    def master_down(deadline_ns: int, now_ns: int, i: int) -> None:
        downs_fired.add(i)

    downs = [rig.timer.call_at(first + 3 * interval, master_down, i) for i in range(n)]
    phases = [first + i * interval // n for i in range(n)]
    schedules = [rig.timer.every(interval, tick, i, first_deadline_ns=phases[i]) for i in range(n)]
    rig.run_until(done)
    for i in range(n):
        assert_on_grid(calls[i], phases[i], interval, schedules[i].skipped)
    assert downs_fired <= {i for i in range(n) if schedules[i].skipped >= 2}
    assert rig.timer.pending == 0
