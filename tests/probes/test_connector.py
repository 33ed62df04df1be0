"""The connect watcher TCP_CHECK, HTTP_GET and SSL_GET run on (`probes._net.Connector`)
and the scheduler's callback path, against real loopback listeners: every connect ends
exactly once with its own result (connected, refused, timed out), a cancelled one never,
a closed watcher leaves no socket open; the scheduler starts at most BURST probes per
loop iteration; and, counted by strace, a TCP check costs socket + connect + one
epoll_ctl + close, with no failing syscall (uvloop's add_writer/remove_writer cost 3.3
epoll_ctl, 1.2 of them failing, plus an ioctl and a getpid); an HTTP check adds a send,
its recv and an epoll_ctl per recv awaited."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fastha.check.health import Health
from fastha.check.spec import HttpSpec, StatusRange, UrlSpec, build_plan
from fastha.probes import ProbeContext
from fastha.probes import http as http_probe
from fastha.probes._net import Connector, ProbeTimeout
from fastha.runtime.check import scheduler as scheduler_mod
from fastha.runtime.check.scheduler import Scheduler
from fastha.wire.timer import PreciseTimer
from tests.support.strace import traced

from .conftest import ep, run
from .servers import BODY, FullBacklog, HttpServer, free_port
from .test_scheduler import conf

pytestmark = pytest.mark.unit


def _listener(backlog: int = 128) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s


def _sock() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)


def test_each_connect_ends_once_with_its_own_result() -> None:
    """Open, refused and silent (full backlog) servers mixed, many at once, so fd numbers
    are reused while others are in flight: each result belongs to its own connect."""
    lst = _listener()
    fb = FullBacklog()
    refused = free_port()
    targets = {"up": lst.getsockname()[1], "refused": refused, "silent": fb.port}

    async def main() -> dict[str, list[str]]:
        c = Connector()
        got: dict[str, list[str]] = {k: [] for k in targets}
        socks = []

        def done(kind: str, s: socket.socket):
            def cb(exc: BaseException | None, now: int) -> None:
                assert now > 0
                s.close()
                got[kind].append("ok" if exc is None else type(exc).__name__)

            return cb

        for _ in range(3):  # three rounds: fds closed in one round come back in the next
            for kind, port in targets.items():
                for _ in range(20 if kind != "silent" else 2):
                    s = _sock()
                    socks.append(s)
                    c.connect(s, ("127.0.0.1", port), 0.3, done(kind, s))
            for _ in range(200):
                if c.pending == 0:
                    break
                await asyncio.sleep(0.01)
        c.close()
        assert all(s.fileno() == -1 for s in socks)  # every socket was closed
        return got

    try:
        got = run(main())
    finally:
        lst.close()
        fb.close()
    assert got["up"] == ["ok"] * 60
    assert got["refused"] == ["ConnectionRefusedError"] * 60
    assert got["silent"] == [ProbeTimeout.__name__] * 6


def test_cancel_and_close_never_call_back() -> None:
    fb = FullBacklog()

    async def main() -> tuple[list[object], list[socket.socket]]:
        timer = PreciseTimer(asyncio.get_running_loop())
        timer.start()
        c = Connector(timer)
        calls: list[object] = []
        a, b = _sock(), _sock()
        pa = c.connect(a, ("127.0.0.1", fb.port), 0.1, lambda e, n: calls.append(e))
        pb = c.connect(b, ("127.0.0.1", fb.port), 0.1, lambda e, n: calls.append(e))
        assert pa is not None and pb is not None and c.pending == 2
        pa.cancel()
        assert c.pending == 1 and a.fileno() == -1
        c.close()  # b still in flight: forgotten and closed
        await asyncio.sleep(0.3)  # past both timeouts
        assert timer.pending == 0  # no deadline left behind
        timer.close()
        return calls, [a, b]

    try:
        calls, socks = run(main())
    finally:
        fb.close()
    assert calls == []
    assert all(s.fileno() == -1 for s in socks)


def test_an_http_probe_cancelled_while_it_waits_for_the_answer() -> None:
    """Connected, request sent, no answer yet (the server hangs): cancel() closes the
    socket, takes it and its deadline out of the Connector, and never calls back."""
    srv = HttpServer()
    url = UrlSpec(path="/hang", status=(StatusRange(lo=200, hi=299),))
    spec = HttpSpec(endpoint=ep(srv.port, timeout=5.0), urls=(url,))

    async def main() -> tuple[list[object], int, int]:
        ctx = ProbeContext()
        calls: list[object] = []
        g = http_probe.start(spec, ctx, lambda o, _n: calls.append(o), None)
        assert g is not None
        for _ in range(200):  # until the server has the request
            if srv.seen:
                break
            await asyncio.sleep(0.01)
        c = ctx.connects()
        assert c.pending == 1 and g.sock is not None
        sock = g.sock
        g.cancel()
        await asyncio.sleep(0.05)
        pending, timers = c.pending, c.timer.pending
        c.close()
        assert sock.fileno() == -1
        return calls, pending, timers

    try:
        calls, pending, timers = run(main())
    finally:
        srv.close()
    assert srv.seen and srv.seen[0][0] == "/hang"
    assert calls == [] and pending == 0 and timers == 0


def test_a_failing_callback_does_not_lose_the_others() -> None:
    lst = _listener()

    async def main() -> tuple[int, list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _l, ctx: errors.append(ctx))
        c = Connector()
        ok = 0

        def good(exc: BaseException | None, _now: int) -> None:
            nonlocal ok
            ok += exc is None

        def bad(_exc: BaseException | None, _now: int) -> None:
            raise RuntimeError("broken callback")

        socks = [_sock() for _ in range(10)]
        for i, s in enumerate(socks):
            c.connect(s, lst.getsockname(), 1.0, bad if i == 0 else good)
        for _ in range(100):
            if c.pending == 0:
                break
            await asyncio.sleep(0.01)
        c.close()
        for s in socks:
            s.close()
        return ok, errors

    try:
        ok, errors = run(main())
    finally:
        lst.close()
    assert ok == 9
    assert len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)


def _tcp_conf(tmp_path: Path, ports: list[int], delay: float = 0.05) -> str:
    rs = "".join(
        f"    real_server 127.0.0.1 {p} {{\n        TCP_CHECK {{\n"
        f"            connect_timeout 1\n            warmup 0\n        }}\n    }}\n"
        for p in ports
    )
    return (
        f"virtual_server 192.0.2.1 80 {{\n    lvs_sched rr\n    protocol TCP\n"
        f"    delay_loop {delay}\n{rs}}}\n"
    )


def test_scheduler_starts_at_most_burst_probes_per_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 checks due at once (warmup 0) with BURST 10: 10 start on the timer's wakeup,
    the others wait in line and start 10 per loop iteration; each completes once, and
    lateness is counted against the check's own deadline."""
    monkeypatch.setattr(scheduler_mod, "BURST", 10)
    lsts = [_listener() for _ in range(60)]  # 60 distinct checks
    ports = [s.getsockname()[1] for s in lsts]
    health = Health(build_plan(conf(tmp_path, _tcp_conf(tmp_path, ports, delay=30))))
    per_batch: dict[tuple[int, int], int] = {}

    async def main() -> Scheduler:
        sched = Scheduler(health)
        real_starter, real_drain = scheduler_mod.starter, sched._drain
        drains = 0

        def drain() -> None:
            nonlocal drains
            drains += 1
            real_drain()

        def counting(kind: str):  # type: ignore[no-untyped-def]
            assert sched._timer is not None
            key = (sched._timer.wakeups, drains)
            per_batch[key] = per_batch.get(key, 0) + 1
            return real_starter(kind)

        sched._drain = drain  # type: ignore[method-assign]
        monkeypatch.setattr(scheduler_mod, "starter", counting)
        sched.start()
        for _ in range(300):
            if sched.completed >= 60:
                break
            await asyncio.sleep(0.01)
        await sched.close()
        return sched

    try:
        sched = run(main())
    finally:
        for s in lsts:
            s.close()
    assert sched.completed == 60 and sched.failed == 0
    assert max(per_batch.values()) == 10 and len(per_batch) >= 6, per_batch
    assert sum(per_batch.values()) == 60
    assert len(sched.lateness_ns) == 60
    # the last ones waited in line: their lateness grew, measured from their deadline
    assert sched.lateness_ns[-1] > sched.lateness_ns[0]


_STRACE_CHILD = """
import asyncio, sys
import uvloop
from fastha.check.health import Health
from fastha.check.spec import build_plan
from fastha.config.loader import load
from fastha.runtime.check.scheduler import Scheduler

N = int(sys.argv[2])
health = Health(build_plan(load(sys.argv[1]).config))
print("ready", flush=True)
sys.stdin.readline()  # strace attaches meanwhile: start-up is not counted

async def main():
    s = Scheduler(health)
    s.start()
    while s.completed < N:
        await asyncio.sleep(0.01)
    await s.close()
    print("completed", s.completed, "failed", s.failed, flush=True)

with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
    r.run(main())
"""


def _strace_counts(text: str) -> dict[str, tuple[int, int]]:
    """strace -c's table: syscall -> (calls, errors)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$", line)
        if m and m.group(3) != "total":
            out[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return out


def _strace_checks(
    tmp_path: Path, conf_text: str, n: int
) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """Run the scheduler on ``conf_text`` in a child under ``strace -f -c`` until ``n``
    checks completed (start-up not counted): (completed, failed, strace's table)."""
    cfg = tmp_path / "keepalived.conf"
    cfg.write_text(conf_text)
    script = tmp_path / "child.py"
    script.write_text(_STRACE_CHILD)
    report = tmp_path / "strace.txt"
    argv = [sys.executable, str(script), str(cfg), str(n)]
    with traced(argv, ["-f", "-c", "-o", str(report)]) as (child, first):
        assert first == "ready"
        assert child.stdout is not None
        out = child.stdout.read()
        assert child.wait(120) == 0
    m = re.search(r"completed (\d+) failed (\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), _strace_counts(report.read_text())


def test_tcp_check_syscalls_per_probe(tmp_path: Path) -> None:
    """400 TCP checks (20 servers, one refused) under strace -c: per check one socket,
    one connect, at most one epoll_ctl, one close; no failing epoll_ctl, ioctl or getpid
    per check (uvloop makes a few of each per fd it watches: its loop's, the timer's,
    the watcher's)."""
    lsts = [_listener() for _ in range(19)]
    ports = [s.getsockname()[1] for s in lsts] + [free_port()]
    n = 400
    try:
        done, failed, calls = _strace_checks(tmp_path, _tcp_conf(tmp_path, ports, delay=0.02), n)
    finally:
        for s in lsts:
            s.close()
    assert done >= n and failed > 0  # the refused one failed
    # the loop's own start and stop make a few of each; the checks dominate
    sockets = calls["socket"][0]
    assert done <= sockets <= done + 40, (sockets, done, calls)
    connects = calls["connect"][0]
    assert done <= connects <= done + 40
    epoll_ctl, epoll_ctl_failed = calls.get("epoll_ctl", (0, 0))
    assert epoll_ctl <= done + 40 and epoll_ctl_failed < done // 10, calls["epoll_ctl"]
    assert calls.get("ioctl", (0, 0))[0] < done // 2, calls.get("ioctl")
    assert calls.get("getpid", (0, 0))[0] < done // 2, calls.get("getpid")
    assert calls.get("getsockopt", (0, 0))[0] < done // 2, calls.get("getsockopt")


def _http_conf(ports: list[int], refused: int, delay: float) -> str:
    """An HTTP_GET check of each server, half of them with the body's digest, and one of
    a port nobody listens on (in a virtual server of its own, probed every second: it
    would otherwise be most of the checks)."""
    digest = hashlib.md5(BODY).hexdigest()

    def rs(p: int, i: int) -> str:
        extra = f"                digest {digest}\n" if i % 2 else ""
        return (
            f"    real_server 127.0.0.1 {p} {{\n        HTTP_GET {{\n"
            f"            url {{\n                path /ok\n{extra}"
            f"                virtualhost h{i}.test\n            }}\n"
            f"            connect_timeout 1\n            warmup 0\n        }}\n    }}\n"
        )

    def vs(vip: str, d: float, body: str) -> str:
        return (
            f"virtual_server {vip} 80 {{\n    lvs_sched rr\n    protocol TCP\n"
            f"    delay_loop {d}\n{body}}}\n"
        )

    return vs("192.0.2.1", delay, "".join(rs(p, i) for i, p in enumerate(ports))) + vs(
        "192.0.2.2", 1, rs(refused, 0)
    )


def test_http_check_syscalls_per_probe(tmp_path: Path) -> None:
    """400 HTTP_GET checks (20 live servers, half of the urls with a digest; one refused)
    under strace -c: per check one socket, one connect, one send, the answer read in
    one or two recv, an epoll_ctl to watch the connect and one per recv awaited, one close;
    no failing epoll_ctl, no ioctl, getpid or getsockopt per check, and nothing else:
    7.5 in all (uvloop's transport, a Task and a loop timer per check cost 19 besides
    the loop's waits: 6 getpid, a failing epoll_ctl, getsockname, getpeername...)."""
    srvs = [HttpServer() for _ in range(20)]
    n = 400
    try:
        conf_text = _http_conf([s.port for s in srvs], free_port(), delay=0.02)
        done, failed, calls = _strace_checks(tmp_path, conf_text, n)
    finally:  # in parallel: each waits for its serve_forever's next poll (0.5 s)
        with ThreadPoolExecutor(len(srvs)) as pool:
            list(pool.map(HttpServer.close, srvs))
    assert done >= n and 0 < failed < done // 10  # the refused one failed, only it
    per = {k: c / done for k, (c, _e) in calls.items()}
    print(f"\nsyscalls per HTTP_GET check ({done}): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05
    ))  # fmt: skip
    assert done <= calls["socket"][0] <= done + 40, calls
    assert done <= calls["connect"][0] <= done + 40, calls
    sends = sum(calls.get(k, (0, 0))[0] for k in ("sendto", "write", "sendmsg"))
    assert sends <= done * 1.1 + 40, calls
    reads = sum(calls.get(k, (0, 0))[0] for k in ("recvfrom", "recvmsg"))
    assert reads <= done * 1.5 + 40, calls  # http.server sends header and body apart
    # one to watch the connect, then one per read awaited
    epoll_ctl, epoll_ctl_failed = calls.get("epoll_ctl", (0, 0))
    # A loaded host adds re-arms for recvs that found nothing yet (and a few failing
    # removals of probes that timed out): 10 % slack; the old code failed 1 per check.
    assert epoll_ctl <= 1.1 * (done + reads) + 40, calls["epoll_ctl"]
    assert epoll_ctl_failed < done // 10, calls["epoll_ctl"]
    for k in ("ioctl", "getpid", "getsockopt", "setsockopt", "getsockname", "getpeername"):
        assert calls.get(k, (0, 0))[0] < done // 2, (k, calls.get(k))
    # everything but the loop's waits and the timer: at most 9 per check
    loop_own = ("epoll_wait", "epoll_pwait", "timerfd_settime", "read", "clock_gettime")
    total = sum(c for k, (c, _e) in calls.items() if k not in loop_own)
    assert total <= 9 * done + 100, (total / done, calls)
