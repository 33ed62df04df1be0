"""Runs every distinct check of a Plan on its own schedule, on one loop, without blocking.

Deadlines live in the precise timer's compiled heap (one timerfd for all checks); when a
check is due its probe starts as a task and, when it ends, the outcome goes through
`Health.feed` and the next deadline is set from the end of the probe, as keepalived
does: `delay_before_retry` while retrying, else `delay_loop`. The first probe of each
check waits a random share of its `warmup` (keepalived spreads checks the same way).

    sched = Scheduler(health, ctx, on_actions=apply)   # apply(list[Action])
    sched.start()
    ...
    sched.suspend(cid) / sched.resume(cid)            # ha_suspend
    await sched.close()

Lateness of each probe start (now - deadline) is kept for the benchmark and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from array import array
from collections.abc import Callable

from fastha.check.health import Action, Health, Log, Outcome
from fastha.check.probes import ProbeContext, run_probe
from fastha.wire.timer import PreciseTimer, TimerHandle, monotonic_ns

log = logging.getLogger("fastha.check")

NS = 1_000_000_000
LATENESS_KEEP = 1 << 20  # samples kept (a ring) for percentiles


class Scheduler:
    def __init__(
        self,
        health: Health,
        ctx: ProbeContext | None = None,
        *,
        on_actions: Callable[[list[Action]], None] | None = None,
        timer: PreciseTimer | None = None,
        rng: random.Random | None = None,
        bootstrap_delay: float = 0.0,
    ) -> None:
        self.health = health
        self.ctx = ctx if ctx is not None else ProbeContext()
        self.on_actions = on_actions
        self._timer = timer
        self._own_timer = timer is None
        self.rng = rng if rng is not None else random.Random()
        self.bootstrap_delay = bootstrap_delay
        n = len(health.checks)
        self._handles: list[TimerHandle | None] = [None] * n
        self._running: dict[int, asyncio.Task[None]] = {}
        self.suspended: set[int] = set()
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.lateness_ns = array("q")
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is None:
            self._timer = PreciseTimer(loop)
        self._timer.start()
        self._emit(self.health.start())
        now = monotonic_ns()
        for cid, check in enumerate(self.health.checks):
            warm = self.rng.uniform(0.0, check.warmup) if check.warmup > 0 else 0.0
            self._arm(cid, now + int((self.bootstrap_delay + warm) * NS))

    async def close(self) -> None:
        self._closed = True
        for h in self._handles:
            if h is not None:
                h.cancel()
        tasks = list(self._running.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._own_timer and self._timer is not None:
            self._timer.close()
        if self.ctx.scripts is not None:
            await self.ctx.scripts.close()

    def stop_actions(self) -> list[Action]:
        """keepalived's shutdown notifiers (`omega`)."""
        return self.health.stop()

    def suspend(self, cid: int) -> None:
        """ha_suspend: skip probes (the check keeps its state) until resumed."""
        self.suspended.add(cid)

    def resume(self, cid: int) -> None:
        self.suspended.discard(cid)

    # ------------------------------------------------------------ schedule

    def _arm(self, cid: int, deadline_ns: int) -> None:
        if self._closed:
            return
        assert self._timer is not None
        h = self._handles[cid]
        if h is None:
            self._handles[cid] = self._timer.call_at(deadline_ns, self._due, cid)
        else:
            h.reschedule(deadline_ns)

    def _due(self, deadline_ns: int, now_ns: int, cid: int) -> None:
        check = self.health.checks[cid]
        if cid in self.suspended:
            self._arm(cid, now_ns + int(check.delay_loop * NS))
            return
        if len(self.lateness_ns) >= LATENESS_KEEP:
            del self.lateness_ns[: LATENESS_KEEP // 2]
        self.lateness_ns.append(now_ns - deadline_ns)
        self.started += 1
        task = asyncio.get_running_loop().create_task(self._run(cid))
        self._running[cid] = task
        task.add_done_callback(lambda _t, cid=cid: self._running.pop(cid, None))

    async def _run(self, cid: int) -> None:
        check = self.health.checks[cid]
        try:
            outcome = await run_probe(check.probe, self.ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug: count it as a failure, keep going
            log.exception("%s: probe raised", check.describe())
            outcome = Outcome(False, f"probe error: {exc!r}")
        self.completed += 1
        if not outcome.ok:
            self.failed += 1
        step, actions = self.health.feed(cid, outcome)
        if step.edge:
            word = "succeeded" if step.up else "failed"
            tail = "" if step.up or not step.retry_it else f" after {step.retry_it} retries"
            why = f" ({outcome.reason})" if outcome.reason and not step.up else ""
            actions.insert(0, Log(f"{check.describe()} {word}{tail}{why}."))
        elif not outcome.ok and (check.log_all_failures or step.retrying):
            log.info("%s failed (%s), retry %d", check.describe(), outcome.reason, step.retry_it)
        self._emit(actions)
        delay = check.delay_before_retry if step.retrying else check.delay_loop
        self._arm(cid, monotonic_ns() + int(delay * NS))

    def _emit(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Log):
                log.info("%s", a.text)
        if self.on_actions is not None and actions:
            self.on_actions(actions)

    # ------------------------------------------------------------ figures

    def lateness_percentile(self, q: float) -> int:
        """Lateness (ns) of probe starts at quantile q (0..1)."""
        if not self.lateness_ns:
            return 0
        s = sorted(self.lateness_ns)
        return s[min(len(s) - 1, int(q * len(s)))]
