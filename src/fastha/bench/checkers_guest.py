"""The part of ``fastha bench checkers`` that runs inside the UML guest (ip_vs).

    python -m fastha.bench.checkers_guest --servers N --kind tcp --delay-loop 1
        --seconds 30 --impls fastha,keepalived

Starts N real servers (``fastha.bench.realservers``, one process), writes one
keepalived.conf checking each of them (TCP_CHECK, HTTP_GET or SSL_GET; 100 real servers
per virtual server), then runs it with ``fastha daemon -C`` and ``keepalived -C``, one
after the other. Each runs until every real server was probed once (the start-up and
the first IPVS programming are not measured), then for two more delay_loops, then the
window of ``--seconds``: CPU in ns of the daemon's whole process tree (``cpu.cpu_ns``),
TCP ActiveOpens of the guest's kernel (/proc/net/snmp: one per probe, whoever counts),
the servers' accepts and gaps, RSS at the end. Then, still at full load, ``--failures``
real servers stop listening one at a time: the time until each leaves the IPVS table,
and comes back once it listens again. Prints one JSON line: impl -> figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from fastha.bench import cpu, measure
from fastha.bench.realservers import raise_nofile

RS_HOST = "198.18.0.1"
BASE_PORT = 20000
VS_NET = "198.19.{}.{}"  # virtual servers: never routed, only programmed into IPVS
PER_VS = 100
CONNECT_TIMEOUT = 3
PROBES = {
    "tcp": "TCP_CHECK {{\n{common}        }}",
    "http": "HTTP_GET {{\n            url {{\n                path /\n"
    "                status_code 200\n            }}\n{common}        }}",
    "ssl": "SSL_GET {{\n            url {{\n                path /\n"
    "                status_code 200\n            }}\n{common}        }}",
}


def keepalived_conf(servers: int, kind: str, delay_loop: float) -> str:
    common = f"            connect_timeout {CONNECT_TIMEOUT}\n            retry 0\n"
    probe = PROBES[kind].format(common=common)
    out = []
    for v in range(0, servers, PER_VS):
        n = v // PER_VS
        out.append(
            f"virtual_server {VS_NET.format(n // 250, n % 250 + 1)} 80 {{\n"
            f"    delay_loop {delay_loop:g}\n    lvs_sched rr\n    lvs_method NAT\n"
            "    protocol TCP\n"
        )
        for i in range(v, min(servers, v + PER_VS)):
            out.append(
                f"    real_server {RS_HOST} {BASE_PORT + i} {{\n        weight 1\n"
                f"        {probe}\n    }}\n"
            )
        out.append("}\n")
    return "".join(out)


def active_opens() -> int:
    """TCP ActiveOpens of this kernel: connect()s started, by any process."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    for head, vals in itertools.pairwise(lines):
        if head[0] == "Tcp:" and vals[0] == "Tcp:" and "ActiveOpens" in head:
            return int(vals[head.index("ActiveOpens")])
    raise RuntimeError("/proc/net/snmp: no Tcp ActiveOpens")


def cpu_busy_idle() -> tuple[int, int]:
    """The guest's busy and idle clock ticks (/proc/stat's cpu line): whether its one
    CPU had room left while the daemon ran."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return sum(f[:8]) - idle, idle


class Servers:
    def __init__(self, servers: int, kind: str, delay_loop: float, tmp: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "fastha.bench.realservers",
            "--host",
            RS_HOST,
            "--base-port",
            str(BASE_PORT),
            "--count",
            str(servers),
            "--kind",
            kind,
            "--delay-loop",
            str(delay_loop),
        ]
        if kind == "ssl":
            cert, key = tmp / "cert.pem", tmp / "key.pem"
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=fastha-bench",
                    "-keyout",
                    str(key),
                    "-out",
                    str(cert),
                ],
                check=True,
                capture_output=True,
            )
            argv += ["--cert", str(cert), "--key", str(key)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._line() != "ready":
            raise RuntimeError("the real servers did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the real servers exited (rc {self.proc.wait()})")
        return line.strip()

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        doc: dict[str, Any] = json.loads(self._line())
        return doc

    def stats(self) -> dict[str, Any]:
        return self.ask("stats")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def daemon_argv(impl: str, conf: Path, tmp: Path) -> list[str]:
    pids = ["-p", str(tmp / "p.pid"), "-r", str(tmp / "v.pid"), "-c", str(tmp / "c.pid")]
    if impl == "keepalived":
        exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
        return [exe, "-C", "-n", "-l", "-f", str(conf), *pids]
    return [
        sys.executable,
        "-m",
        "fastha.cli.main",
        "daemon",
        "-C",
        "-n",
        "-l",
        "-f",
        str(conf),
        *pids,
        "--control-socket",
        str(tmp / "ctl.sock"),
    ]


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            for p in cpu.tree(proc.pid):
                os.kill(p, signal.SIGKILL)
            proc.wait()


def vs_of(i: int) -> str:
    n = i // PER_VS
    return f"{VS_NET.format(n // 250, n % 250 + 1)}:80"


def in_ipvs(i: int) -> bool:
    out = subprocess.run(
        ["ipvsadm", "-Ln", "-t", vs_of(i)], capture_output=True, text=True, check=True
    ).stdout
    return f"{RS_HOST}:{BASE_PORT + i} " in out


def failures(servers: Servers, n: int, count: int, limit: float) -> dict[str, Any]:
    """Take ``count`` real servers down one at a time, while the daemon runs at full load:
    ms from the listener closed to the real server gone from IPVS (ipvsadm polled), and
    back once it listens again. Includes the wait for its next probe (up to delay_loop)."""
    out: list[float] = []
    back: list[float] = []
    polls = missed = 0
    for k in range(count):
        i = k * n // count
        t_down = servers.ask(f"down {i}")["t_ns"]
        deadline = time.monotonic() + limit
        while (there := in_ipvs(i)) and time.monotonic() < deadline:
            polls += 1
            time.sleep(0.002)  # leave the guest's one CPU to the daemon between polls
        out.append((time.monotonic_ns() - t_down) / 1e6)
        missed += there
        t_up = servers.ask(f"up {i}")["t_ns"]
        deadline = time.monotonic() + limit
        while not (there := in_ipvs(i)) and time.monotonic() < deadline:
            polls += 1
            time.sleep(0.002)
        back.append((time.monotonic_ns() - t_up) / 1e6)
        missed += not there
    return {"out_ms": out, "back_ms": back, "polls": polls, "missed": missed}


def one(
    impl: str, servers: Servers, a: argparse.Namespace, conf: Path, tmp: Path, log: IO[str]
) -> dict[str, Any]:
    subprocess.run(["ipvsadm", "-C"], check=True)
    base = servers.stats()["accepts"]
    with open(tmp / f"{impl}.log", "w") as out:
        proc = subprocess.Popen(daemon_argv(impl, conf, tmp), stdout=out, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        deadline = started + 120 + a.servers / 50
        while servers.stats()["accepts"] - base < a.servers:  # every real server probed
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (tmp / f"{impl}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{impl}: not every real server probed\n{tail}")
            time.sleep(0.2)
        first_round_s = time.monotonic() - started
        time.sleep(2 * a.delay_loop)
        pids = cpu.tree(proc.pid)
        servers.stats()  # drop the warm-up's gaps
        s0, o0, c0 = servers.stats()["accepts"], active_opens(), cpu.cpu_ns(pids)
        b0, i0 = cpu_busy_idle()
        m0 = time.monotonic()
        time.sleep(a.seconds)
        c1, o1, m1 = cpu.cpu_ns(pids), active_opens(), time.monotonic()
        b1, i1 = cpu_busy_idle()
        st = servers.stats()
        rss = {p: cpu.rss_kib(p) for p in pids}
        ipvs_dests = subprocess.run(
            ["ipvsadm", "-Ln"], capture_output=True, text=True, check=True
        ).stdout.count("-> " + RS_HOST)
        fail = failures(
            servers,
            a.servers,
            min(a.failures, a.servers),
            limit=CONNECT_TIMEOUT + 3 * a.delay_loop + 10,
        )
    finally:
        stop(proc)
    wall = m1 - m0
    checks = o1 - o0
    cpu_ms = (c1 - c0) / 1e6
    print(f"{impl}: {checks} checks in {wall:.1f} s", file=log, flush=True)
    return {
        "impl": impl,
        "seconds": wall,
        "processes": len(pids),
        "first_round_s": first_round_s,
        "checks": checks,
        "accepts": st["accepts"] - s0,
        "checks_due": round(a.servers * wall / a.delay_loop),
        "checks_per_s": checks / wall,
        "checks_due_per_s": a.servers / a.delay_loop,
        "cpu_ms": cpu_ms,
        "cpu_pct": cpu_ms / 10 / wall,
        "cpu_ms_per_1000_checks": cpu_ms / checks * 1000 if checks else float("nan"),
        "guest_busy_pct": 100 * (b1 - b0) / max(1, b1 - b0 + i1 - i0),
        "rss_kib": sum(rss.values()),
        "rss_kib_per_process": list(rss.values()),
        "ipvs_dests": ipvs_dests,
        "gap_excess_ms": measure.summary(st["excess_ms"]),
        "gap_excess_samples_ms": st["excess_ms"],
        "rs_down_to_ipvs_ms": measure.summary(fail["out_ms"]),
        "rs_up_to_ipvs_ms": measure.summary(fail["back_ms"]),
        "rs_down_to_ipvs_samples_ms": fail["out_ms"],
        "rs_failures": len(fail["out_ms"]),
        "rs_failures_missed": fail["missed"],  # not out of IPVS, or not back, in time
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, required=True)
    ap.add_argument("--kind", choices=tuple(PROBES), default="tcp")
    ap.add_argument("--delay-loop", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--impls", default="fastha,keepalived")
    ap.add_argument("--failures", type=int, default=5)
    a = ap.parse_args(argv)
    raise_nofile()  # inherited by the servers and the daemons
    subprocess.run(["ip", "addr", "replace", f"{RS_HOST}/32", "dev", "lo"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="fastha-bench-checkers-"))
    conf = tmp / "keepalived.conf"
    conf.write_text(keepalived_conf(a.servers, a.kind, a.delay_loop))
    servers = Servers(a.servers, a.kind, a.delay_loop, tmp)
    results: dict[str, Any] = {}
    try:
        for impl in a.impls.split(","):
            results[impl] = one(impl, servers, a, conf, tmp, sys.stderr)
    finally:
        servers.close()
        subprocess.run(["ipvsadm", "-C"], check=False)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
