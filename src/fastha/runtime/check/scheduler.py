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
    sched.rebind(new_health)                          # reload: same Check, same schedule
    await sched.close()

Internally a check is known by its `Check` value, not its index: on reload a check that
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
from collections.abc import Callable

from fastha.check.health import Action, Health, Log, Outcome
from fastha.check.spec import BfdSpec, Check, FileSpec, MiscSpec
from fastha.probes import ProbeContext, run_probe
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
        self._index: dict[Check, int] = {c: i for i, c in enumerate(health.checks)}
        self._handles: dict[Check, TimerHandle] = {}
        self._running: dict[Check, asyncio.Task[None]] = {}
        self._suspended: set[Check] = set()
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.lateness_ns = array("q")
        self.durations = ProbeDurations()
        self._has_run: set[Check] = set()
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def start(self, *, probe: bool = True) -> None:
        """Health's first state; probes armed now, or by `probe_all` later (the
        checker child applies the initial IPVS table first: a probe in flight while
        that keeps the loop busy would time out on our account, not the server's)."""
        loop = asyncio.get_running_loop()
        if self._timer is None:
            self._timer = PreciseTimer(loop)
        self._timer.start()
        self._emit(self.health.start())
        if probe:
            self.probe_all()

    def probe_all(self) -> None:
        self._arm_new(self.health.checks)

    def _arm_new(self, checks: tuple[Check, ...] | list[Check]) -> None:
        """First probe of each check: after a random share of its warmup."""
        now = monotonic_ns()
        for check in checks:
            warm = self.rng.uniform(0.0, check.warmup) if check.warmup > 0 else 0.0
            self._arm(check, now + int((self.bootstrap_delay + warm) * NS))

    def rebind(self, health: Health) -> tuple[int, int, int]:
        """Reload: run ``health``'s checks from now on. Checks in both plans keep their
        deadline, running probe and suspension; the others stop; new ones are armed as at
        start. Returns (kept, started, stopped)."""
        old = self._index
        self.health = health
        self._index = {c: i for i, c in enumerate(health.checks)}
        gone = [c for c in old if c not in self._index]
        for c in gone:
            h = self._handles.pop(c, None)
            if h is not None:
                h.cancel()
            t = self._running.pop(c, None)
            if t is not None:
                t.cancel()
            self._suspended.discard(c)
            self._has_run.discard(c)
        new = [c for c in health.checks if c not in old]
        self._arm_new(new)
        return len(self._index) - len(new), len(new), len(gone)

    async def close(self, *, keep_scripts: bool = False) -> None:
        """Cancel every probe; close the script runner too unless ``keep_scripts`` (the
        checker's omega notifiers still run on it at shutdown)."""
        self._closed = True
        for h in self._handles.values():
            h.cancel()
        tasks = list(self._running.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._own_timer and self._timer is not None:
            self._timer.close()
        if self.ctx.scripts is not None and not keep_scripts:
            await self.ctx.scripts.close()

    def stop_actions(self) -> list[Action]:
        """keepalived's shutdown notifiers (`omega`)."""
        return self.health.stop()

    def suspend(self, cid: int) -> None:
        """ha_suspend: skip probes (the check keeps its state) until resumed."""
        self._suspended.add(self.health.checks[cid])

    def resume(self, cid: int) -> None:
        """Probe again now (keepalived re-activates the checker for its next run)."""
        check = self.health.checks[cid]
        if check not in self._suspended:
            return
        self._suspended.discard(check)
        if check not in self._running and self._timer is not None:
            self._arm(check, monotonic_ns())

    @property
    def suspended(self) -> set[int]:
        return {self._index[c] for c in self._suspended if c in self._index}

    # ------------------------------------------------------------ schedule

    def _arm(self, check: Check, deadline_ns: int) -> None:
        if self._closed or isinstance(check.probe, BfdSpec):  # BFD_CHECK: pushed (push)
            return
        assert self._timer is not None
        h = self._handles.get(check)
        if h is None:
            self._handles[check] = self._timer.call_at(deadline_ns, self._due, check)
        else:
            h.reschedule(deadline_ns)

    def _due(self, deadline_ns: int, now_ns: int, check: Check) -> None:
        if check not in self._index:  # dropped by a reload
            return
        if check in self._suspended:
            self._arm(check, now_ns + int(check.delay_loop * NS))
            return
        if len(self.lateness_ns) >= LATENESS_KEEP:
            del self.lateness_ns[: LATENESS_KEEP // 2]
        self.lateness_ns.append(now_ns - deadline_ns)
        self.started += 1
        task = asyncio.get_running_loop().create_task(self._run(check))
        self._running[check] = task
        task.add_done_callback(functools.partial(self._done, check))

    def _done(self, check: Check, task: asyncio.Task[None]) -> None:
        if self._running.get(check) is task:
            del self._running[check]

    async def _run(self, check: Check) -> None:
        t0 = monotonic_ns()
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
        self.durations.observe(check.probe.kind, outcome.ok, monotonic_ns() - t0)
        cid = self._index.get(check)
        if cid is None:  # a reload dropped the check while it ran
            return
        step, actions = self.health.feed(cid, outcome)
        first = check not in self._has_run
        self._has_run.add(check)
        # keepalived logs a checker's result when it changes and at its first run
        # (`!checker->has_run`), even when the result confirms the initial state.
        if step.edge or (first and not step.retrying):
            up = step.up if step.edge else outcome.ok
            actions.insert(0, Log(edge_line(check, up, step.retry_it, outcome.reason)))
        elif not outcome.ok and (check.log_all_failures or step.retrying):
            log.info("%s failed (%s), retry %d", check.describe(), outcome.reason, step.retry_it)
        self._emit(actions)
        delay = check.delay_before_retry if step.retrying else check.delay_loop
        self._arm(check, monotonic_ns() + int(delay * NS))

    def push(self, cid: int, outcome: Outcome) -> None:
        """A result nobody probed for (BFD_CHECK's BFD event): fed and acted on."""
        _, actions = self.health.feed(cid, outcome)
        self._has_run.add(self.health.checks[cid])
        self._emit(actions)

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
