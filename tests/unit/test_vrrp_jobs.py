"""One instance's job queue (runtime/vrrp/jobs.py): jobs run one at a time in the order
given, a failing job is logged and the next one runs, drain waits for all of them, and
an idle instance holds no task (255 parked workers and asyncio.Queues cost the VRRP
child ~2 MB of RSS; issue 19)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from fastha.runtime.vrrp.jobs import Job, JobQueue

pytestmark = pytest.mark.unit


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        r.run(asyncio.wait_for(coro_fn(), 10))


def test_jobs_run_in_order_one_at_a_time_and_the_worker_ends_when_idle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def main() -> None:
        q = JobQueue(asyncio.get_running_loop(), "VI_1")
        assert q.worker is None

        def job(name: str, fail: bool = False) -> Job:
            async def body() -> None:
                seen.append(f"{name} start")
                await asyncio.sleep(0.01)
                seen.append(f"{name} end")
                if fail:
                    raise OSError("netlink said no")
                if name == "a":  # queued while a job runs: runs after it, same worker
                    q.put(job("c"))

            return body

        q.put(job("a"))
        q.put(job("b", fail=True))
        worker = q.worker
        await q.drain()
        assert seen == ["a start", "a end", "b start", "b end", "c start", "c end"]
        assert worker is not None and worker.done() and q.worker is None
        assert not q.jobs
        # Idle: nothing waits on the loop for this instance.
        assert all(not t.get_name().startswith("vrrp-") for t in asyncio.all_tasks())
        q.put(job("d"))
        assert q.worker is not None and not q.worker.done()
        await q.drain()
        assert seen[-2:] == ["d start", "d end"]

    with caplog.at_level(logging.ERROR, logger="fastha.vrrp"):
        run(main)
    assert "(VI_1) address/GARP job failed" in caplog.text
    assert "netlink said no" in caplog.text


def test_a_drain_given_up_leaves_the_jobs_running() -> None:
    """lifecycle.remove waits STOP_GRACE_S for the jobs, then goes on: the jobs are not
    cancelled by the wait's timeout."""
    done: list[bool] = []

    async def main() -> None:
        q = JobQueue(asyncio.get_running_loop(), "VI_1")
        release = asyncio.Event()

        async def slow() -> None:
            await release.wait()
            done.append(True)

        q.put(slow)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(q.drain(), 0.05)
        assert q.worker is not None and not q.worker.done()
        release.set()
        await q.drain()
        assert done == [True]

    run(main)
