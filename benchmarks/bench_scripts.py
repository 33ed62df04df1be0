"""Script spawns vs the advert timer: how late a 10 ms timerfd grid runs while scripts start.

A VRRP child runs its vrrp_scripts (and notify scripts) from the loop that sends its
adverts. This runs the precise timer every 10 ms on uvloop, as the adverts are, and
starts `/bin/true` RATE times a second, three ways, in rounds within the same run:

  idle      no scripts: the machine's own noise
  fastha    ScriptRunner: a spawner thread vforks, the run's cgroup is joined by the
            script's own process before its exec, the loop waits on a pidfd
  on-loop   the naive way (fastha before 2026-12): asyncio.create_subprocess_exec on the
            loop with a preexec_fn that joins the run's cgroup, so the loop waits for a
            fork of this process and for the join (an RCU grace period in the kernel)

Lateness is when the timer callback ran minus its deadline. Root is needed for the
cgroups (without them both ways still spawn, and the join's cost is not measured).

    sudo .venv/bin/python benchmarks/bench_scripts.py
    sudo .venv/bin/python benchmarks/bench_scripts.py --rate 20 --seconds 5 --json
    sudo .venv/bin/python benchmarks/bench_scripts.py --user nobody   # a non-root script_user

Prints figures and in-run ratios; never asserts timings.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import time
from typing import Any

import click
import orjson
import uvloop

from fastha.bench.timer import percentile
from fastha.config.invocation import Script
from fastha.drivers.scripts import ScriptCgroups, ScriptRunner
from fastha.wire.timer import PreciseTimer

INTERVAL_NS = 10_000_000
ARGV = ("/bin/true",)


async def _on_loop(cgs: ScriptCgroups | None) -> None:
    """One spawn the naive way, everything but the child's run on the loop thread."""
    cg = cgs.new() if cgs is not None else None
    procs = cg.procs if cg is not None else []

    def join() -> None:  # in the child, between fork and exec
        for path in procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    proc = await asyncio.create_subprocess_exec(
        *ARGV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=join if cg is not None else None, close_fds=True,
    )  # fmt: skip
    await proc.wait()
    if cg is not None:
        cg.release()
        cg.remove()


async def _phase(
    kind: str,
    seconds: float,
    rate: int,
    runner: ScriptRunner,
    cgs: ScriptCgroups | None,
    user: str | None = None,
) -> list[float]:
    """Lateness (µs) of every timer deadline during one phase."""
    loop = asyncio.get_running_loop()
    timer = PreciseTimer(loop)
    timer.start()
    late: list[float] = []
    timer.every(INTERVAL_NS, lambda d, _n: late.append((time.monotonic_ns() - d) / 1000))
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t = time.monotonic()
            if kind == "fastha":
                await runner.run(Script(ARGV, timeout=5, user=user))
            elif kind == "on-loop":
                await _on_loop(cgs)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - t)))
    finally:
        timer.close()
    return late


def _figures(late: list[float]) -> dict[str, float]:
    s = sorted(late)
    return {
        "deadlines": len(s),
        "p50_us": percentile(s, 50),
        "p99_us": percentile(s, 99),
        "p99.9_us": percentile(s, 99.9),
        "max_us": s[-1] if s else float("nan"),
    }


async def _bench(seconds: float, rate: int, rounds: int, user: str | None) -> dict[str, Any]:
    runner = ScriptRunner()
    cgs = runner.cgroups
    late: dict[str, list[float]] = {"idle": [], "fastha": [], "on-loop": []}
    for _ in range(rounds):
        for kind in late:
            late[kind] += await _phase(kind, seconds / rounds, rate, runner, cgs, user)
    await runner.close()
    figs = {k: _figures(v) for k, v in late.items()}
    return {
        "rate_per_s": rate,
        "seconds_per_kind": seconds,
        "cgroups": cgs is not None,
        "user": user,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "lateness": figs,
        "ratio_on_loop_over_fastha": {
            q: figs["on-loop"][q] / figs["fastha"][q] for q in ("p99_us", "p99.9_us", "max_us")
        },
    }


@click.command()
@click.option("--rate", default=10, show_default=True, help="script runs per second")
@click.option("--seconds", default=10.0, show_default=True, help="per kind, over all rounds")
@click.option("--rounds", default=5, show_default=True, help="idle/fastha/on-loop rounds")
@click.option("--user", default=None, help="fastha's runs as this script_user (as root if unset)")
@click.option("--json", "as_json", is_flag=True)
def main(rate: int, seconds: float, rounds: int, user: str | None, as_json: bool) -> None:
    res = uvloop.run(_bench(seconds, rate, rounds, user))
    if as_json:
        click.echo(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(
        f"script spawns vs a 10 ms timerfd grid: {rate} runs/s of {ARGV[0]}, {seconds:g} s "
        f"per kind in {rounds} rounds, cgroups {'on' if res['cgroups'] else 'off'}, "
        f"fastha's runs as {user or 'root'}, "
        f"max RSS {res['maxrss_mb']:.0f} MB"
    )
    click.echo(
        f"{'kind':8} {'deadlines':>9} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9}"
    )
    for kind, f in res["lateness"].items():
        click.echo(
            f"{kind:8} {f['deadlines']:>9} {f['p50_us']:>9.0f} {f['p99_us']:>9.0f} "
            f"{f['p99.9_us']:>9.0f} {f['max_us']:>9.0f}"
        )
    r = res["ratio_on_loop_over_fastha"]
    click.echo(
        f"on-loop / fastha: p99 {r['p99_us']:.1f}x, p99.9 {r['p99.9_us']:.1f}x, "
        f"max {r['max_us']:.1f}x"
    )


if __name__ == "__main__":
    main()
