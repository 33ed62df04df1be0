"""One instance's ordered queue of slow jobs (address changes, GARP bursts), so that
"advert, then VIPs, then GARP" holds while the hot paths stay synchronous."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("fastha.vrrp")

Job = Callable[[], Awaitable[None]]


class JobQueue:
    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self.loop = loop
        self.name = name
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.busy = 0  # jobs queued or running
        self.tail: Job | None = None  # the last job put, while it has not finished

    def put(self, job: Job) -> None:
        if self.worker is None or self.worker.done():
            self.worker = self.loop.create_task(self._work(), name=f"vrrp-{self.name}")
        self.queue.put_nowait(job)
        self.busy += 1
        self.tail = job

    def end(self) -> None:
        """Ends the worker once what is queued has run."""
        self.queue.put_nowait(None)

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                if job is None:
                    return
                await job()
            except Exception:
                log.exception("(%s) address/GARP job failed", self.name)
            finally:
                self.queue.task_done()
                if job is not None:
                    self.busy -= 1
                    if job is self.tail:
                        self.tail = None

    async def drain(self) -> None:
        """Wait until every queued job has run."""
        if self.worker is not None and not self.worker.done():
            await self.queue.join()
