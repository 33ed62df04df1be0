"""Runs every distinct check of a Plan on its own schedule, on one loop, without blocking.

Deadlines live in the precise timer's compiled heap (one timerfd for all checks, served
on a 1 ms grid); when a check is due its probe starts -- TCP_CHECK, HTTP_GET and SSL_GET
as callbacks on the probes' `Connector` (no Task per check), the others as a task -- and,
when it ends, the outcome goes through `Health.feed` and the next deadline is set from
the end of the probe, as keepalived does: `delay_before_retry` while retrying, else
`delay_loop`. The first probe of each
check waits a random share of its `warmup` (keepalived spreads checks the same way).

    sched = Scheduler(health, ctx, on_actions=apply)   # apply(list[Action])
    sched.start()
    ...
    sched.suspend(cid) / sched.resume(cid)            # ha_suspend
    sched.rebind(new_health)                          # reload: same Check, same schedule
    await sched.close()

Internally a check is known by its `Check` value (its `_Slot`), not its index: on reload a check that
is in both plans keeps its deadline and its running probe (whose result goes to the new
Health under the new index), a check only in the old plan is cancelled, and a new one
starts as at start-up.

Lateness of each probe start (now - deadline) is kept for the benchmark and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from array import array
from collections import deque
from collections.abc import Callable

from fastha.check.health import Action, Health, Log, Outcome
from fastha.check.spec import BfdSpec, Check, FileSpec, MiscSpec
from fastha.probes import Pending, ProbeContext, run_probe, starter
from fastha.probes._net import Connector
from fastha.wire.timer import PreciseTimer, TimerHandle, monotonic_ns

log = logging.getLogger("fastha.check")

NS = 1_000_000_000
LATENESS_KEEP = 1 << 20  # samples kept (a ring) for percentiles
# Probe deadlines are served on this grid: at thousands of checks a second, the checks
# due within one millisecond start on one timer wakeup (one timerfd read and re-arm)
# instead of one each. Lateness is still measured against each check's own deadline.
TICK_NS = 1_000_000
# Probes started on one timer wakeup (or one loop iteration) at most; the others due
# then wait in a FIFO for the next iterations, after the loop has read the results of
# the probes in flight, so a backlog (start-up, an overloaded core) cannot starve them.
# Nothing due later overtakes them; lateness is counted from their own deadline.
BURST = 256


class _Starting:
    """Marks a callback probe being started (its result may come before start returns)."""

    def cancel(self) -> None:
        pass


_STARTING = _Starting()
Running = asyncio.Task[None] | Pending | _Starting


class _Slot:
    """One check's place in the schedule: the timer's callback argument, so the hot
    path never hashes a `Check` (a frozen dataclass hashes all its fields, each time)."""

    __slots__ = ("check", "cid", "deadline", "handle", "has_run", "running", "suspended")

    def __init__(self, check: Check, cid: int) -> None:
        self.check = check
        self.cid = cid  # index in the running Health; -1 once a reload dropped it
        self.handle: TimerHandle | None = None
        self.deadline = 0  # when the next probe is due (the timer fires on the tick after)
        self.running: Running | None = None
        self.suspended = False
        self.has_run = False


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
        self._own_connector = False
        self.rng = rng if rng is not None else random.Random()
        self.bootstrap_delay = bootstrap_delay
        self._slots: dict[Check, _Slot] = {c: _Slot(c, i) for i, c in enumerate(health.checks)}
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.lateness_ns = array("q")
        self.durations = ProbeDurations()
        self._closed = False
        self._wakeup = -1  # the timer wakeup the probes counted in _burst started on
        self._burst = 0
        self._backlog: deque[_Slot] = deque()  # due, waiting for their turn (BURST)

    # ------------------------------------------------------------ lifecycle

    def start(self, *, probe: bool = True) -> None:
        """Health's first state; probes armed now, or by `probe_all` later (the
        checker child applies the initial IPVS table first: a probe in flight while
        that keeps the loop busy would time out on our account, not the server's)."""
        loop = asyncio.get_running_loop()
        if self._timer is None:
            self._timer = PreciseTimer(loop)
        self._timer.start()
        if self.ctx.connector is None:
            self.ctx.connector = Connector(self._timer)
            self._own_connector = True
        self._emit(self.health.start())
        if probe:
            self.probe_all()

    def probe_all(self) -> None:
        self._arm_new(list(self._slots.values()))

    def _arm_new(self, slots: list[_Slot]) -> None:
        """First probe of each check: after a random share of its warmup."""
        now = monotonic_ns()
        for slot in slots:
            warmup = slot.check.warmup
            warm = self.rng.uniform(0.0, warmup) if warmup > 0 else 0.0
            self._arm(slot, now + int((self.bootstrap_delay + warm) * NS))

    def rebind(self, health: Health) -> tuple[int, int, int]:
        """Reload: run ``health``'s checks from now on. Checks in both plans keep their
        deadline, running probe and suspension; the others stop; new ones are armed as at
        start. Returns (kept, started, stopped)."""
        old = self._slots
        self.health = health
        self._slots = {}
        new: list[_Slot] = []
        for i, c in enumerate(health.checks):
            slot = old.pop(c, None)
            if slot is None:
                slot = _Slot(c, i)
                new.append(slot)
            slot.cid = i
            self._slots[c] = slot
        for slot in old.values():  # only in the old plan
            slot.cid = -1
            if slot.handle is not None:
                slot.handle.cancel()
            if slot.running is not None:
                slot.running.cancel()
                slot.running = None
        self._arm_new(new)
        return len(self._slots) - len(new), len(new), len(old)

    async def close(self, *, keep_scripts: bool = False) -> None:
        """Cancel every probe; close the script runner too unless ``keep_scripts`` (the
        checker's omega notifiers still run on it at shutdown)."""
        self._closed = True
        self._backlog.clear()
        tasks = []
        for slot in self._slots.values():
            if slot.handle is not None:
                slot.handle.cancel()
            r, slot.running = slot.running, None
            if r is not None:
                r.cancel()
                if isinstance(r, asyncio.Task):
                    tasks.append(r)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._own_connector and self.ctx.connector is not None:
            self.ctx.connector.close()
            self.ctx.connector = None
        if self._own_timer and self._timer is not None:
            self._timer.close()
        if self.ctx.scripts is not None and not keep_scripts:
            await self.ctx.scripts.close()

    def stop_actions(self) -> list[Action]:
        """keepalived's shutdown notifiers (`omega`)."""
        return self.health.stop()

    def suspend(self, cid: int) -> None:
        """ha_suspend: skip probes (the check keeps its state) until resumed."""
        self._slots[self.health.checks[cid]].suspended = True

    def resume(self, cid: int) -> None:
        """Probe again now (keepalived re-activates the checker for its next run)."""
        slot = self._slots[self.health.checks[cid]]
        if not slot.suspended:
            return
        slot.suspended = False
        if slot.running is None and self._timer is not None:
            self._arm(slot, monotonic_ns())

    @property
    def suspended(self) -> set[int]:
        return {s.cid for s in self._slots.values() if s.suspended}

    # ------------------------------------------------------------ schedule

    def _arm(self, slot: _Slot, deadline_ns: int) -> None:
        """Due at ``deadline_ns``; the timer fires on the next TICK_NS boundary."""
        if self._closed or isinstance(slot.check.probe, BfdSpec):  # BFD_CHECK: see push
            return
        assert self._timer is not None
        slot.deadline = deadline_ns
        tick = -(-deadline_ns // TICK_NS) * TICK_NS
        h = slot.handle
        if h is None:
            slot.handle = self._timer.call_at(tick, self._due, slot)
        else:
            h.reschedule(tick)

    def _due(self, _tick_ns: int, now_ns: int, slot: _Slot) -> None:
        if slot.cid < 0:  # dropped by a reload
            return
        assert self._timer is not None
        wakeup = self._timer.wakeups
        if wakeup != self._wakeup:
            self._wakeup, self._burst = wakeup, 0
        if self._backlog or self._burst >= BURST:
            # Behind: wait in line (FIFO) for a later loop iteration (see BURST).
            self._backlog.append(slot)
            if len(self._backlog) == 1:
                asyncio.get_running_loop().call_soon(self._drain)
            return
        self._burst += 1
        self._start(slot, now_ns)

    def _drain(self) -> None:
        """Start up to BURST probes of the backlog; the rest wait for the next iteration."""
        now_ns = monotonic_ns()  # one clock read per batch: lateness to within a batch
        backlog = self._backlog
        for _ in range(min(BURST, len(backlog))):
            slot = backlog.popleft()
            if slot.cid >= 0 and not self._closed:
                self._start(slot, now_ns)
        if backlog and not self._closed:
            asyncio.get_running_loop().call_soon(self._drain)

    def _start(self, slot: _Slot, now_ns: int) -> None:
        check = slot.check
        if slot.suspended:
            self._arm(slot, now_ns + int(check.delay_loop * NS))
            return
        if len(self.lateness_ns) >= LATENESS_KEEP:
            del self.lateness_ns[: LATENESS_KEEP // 2]
        self.lateness_ns.append(now_ns - slot.deadline)
        self.started += 1
        if (start := starter(check.probe.kind)) is not None:
            slot.running = _STARTING
            done = functools.partial(self._ended, slot, now_ns)
            running = start(check.probe, self.ctx, done, now_ns)
            if slot.running is _STARTING:  # not ended at once
                slot.running = running
            return
        task = asyncio.get_running_loop().create_task(self._run(slot, now_ns))
        slot.running = task
        task.add_done_callback(functools.partial(self._task_done, slot))

    def _task_done(self, slot: _Slot, task: asyncio.Task[None]) -> None:
        if slot.running is task:
            slot.running = None

    async def _run(self, slot: _Slot, t0: int) -> None:
        check = slot.check
        try:
            outcome = await run_probe(check.probe, self.ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug: count it as a failure, keep going
            log.exception("%s: probe raised", check.describe())
            outcome = Outcome(False, f"probe error: {exc!r}")
        self._complete(slot, t0, outcome, monotonic_ns())

    def _ended(self, slot: _Slot, t0: int, outcome: Outcome, now: int) -> None:
        """A callback probe's result."""
        slot.running = None
        self._complete(slot, t0, outcome, now)

    def _complete(self, slot: _Slot, t0: int, outcome: Outcome, now: int) -> None:
        check = slot.check
        self.completed += 1
        if not outcome.ok:
            self.failed += 1
        self.durations.observe(check.probe.kind, outcome.ok, now - t0)
        cid = slot.cid
        if cid < 0:  # a reload dropped the check while it ran
            return
        step, actions = self.health.feed(cid, outcome)
        first = not slot.has_run
        slot.has_run = True
        # keepalived logs a checker's result when it changes and at its first run
        # (`!checker->has_run`), even when the result confirms the initial state.
        if step.edge or (first and not step.retrying):
            up = step.up if step.edge else outcome.ok
            actions.insert(0, Log(edge_line(check, up, step.retry_it, outcome.reason)))
        elif not outcome.ok and (check.log_all_failures or step.retrying):
            log.info("%s failed (%s), retry %d", check.describe(), outcome.reason, step.retry_it)
        self._emit(actions)
        delay = check.delay_before_retry if step.retrying else check.delay_loop
        self._arm(slot, now + int(delay * NS))

    def push(self, cid: int, outcome: Outcome) -> None:
        """A result nobody probed for (BFD_CHECK's BFD event): fed and acted on."""
        _, actions = self.health.feed(cid, outcome)
        self._slots[self.health.checks[cid]].has_run = True
        self._emit(actions)

    def _emit(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Log):
                log.info("%s", a.text)
        if self.on_actions is not None and actions:
            self.on_actions(actions)

    # ------------------------------------------------------------ figures


# keepalived 2.2.7's words for a checker going up / down (check_tcp.c tcp_epilog,
# check_http.c http_handle_response, check_udp.c, check_ping.c, check_smtp.c), with
# FMT_CHK's `[address]:proto:port`.
_EDGE_WORDS = {
    "TCP_CHECK": ("TCP connection to {} success.", "TCP_CHECK on service {} failed"),
    "HTTP_GET": ("Remote Web server {} succeed on service.", "HTTP_CHECK on service {} failed"),
    "SSL_GET": ("Remote Web server {} succeed on service.", "HTTP_CHECK on service {} failed"),
    "UDP_CHECK": ("UDP connection to {} success.", "UDP_CHECK on service {} failed"),
    "PING_CHECK": ("ICMP connection to {} success.", "ICMP CHECK on service {} failed"),
    "SMTP_CHECK": ("Remote SMTP server {} succeed on service.", "SMTP_CHECK on service {} failed"),
}


def edge_line(check: Check, up: bool, retries: int, reason: str | None) -> str:
    """The line logged when a checker's result changes."""
    p = check.probe
    words = _EDGE_WORDS.get(p.kind)
    # MISC_CHECK and FILE_CHECK (no endpoint) have no words there.
    if words is not None and not isinstance(p, MiscSpec | FileSpec | BfdSpec):
        ep = p.endpoint
        proto = "udp" if p.kind == "UDP_CHECK" else "tcp"
        where = f"[{ep.host}]:{proto}:{ep.port}"
        if up:
            return words[0].format(where)
        tail = f" after {retries} retries" if retries else ""
        return f"{words[1].format(where)}{tail}."
    word = "succeeded" if up else "failed"
    tail = "" if up or not retries else f" after {retries} retries"
    why = f" ({reason})" if reason and not up else ""
    return f"{check.describe()} {word}{tail}{why}."


# Upper bounds (seconds) of the probe duration histogram: loopback probes take ~100 us,
# a timed-out one its connect_timeout.
DURATION_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ProbeDurations:
    """How long probes took, per checker kind and result, as histogram buckets (the
    metrics endpoint exposes them); a fixed, small amount of memory per kind."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, bool], list[float]] = {}

    def observe(self, kind: str, ok: bool, ns: int) -> None:
        row = self.by_key.get((kind, ok))
        if row is None:  # one count per bound, the +Inf count, then the sum
            row = self.by_key[(kind, ok)] = [0] * (len(DURATION_BOUNDS_S) + 2)
        s = ns / 1e9
        for i, bound in enumerate(DURATION_BOUNDS_S):
            if s <= bound:
                row[i] += 1
                break
        else:
            row[len(DURATION_BOUNDS_S)] += 1
        row[-1] += s

    def as_dict(self) -> list[dict[str, object]]:
        return [
            {"kind": k, "ok": ok, "counts": row[:-1], "sum_s": row[-1]}
            for (k, ok), row in sorted(self.by_key.items())
        ]
