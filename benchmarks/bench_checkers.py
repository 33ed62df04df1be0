"""Checker throughput: N real servers on loopback, TCP_CHECK and HTTP_GET at delay_loop 1 s.

    .venv/bin/python benchmarks/bench_checkers.py [--servers 5000] [--kinds tcp,http]
        [--delay-loop 1] [--duration 10] [--server-procs 1] [--json]

One helper process (uvloop) listens on N ephemeral loopback ports and answers every
connection with a tiny HTTP/1.0 response; this process runs the checker scheduler with
one TCP_CHECK and/or one HTTP_GET per real server. Reported over the measured window:
achieved checks/s (keepalived reschedules delay_loop after each probe ends, so the
ceiling is N / (delay_loop + probe time) per kind), p50/p99/max lateness of probe starts
against their deadlines, the checker process's CPU%, and failures (should be 0).
Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import resource
import subprocess
import sys
import time

import uvloop

from fastha.check.health import Health
from fastha.check.spec import (
    Check,
    Endpoint,
    HttpSpec,
    Plan,
    RsKey,
    RsPlan,
    StatusRange,
    TcpSpec,
    UrlSpec,
    VsPlan,
)
from fastha.probes import ProbeContext
from fastha.runtime.check.scheduler import Scheduler

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        return soft
    return want


# ---------------------------------------------------------------- server side


class _Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.t.write(RESPONSE)  # type: ignore[attr-defined]
            self.t.close()


async def serve(n: int) -> None:
    loop = asyncio.get_running_loop()
    ports = []
    for _ in range(n):
        srv = await loop.create_server(_Answer, "127.0.0.1", 0, backlog=128)
        ports.append(srv.sockets[0].getsockname()[1])
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


# ---------------------------------------------------------------- checker side


def build(ports: list[int], kinds: list[str], delay_loop: float) -> Plan:
    checks: list[Check] = []
    rss: list[RsPlan] = []
    lo = ipaddress.ip_address("127.0.0.1")
    for port in ports:
        ep = Endpoint(host=lo, port=port, connect_timeout=3.0)
        ids = []
        for kind in kinds:
            if kind == "tcp":
                probe = TcpSpec(endpoint=ep)
            else:
                url = UrlSpec(path="/", status=(StatusRange(lo=200, hi=299),))
                probe = HttpSpec(endpoint=ep, urls=(url,))
            ids.append(len(checks))
            checks.append(Check(probe=probe, delay_loop=delay_loop, warmup=delay_loop))
        rss.append(RsPlan(key=RsKey(lo, port), weight=1, checks=tuple(ids)))
    vs = VsPlan(name="[192.0.2.1]:tcp:80", real_servers=tuple(rss))
    return Plan(virtual_servers=(vs,), checks=tuple(checks))


def pct(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


async def measure(plan: Plan, warm: float, duration: float) -> dict[str, float]:
    health = Health(plan)
    sched = Scheduler(health, ProbeContext())
    sched.start()
    await asyncio.sleep(warm)
    c0, f0, l0 = sched.completed, sched.failed, len(sched.lateness_ns)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(duration)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    c1, f1 = sched.completed, sched.failed
    late = sorted(sched.lateness_ns[l0:])
    await sched.close()
    wall = t1 - t0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "checks": len(plan.checks),
        "checks_per_s": (c1 - c0) / wall,
        "failures": f1 - f0,
        "lateness_p50_ms": pct(late, 0.50),
        "lateness_p99_ms": pct(late, 0.99),
        "lateness_max_ms": pct(late, 1.0),
        "cpu_percent": 100.0 * cpu / wall,
        "window_s": wall,
    }


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=5000)
    ap.add_argument("--kinds", default="tcp,http")
    ap.add_argument("--delay-loop", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--server-procs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    limit = raise_nofile()
    if a.serve:
        uvloop.run(serve(a.serve))
        return
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    per = -(-a.servers // a.server_procs)
    procs, ports = [], []
    for i in range(a.server_procs):
        n = min(per, a.servers - i * per)
        p = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None
        ports += json.loads(p.stdout.readline())
    try:
        plan = build(ports, kinds, a.delay_loop)
        # First probes are spread over one warmup (= delay_loop); measure after two.
        res = uvloop.run(measure(plan, 2 * a.delay_loop + 1.0, a.duration))
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(timeout=10)
    res.update(servers=a.servers, kinds=a.kinds, delay_loop=a.delay_loop, nofile=limit)
    res["cpus"] = os.cpu_count() or 0
    if a.json:
        print(json.dumps(res))
        return
    print(
        f"{a.servers} real servers x [{a.kinds}] = {res['checks']} checks, delay_loop "
        f"{a.delay_loop}s, {res['window_s']:.1f}s window, {res['cpus']} CPUs\n"
        f"  achieved      {res['checks_per_s']:9.0f} checks/s "
        f"(ceiling ~{res['checks'] / a.delay_loop:.0f}/s)\n"
        f"  failures      {res['failures']:9d}\n"
        f"  start lateness p50 {res['lateness_p50_ms']:.2f} ms  p99 "
        f"{res['lateness_p99_ms']:.2f} ms  max {res['lateness_max_ms']:.2f} ms\n"
        f"  checker CPU   {res['cpu_percent']:9.1f} %"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
