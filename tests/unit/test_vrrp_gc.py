"""The VRRP child's garbage collection between timer passes (runtime/vrrp/timers.py
PassCollector): automatic collection is off while it runs, and what the interpreter
would have collected is collected right after a pass, or by the fallback tick when no
pass comes."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop

from fastha.runtime.vrrp.timers import PassCollector
from fastha.wire.timer import PreciseTimer, monotonic_ns

MS = 1_000_000
HANG_S = 10.0


def garbage(n: int) -> None:
    for _ in range(n):
        a: list[object] = []
        a.append(a)  # a cycle: only the collector frees it


@pytest.mark.unit
def test_collections_run_after_a_pass_not_during_it() -> None:
    loop = uvloop.new_event_loop()
    timer = PreciseTimer(loop)
    timer.start()
    collector = PassCollector(timer, loop, fallback_s=60.0)
    seen: list[int] = []
    done = loop.create_future()
    try:
        collector.start()
        assert not gc.isenabled()
        assert timer.after_pass == collector.collect

        def cb(_d: int, _n: int) -> None:
            # Allocations past the threshold inside the pass: nothing collects here.
            garbage(3 * gc.get_threshold()[0])
            seen.append(collector.collections)
            loop.call_soon(done.set_result, None)

        timer.call_at(monotonic_ns() + MS, cb)
        loop.run_until_complete(asyncio.wait_for(done, HANG_S))
        assert seen == [0]
        assert collector.collections == 1  # right after the pass
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collector.stop()
        timer.close()
        loop.close()
    assert gc.isenabled()
    assert timer.after_pass is None


@pytest.mark.unit
def test_the_fallback_collects_without_passes() -> None:
    loop = uvloop.new_event_loop()
    timer = PreciseTimer(loop)
    timer.start()
    collector = PassCollector(timer, loop, fallback_s=0.01)
    try:
        collector.start()
        garbage(3 * gc.get_threshold()[0])
        loop.run_until_complete(asyncio.sleep(0.2))
        assert collector.collections >= 1
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collector.stop()
        timer.close()
        loop.close()
    assert gc.isenabled()
