"""Reload cost: SIGHUP to "reload done" for 255 VRRP instances + 100 virtual servers,
fastha's daemon and keepalived on the same file, one after the other in the same UML guest
(it needs a real ip_vs).

    .venv/bin/python benchmarks/bench_reload.py [--virtual-servers 100] [--real-servers 10]
        [--hups 10] [--json]

The file is tests/support/genconf.py's: 255 vrrp_instances (two VIPs each) alone on a veth,
so every instance becomes MASTER, and virtual servers whose real servers (TCP_CHECK and
HTTP_GET) all answer: 172.20.0.0/16 is routed to `lo` (AnyIP) where one HTTP server
listens on port 8080. Once every instance is MASTER and the IPVS table is full, each
daemon gets --hups SIGHUPs a second apart, alternating the running file unchanged and
one with VI_1's priority moved (51 -> 52, then back). Per HUP:

  - reload time: from the signal to the last "done" log line, read from the daemon's own
    console through a pipe and timestamped on arrival (fastha: both children's "Reload
    finished"; keepalived: "Reload complete" from both children);
  - VIP flaps: `ip monitor address` events naming any VIP (0 expected for both);
  - IPVS: `ipvsadm -Sn` before and after (identical expected), "before" taken once the
    table has held still for two delay_loops; real servers a failed check removed during
    start-up are counted apart (a UML guest starves the checkers while 255 instances
    come up).

Figures from a UML guest: compare the two daemons with each other, not with other
machines. Prints figures and ratios; never asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.genconf import big_config  # noqa: E402

INSTANCES = 255
IFACE = "fhd0"
HANG_GUARD = 120.0
# One HTTP/1.0 server for every real server (they are all AnyIP addresses on lo).
DELAY_LOOP_S = 5  # tests/support/genconf.py's virtual servers
HTTP_SERVER = """
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(4096)
        self.request.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024
S(("0.0.0.0", 8080), H).serve_forever()
"""


@dataclass
class Console:
    """A daemon's console through a pipe, every line timestamped as it arrives."""

    proc: subprocess.Popen[bytes]
    lines: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            now = time.monotonic()
            with self.lock:
                self.lines.append((now, raw.decode(errors="replace").rstrip("\n")))

    def count(self, marker: str) -> int:
        with self.lock:
            return sum(marker in ln for _, ln in self.lines)

    def nth_time(self, marker: str, n: int) -> float:
        """When the n-th (1-based) line containing `marker` arrived."""
        with self.lock:
            hits = [t for t, ln in self.lines if marker in ln]
        return hits[n - 1]

    def between(self, t0: float, t1: float) -> list[str]:
        """The lines that arrived in [t0, t1], each with its offset from t0."""
        with self.lock:
            return [f"+{(t - t0) * 1e3:7.1f} ms {ln}" for t, ln in self.lines if t0 <= t <= t1]

    def text(self) -> str:
        with self.lock:
            return "\n".join(ln for _, ln in self.lines[-60:])


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: Callable[[Path, Path], list[str]]  # (config, scratch dir) -> command line
    master_line: str  # one per instance entering MASTER
    done: dict[str, int]  # a reload is applied once each line has come this many more times


def fastha_argv(conf: Path, tmp: Path) -> list[str]:
    pids = ["-p", str(tmp / "p.pid"), "-r", str(tmp / "r.pid"), "-c", str(tmp / "c.pid")]
    return [sys.executable, "-m", "fastha.cli.main", "daemon", "-n", "-l", "-f", str(conf),
            *pids, "--control-socket", str(tmp / "control.sock")]  # fmt: skip


def keepalived_argv(conf: Path, tmp: Path) -> list[str]:
    pids = ["-p", str(tmp / "p.pid"), "-r", str(tmp / "r.pid"), "-c", str(tmp / "c.pid")]
    return ["keepalived", "-n", "-l", "-f", str(conf), *pids]


DAEMONS = (
    # fastha: one "Reload finished" from each child.
    Daemon("fastha", fastha_argv, "Entering MASTER STATE", {"Reload finished": 2}),
    # keepalived: the VRRP child's last reload line, and the checker child's (the end of
    # register_checkers_thread(), after its IPVS work).
    Daemon(
        "keepalived",
        keepalived_argv,
        "Entering MASTER STATE",
        {"Reload complete": 1, "Activating BFD healthchecker": 1},
    ),
)


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


def until(pred: Callable[[], Any], what: str, con: Console | None = None) -> Any:
    """Poll for an edge (a hang guard, not a timing)."""
    deadline = time.monotonic() + HANG_GUARD
    while not (value := pred()):
        if time.monotonic() > deadline:
            raise SystemExit(f"never: {what}\n{con.text() if con else ''}")
        time.sleep(0.02)
    return value


def vips() -> set[str]:
    out = json.loads(sh("ip", "-j", "addr", "show", "dev", IFACE))
    return {a["local"] for i in out for a in i.get("addr_info", ())
            if a.get("family") == "inet" and a["local"].startswith("10.")}  # fmt: skip


def ipvs_table() -> list[str]:
    return sorted(sh("ipvsadm", "-Sn").splitlines())


def expected_vips() -> set[str]:
    return {f"10.{100 + v // 250}.{v % 250}.{h}" for v in range(1, INSTANCES + 1) for h in (1, 2)}


def run_daemon(d: Daemon, files: list[Path], hups: int, entries: int, tmp: Path) -> dict[str, Any]:
    sh("ipvsadm", "-C")
    proc = subprocess.Popen(d.argv(files[0], tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    con = Console(proc)
    monitor = None
    try:
        until(lambda: con.count(d.master_line) >= INSTANCES, f"{d.name}: all MASTER", con)
        until(lambda: vips() == expected_vips(), f"{d.name}: every VIP", con)
        until(lambda: len(ipvs_table()) == entries, f"{d.name}: the full IPVS table", con)
        # Let the first GARP round (and keepalived's garp_master_delay repeat) pass, and
        # the health checks settle: the table must hold still for two delay_loops, or
        # a start-up health flap recovering during the HUPs reads as the reload's doing.
        time.sleep(6)
        settled = ipvs_table()
        for _ in range(12):
            time.sleep(2 * DELAY_LOOP_S)
            now = ipvs_table()
            if now == settled:
                break
            settled = now
        startup_flaps = con.count("Removing service")
        mon_path = tmp / f"monitor-{d.name}.log"
        with mon_path.open("w") as mon_out:
            monitor = subprocess.Popen(["ip", "-o", "monitor", "address", "dev", IFACE],
                                       stdout=mon_out, stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(0.5)  # ip monitor subscribes asynchronously
        before = ipvs_table()
        times: dict[str, list[float]] = {"unchanged": [], "priority": []}
        trace: list[str] = []
        running = files[1].read_text()
        for k in range(hups):
            # Even HUPs: the running file again; odd ones: VI_1's priority moved (51 <-> 52).
            kind = "unchanged" if k % 2 == 0 else "priority"
            if kind == "priority":
                running = files[2 if running == files[1].read_text() else 1].read_text()
            files[0].write_text(running)
            want = {line: con.count(line) + more for line, more in d.done.items()}
            t0 = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            until(lambda want=want: all(con.count(ln) >= n for ln, n in want.items()),
                  f"{d.name}: reload {k + 1} done", con)  # fmt: skip
            t1 = max(con.nth_time(ln, n) for ln, n in want.items())
            times[kind].append(t1 - t0)
            trace = con.between(t0, t1)
            time.sleep(1.0)
        after = ipvs_table()
        monitor.terminate()
        monitor.wait()
        events = [ln for ln in mon_path.read_text().splitlines() if " 10." in ln]
        masters = con.count(d.master_line)
        proc.send_signal(signal.SIGTERM)
        proc.wait(HANG_GUARD)
        return {
            "reload_s": times,
            "vip_flap_events": len(events),
            "vip_flap_sample": events[:5],
            "ipvs_unchanged": before == after,
            "startup_health_flaps": startup_flaps,
            # What moved, and the checker's health edges that would explain it.
            "ipvs_only_before": sorted(set(before) - set(after))[:4],
            "ipvs_only_after": sorted(set(after) - set(before))[:4],
            "health_edges": [
                ln
                for _, ln in con.lines
                if re.search(r"(?i)removing service| failed \(|Reload", ln)
            ][:40],
            "last_reload_trace": trace[:200],
            "ipvs_entries": len(after),
            "extra_master_transitions": masters - INSTANCES,
        }
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sh("ipvsadm", "-C", check=False)


def guest(args: argparse.Namespace) -> dict[str, Any]:
    from tests.ipvs import kmod

    kmod.load(["veth"])
    sh("ip", "link", "add", IFACE, "type", "veth", "peer", "name", "fhd1")
    sh("ip", "addr", "add", "198.18.71.1/24", "dev", IFACE)
    sh("ip", "link", "set", IFACE, "up")
    sh("ip", "link", "set", "fhd1", "up")
    sh("ip", "route", "add", "local", "172.20.0.0/16", "dev", "lo")
    server = subprocess.Popen([sys.executable, "-c", HTTP_SERVER])
    text = big_config(INSTANCES, args.virtual_servers, args.real_servers, IFACE)
    changed = text.replace("    priority 51\n", "    priority 52\n", 1)
    assert changed != text
    entries = args.virtual_servers * (1 + args.real_servers)
    out: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="fastha-bench-reload-") as td:
            tmp = Path(td)
            files = [tmp / "keepalived.conf", tmp / "same.conf", tmp / "changed.conf"]
            files[1].write_text(text)
            files[2].write_text(changed)
            for d in DAEMONS:
                files[0].write_text(text)
                run_dir = tmp / d.name
                run_dir.mkdir()
                out[d.name] = run_daemon(d, files, args.hups, entries, run_dir)
    finally:
        server.kill()
    out["config"] = {"lines": text.count("\n"), "instances": INSTANCES,
                     "virtual_servers": args.virtual_servers,
                     "real_servers_per_vs": args.real_servers,
                     "keepalived": subprocess.run(["keepalived", "--version"], text=True,
                                                  capture_output=True).stderr}  # fmt: skip
    return out


def summary(times: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(times) * 1e3, "max_ms": max(times) * 1e3,
            "n": len(times)}  # fmt: skip


def report(res: dict[str, Any], as_json: bool, trace: bool) -> None:
    for name in ("fastha", "keepalived"):
        r = res[name]
        r["summary"] = {k: summary(v) for k, v in r["reload_s"].items() if v}
    ratios = {k: res["keepalived"]["summary"][k]["median_ms"] / res["fastha"]["summary"][k]
              ["median_ms"] for k in res["fastha"]["summary"]}  # fmt: skip
    res["ratio_keepalived_over_fastha"] = ratios
    if as_json:
        print(json.dumps(res, indent=2))
        return
    c = res["config"]
    print(f"reload cost in UML: {c['instances']} vrrp_instances (all MASTER, "
          f"{2 * c['instances']} VIPs), {c['virtual_servers']} virtual servers x "
          f"{c['real_servers_per_vs']} real servers ({c['lines']} lines)")  # fmt: skip
    print(f"{'':12}{'file':11}{'median':>10}{'max':>10}{'HUPs':>6}{'VIP flaps':>11}"
          f"{'IPVS same':>11}{'re-elect':>10}")  # fmt: skip
    for name in ("fastha", "keepalived"):
        r = res[name]
        for kind, s in r["summary"].items():
            print(f"{name:12}{kind:11}{s['median_ms']:8.1f}ms{s['max_ms']:8.1f}ms{s['n']:6d}"
                  f"{r['vip_flap_events']:11d}{r['ipvs_unchanged']!s:>11}"
                  f"{r['extra_master_transitions']:10d}")  # fmt: skip
    for kind, ratio in ratios.items():
        print(f"ratio keepalived / fastha, {kind} file: {ratio:.2f}x")
    for name in ("fastha", "keepalived"):
        r = res[name]
        print(f"{name}: real servers removed by a failed check before the first HUP "
              f"(start-up): {r['startup_health_flaps']}")  # fmt: skip
        if not r["ipvs_unchanged"]:
            print(f"{name}: ipvsadm -Sn only before the HUPs: {r.get('ipvs_only_before')}")
            print(f"{name}: ipvsadm -Sn only after the HUPs: {r.get('ipvs_only_after')}")
            print(f"{name}: health edges logged meanwhile: {r.get('health_edges')}")
    if trace:
        for name in ("fastha", "keepalived"):
            print(f"{name}'s last reload, line by line:")
            print("\n".join("  " + ln for ln in res[name]["last_reload_trace"]))
    print(f"keepalived: {c['keepalived'].splitlines()[0] if c['keepalived'] else '?'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--virtual-servers", type=int, default=100)
    ap.add_argument("--real-servers", type=int, default=10)
    ap.add_argument("--hups", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trace", action="store_true", help="print each daemon's last reload")
    ap.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.guest:
        print(json.dumps(guest(a)))
        return
    from tests.ipvs import uml

    r = uml.run(
        f".venv/bin/python benchmarks/bench_reload.py --guest --virtual-servers "
        f"{a.virtual_servers} --real-servers {a.real_servers} --hups {a.hups}",
        timeout=1800, mem="1536M",
    )  # fmt: skip
    if r.rc != 0:
        sys.exit(f"guest failed (rc {r.rc}):\n{r.out[-4000:]}")
    report(json.loads(r.out.strip().splitlines()[-1]), a.json, a.trace)


if __name__ == "__main__":
    main()
