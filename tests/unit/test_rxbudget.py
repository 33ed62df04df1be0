"""drivers/rxbudget: a reader that is always readable (a flood) still lets the loop block.

RLIMIT_RTTIME counts CPU time since the task last slept; a voluntary context switch is
exactly such a sleep, so the test counts the loop thread's voluntary switches
(getrusage RUSAGE_THREAD) while an fd that never stops being readable is served by a
reader doing 0.5 ms of work per wake-up: with the budget the loop blocks every window,
without it (the control: the same reader, no budget) it never does.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time

import pytest
import uvloop

from fastha.drivers.rxbudget import MIN_PAUSE_NS, WINDOW_NS, RxBudget

pytestmark = pytest.mark.unit

RUN_S = 0.3


def _nvcsw() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


async def _flooded(budgeted: bool) -> tuple[int, int, int]:
    """(voluntary switches, reader calls, pauses) over RUN_S with a readable fd."""
    loop = asyncio.get_running_loop()
    rx, tx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx.send(b"junk")  # never read: the fd stays readable, as under a flood
    budget = RxBudget(loop)
    if budgeted:
        budget.set_rttime(10_000)  # keepalived's default RLIMIT_RTTIME, 10 ms
    calls = 0

    def reader() -> None:
        nonlocal calls
        calls += 1
        start = time.monotonic_ns()
        while time.monotonic_ns() - start < 500_000:  # 0.5 ms of "decoding"
            pass
        budget.charge(start)

    budget.add_reader(rx.fileno(), reader)
    try:
        before = _nvcsw()
        await asyncio.sleep(RUN_S)  # a timer: the loop may block in epoll_wait until then
        return _nvcsw() - before, calls, budget.pauses
    finally:
        budget.remove_reader(rx.fileno())
        budget.close()
        rx.close()
        tx.close()


def test_the_loop_blocks_under_a_flood_with_the_budget_and_never_without() -> None:
    switches, calls, pauses = uvloop.run(_flooded(True))
    base, base_calls, _ = uvloop.run(_flooded(False))
    print(f"\nbudget: {switches} sleeps, {calls} reads, {pauses} pauses; none: {base} sleeps, "
          f"{base_calls} reads")  # fmt: skip
    assert base <= 3, f"the control slept {base} times: the test cannot tell"
    assert pauses >= 10 and switches >= 10, (switches, pauses)
    # The reader still gets most of the time: 3 ms of every 4.
    assert calls >= base_calls // 3


def test_window_follows_rlimit_rttime() -> None:
    loop = uvloop.new_event_loop()
    try:
        b = RxBudget(loop)
        assert b.budget_ns == 0 and not b.charge(time.monotonic_ns() - 10**9)  # off
        b.set_rttime(10_000)  # a third of 10 ms, 3/4 of it receive work
        assert (b.window_ns, b.budget_ns) == (3_333_333, 2_499_999)
        b.set_rttime(None)  # no limit set: the default window
        assert (b.window_ns, b.budget_ns) == (WINDOW_NS, WINDOW_NS * 3 // 4)
        b.set_rttime(3_000)  # a window of a third of the limit
        assert b.window_ns == 1_000_000
        b.set_rttime(100)  # never below what a loop timer can pause for
        assert b.window_ns == MIN_PAUSE_NS
        b.disable()
        assert b.budget_ns == 0 and not b.paused
    finally:
        loop.close()
