"""SSL_GET's TLS I/O two ways: `ssl.SSLObject` over MemoryBIOs (what `probes.http` does)
against a non-blocking `ssl.SSLSocket` (OpenSSL reads and writes the socket itself), both
on the probes' Connector, same probe otherwise.

    .venv/bin/python benchmarks/bench_ssl_io.py [--checks 3000] [--concurrency 20] [--rounds 3]

One helper process (`fastha.bench.realservers --kind ssl`, uvloop, a certificate made by
`openssl` at run time) answers on loopback; this process runs ``--checks`` SSL_GETs per
round and variant, ``--concurrency`` at a time, the variants alternating round by round.
Prints this process's CPU (user + system) per check for each, the syscalls per check
(strace -c, one extra round each) and the ratio; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

import uvloop

from fastha.check.health import Outcome
from fastha.check.spec import Endpoint, HttpSpec, StatusRange, TlsSpec, UrlSpec
from fastha.probes import ProbeContext, http


class _SocketGet(http._Get):
    """The same probe with OpenSSL on the socket: wrap_socket after the connect."""

    __slots__ = ()

    def _connected(self, exc: BaseException | None, now: int) -> None:
        if exc is not None:
            self._fail(exc, now)
            return
        spec = self.spec
        assert spec.tls is not None and self.sock is not None
        self.deadline = now + int(spec.endpoint.connect_timeout * 1e9)
        try:
            ctx = self.ctx.tls_context(spec.tls)
            self.sock = ctx.wrap_socket(self.sock, do_handshake_on_connect=False)
            if self.conn is not None:  # the same fd, a new socket object
                self.conn.sock = self.sock
            self._hs(None, now)
        except Exception as e:
            self._fail(e, now)

    def _hs(self, exc: BaseException | None, now: int) -> None:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            if exc is not None:
                raise exc
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                self._wait(self._hs)
                return
            sock.send(http._request(self.spec, self.url))
            self._wait(self._rd)
        except Exception as e:
            self._fail(e, now)

    def _rd(self, exc: BaseException | None, now: int) -> None:
        sock, resp = self.sock, self.resp
        assert isinstance(sock, ssl.SSLSocket) and resp is not None
        try:
            if exc is not None:
                raise exc
            while True:
                try:
                    data = sock.recv(http.RECV_SIZE)
                except ssl.SSLWantReadError:
                    self._wait(self._rd)
                    return
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                if not data or resp.feed(data):
                    self._answer(resp.result(), now)
                    return
        except Exception as e:
            self._fail(e, now)


def _start_socket(spec, ctx, done, now_ns):  # type: ignore[no-untyped-def]
    g = _SocketGet(spec, ctx, done)
    g.open(now_ns)
    return None if g.ended else g


VARIANTS = {"memorybio": http.start, "sslsocket": _start_socket}


async def _round(start, spec: HttpSpec, checks: int, conc: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    ctx = ProbeContext()
    done_fut = asyncio.get_running_loop().create_future()
    left = checks
    failed = 0
    running = 0

    def launch() -> None:
        nonlocal left, running
        while left and running < conc:
            left -= 1
            running += 1
            start(spec, ctx, ended, time.monotonic_ns())

    def ended(outcome: Outcome, _now: int) -> None:
        nonlocal running, failed
        running -= 1
        failed += not outcome.ok
        if left:
            launch()
        elif running == 0 and not done_fut.done():
            done_fut.set_result(None)

    t0 = time.process_time()
    launch()
    await done_fut
    cpu = time.process_time() - t0
    assert ctx.connector is not None
    ctx.connector.close()
    return cpu / checks, failed


def _child(variant: str, port: int, checks: int, conc: int) -> None:
    """One round under strace: prints ready, waits for a line, runs, prints done."""
    spec = _spec(port)
    print("ready", flush=True)
    sys.stdin.readline()
    uvloop.run(_round(VARIANTS[variant], spec, checks, conc))
    print("done", flush=True)


def _spec(port: int) -> HttpSpec:
    ep = Endpoint(host=ipaddress.ip_address("127.0.0.1"), port=port, connect_timeout=3.0)
    url = UrlSpec(path="/", status=(StatusRange(lo=200, hi=200),))
    return HttpSpec(kind="SSL_GET", endpoint=ep, urls=(url,), tls=TlsSpec())


def _syscalls(variant: str, port: int, checks: int, conc: int) -> float | None:
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        argv = [sys.executable, __file__, "--child", variant, "--port", str(port)]
        argv += ["--checks", str(checks), "--concurrency", str(conc)]
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        child.stdout.readline()
        tracer = subprocess.Popen(
            [strace, "-f", "-c", "-o", report.name, "-p", str(child.pid)],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert tracer.stderr is not None
        tracer.stderr.readline()
        child.stdin.write("go\n")
        child.stdin.flush()
        child.stdout.readline()
        child.stdin.close()
        child.wait(60)
        tracer.wait(30)
        total = 0
        for line in report.read().splitlines():
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$", line)
            if m and m.group(3) not in ("total", "epoll_wait", "epoll_pwait"):
                total += int(m.group(1))
        return total / checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--port", type=int)
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.port, a.checks, a.concurrency)
        return
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = subprocess.Popen(
            [sys.executable, "-m", "fastha.bench.realservers", "--host", "127.0.0.1",
             "--base-port", str(port), "--count", "1", "--kind", "ssl",
             "--cert", cert, "--key", key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert srv.stdout is not None
            assert srv.stdout.readline().strip() == "ready"
            spec = _spec(port)
            cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for _ in range(a.rounds):
                for v, start in VARIANTS.items():
                    per, failed = uvloop.run(_round(start, spec, a.checks, a.concurrency))
                    if failed:
                        print(f"{v}: {failed} checks failed", file=sys.stderr)
                    cpu[v].append(per)
            calls = {v: _syscalls(v, port, 500, a.concurrency) for v in VARIANTS}
        finally:
            assert srv.stdin is not None
            srv.stdin.close()
            srv.wait(10)
    res = {
        v: {
            "cpu_us_per_check_median": statistics.median(cpu[v]) * 1e6,
            "cpu_us_per_check_runs": [x * 1e6 for x in cpu[v]],
            "syscalls_per_check": calls[v],
        }
        for v in VARIANTS
    }
    ratio = statistics.median(cpu["memorybio"]) / statistics.median(cpu["sslsocket"])
    if a.json:
        print(json.dumps({"results": res, "ratio_memorybio_over_sslsocket": ratio}))
        return
    for v, r in res.items():
        runs = " ".join(f"{x:.0f}" for x in r["cpu_us_per_check_runs"])  # type: ignore[attr-defined]
        sc = r["syscalls_per_check"]
        tail = f"  syscalls/check {sc:.1f}" if sc is not None else ""
        print(f"{v:10s} CPU/check median {r['cpu_us_per_check_median']:.0f} us (runs {runs}){tail}")
    print(f"memorybio / sslsocket CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()
