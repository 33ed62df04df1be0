"""`fastha bench timer`: timerfd PreciseTimer vs loop.call_at on a fixed 10 ms grid.

Both run interleaved in one loop and one run, so they share the machine's noise: the
call_at stream is offset by half a slot so the two never contend for the same wakeup.
call_at is used the natural way: each callback schedules the next at previous deadline +
interval in loop.time(). Lateness is time.monotonic_ns() at the top of the callback minus
the deadline, for both. Figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

from fastha.wire.timer import PreciseTimer, get_timer_slack_ns, set_timer_slack_ns

NS = 1_000_000_000
# Margin before the first deadline so setup (thousands of schedules) is finished.
START_MARGIN_NS = 200_000_000


@dataclass
class Stream:
    """One instance's deadlines and the times its callbacks ran (ns)."""

    deadlines: list[int] = field(default_factory=list)
    ran: list[int] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summarise(streams: list[Stream], interval_ns: int) -> dict[str, Any]:
    late_us = sorted(
        (r - d) / 1000 for s in streams for d, r in zip(s.deadlines, s.ran, strict=True)
    )
    # Mean interval from the actual run times: drift shows up here, jitter averages out.
    # Divide by grid slots, not callbacks, so a skipped slot is not counted as drift.
    means = [
        (s.ran[-1] - s.ran[0]) / round((s.deadlines[-1] - s.deadlines[0]) / interval_ns)
        for s in streams
        if s.deadlines[-1] > s.deadlines[0]
    ]
    mean_ns = sum(means) / len(means) if means else float("nan")
    return {
        "deadlines": len(late_us),
        "lateness_us": {
            "p50": percentile(late_us, 50),
            "p99": percentile(late_us, 99),
            "p99.9": percentile(late_us, 99.9),
            "max": late_us[-1] if late_us else float("nan"),
            "min": late_us[0] if late_us else float("nan"),
        },
        "early": sum(1 for v in late_us if v < 0),
        "mean_interval_us": mean_ns / 1000,
        "interval_error_pct": (mean_ns - interval_ns) / interval_ns * 100,
    }


def run(count: int, interval_ns: int, instances: int, loop_kind: str) -> dict[str, Any]:
    loop: asyncio.AbstractEventLoop
    if loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    timer = PreciseTimer(loop)
    timer.start()
    tfd = [Stream() for _ in range(instances)]
    cat = [Stream() for _ in range(instances)]
    done: asyncio.Future[None] = loop.create_future()
    remaining = [2 * instances]
    interval_s = interval_ns / NS
    slot = interval_ns // instances  # instances spread evenly over the interval
    t0 = time.monotonic_ns() + START_MARGIN_NS
    mono = time.monotonic_ns

    def finished() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)

    def on_timerfd(deadline_ns: int, now_ns: int, s: Stream) -> None:
        ran = mono()
        s.deadlines.append(deadline_ns)
        s.ran.append(ran)
        if len(s.ran) == count:
            handles[id(s)].cancel()
            finished()

    def on_call_at(when: float, s: Stream) -> None:
        ran = mono()
        s.deadlines.append(round(when * NS))
        s.ran.append(ran)
        if len(s.ran) == count:
            finished()
        else:
            when += interval_s
            loop.call_at(when, on_call_at, when, s)

    handles = {}
    for i in range(instances):
        phase = t0 + i * slot
        handles[id(tfd[i])] = timer.every(interval_ns, on_timerfd, tfd[i], first_deadline_ns=phase)
        when = (phase + slot // 2) / NS  # loop.time() is CLOCK_MONOTONIC on both loops
        loop.call_at(when, on_call_at, when, cat[i])
    try:
        loop.run_until_complete(done)
        skipped = sum(h.skipped for h in handles.values())
        wakeups = timer.wakeups
    finally:
        timer.close()
        loop.close()
    timerfd = summarise(tfd, interval_ns)
    timerfd["skipped"] = skipped
    timerfd["wakeups"] = wakeups
    call_at = summarise(cat, interval_ns)
    return {
        "loop": loop_kind,
        "count": count,
        "instances": instances,
        "interval_us": interval_ns / 1000,
        "mode": "interleaved in one loop, call_at offset by half a slot",
        "timerfd": timerfd,
        "call_at": call_at,
        "p50_ratio_call_at_over_timerfd": (
            call_at["lateness_us"]["p50"] / timerfd["lateness_us"]["p50"]
            if timerfd["lateness_us"]["p50"] > 0
            else float("inf")
        ),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"timer: {result['count']} deadlines x {result['instances']} instance(s) at "
        f"{result['interval_us'] / 1000:.3f} ms on {result['loop']}, timer slack "
        f"{result['timer_slack_ns']} ns ({result['mode']})",
        f"{'':13}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}{'max µs':>9}{'min µs':>9}"
        f"{'early':>7}{'mean interval µs':>18}{'error %':>10}",
    ]
    for name, key in (("timerfd", "timerfd"), ("loop.call_at", "call_at")):
        r = result[key]
        lat = r["lateness_us"]
        lines.append(
            f"{name:13}{lat['p50']:9.1f}{lat['p99']:9.1f}{lat['p99.9']:10.1f}{lat['max']:9.1f}"
            f"{lat['min']:9.1f}{r['early']:7d}{r['mean_interval_us']:18.3f}"
            f"{r['interval_error_pct']:+10.4f}"
        )
    t = result["timerfd"]
    lines.append(
        f"timerfd: {t['wakeups']} wakeups, {t['skipped']} skipped slots; "
        f"p50 lateness call_at/timerfd = {result['p50_ratio_call_at_over_timerfd']:.1f}x"
    )
    return "\n".join(lines)


@click.command("timer")
@click.option("--count", default=6000, show_default=True, help="Deadlines per instance.")
@click.option("--interval-ms", default=10.0, show_default=True, help="Grid interval.")
@click.option(
    "--instances", default=1, show_default=True, help="Streams of each kind, phases spread."
)
@click.option("--loop", "loop_kind", type=click.Choice(["uvloop", "asyncio"]), default="uvloop")
@click.option(
    "--timer-slack-ns",
    default=1,
    show_default=True,
    help="PR_SET_TIMERSLACK for the run, as the VRRP child sets it; 0 = kernel default.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def command(
    count: int,
    interval_ms: float,
    instances: int,
    loop_kind: str,
    timer_slack_ns: int,
    as_json: bool,
) -> None:
    """Lateness and mean-interval error: timerfd PreciseTimer vs loop.call_at."""
    if count < 2 or instances < 1 or interval_ms <= 0:
        raise click.BadParameter("need --count >= 2, --instances >= 1, --interval-ms > 0")
    set_timer_slack_ns(timer_slack_ns)
    result = run(count, round(interval_ms * 1_000_000), instances, loop_kind)
    result["timer_slack_ns"] = get_timer_slack_ns()
    if as_json:
        click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(result))
