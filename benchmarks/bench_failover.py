"""Failover benchmark: VRRPv3 at 10 ms adverts, priorities 150 vs 100, measured on the wire.

    sudo .venv/bin/python benchmarks/bench_failover.py                      # 30 + 30 trials, 6,000 adverts
    sudo .venv/bin/python benchmarks/bench_failover.py --trials 3 --adverts 300   # smoke
    sudo .venv/bin/python benchmarks/bench_failover.py --json

A bridge joins two director namespaces (a: 150, b: 100) and an observer. tcpdump in the
observer timestamps every VRRP and ARP frame in the kernel on receive (the same point
for every frame, so differences are fair). Per trial the master is killed (kill -9) or
stopped (SIGTERM: it sends priority 0) while the observer sends an ARP request for the
VIP every millisecond (bounded), and the capture gives, from the master's last advert
(or its priority-0 advert):
  - the backup's first advert,
  - its first gratuitous ARP for the VIP,
  - its first ARP reply to the observer's probe (probe resolution: 1 ms).
Bounds (RFC 5798): kill -9 -> 3 * advert_int + skew_time; priority 0 -> skew_time, with
skew_time = (256 - 100) * advert_int / 256. Then the steady master's advert intervals
over --adverts adverts: mean and |interval - nominal| p50/p99.

The same run is repeated with keepalived as both nodes (--peer keepalived, default when
it is installed) and the ratios fastha / keepalived are printed. Figures are printed,
never asserted. Needs root (namespaces), tcpdump; run from the repository root.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ADVERT_INT_S = 0.01
PRIO_MASTER, PRIO_BACKUP = 150, 100
PROBE_INTERVAL_S = 0.001
PROBE_COUNT = 600  # bounded: 0.6 s of probing per trial
SETTLE_S = 0.3  # after the master is back, before the next trial


# -- observer's ARP prober (runs inside the observer namespace) -----------------------------


def probe_main(iface: str, vip: str, count: int) -> int:
    """Send ``count`` ARP requests for ``vip`` every PROBE_INTERVAL_S on an absolute
    schedule (replies are read from the capture, not here)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    with open(f"/sys/class/net/{iface}/address") as fh:
        mac = bytes.fromhex(fh.read().strip().replace(":", ""))
    sip = _first_ipv4(iface)
    frame = (
        b"\xff" * 6 + mac + b"\x08\x06"
        + bytes.fromhex("0001080006040001") + mac + socket.inet_aton(sip)
        + b"\x00" * 6 + socket.inet_aton(vip)
    ).ljust(60, b"\x00")  # fmt: skip
    print("ready", flush=True)
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i * PROBE_INTERVAL_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with contextlib.suppress(OSError):
            s.send(frame)
    return 0


def _first_ipv4(iface: str) -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()[3].split("/")[0]


# -- one implementation's run ---------------------------------------------------------------


def _capture(topo: Any, node: Any, path: Path) -> subprocess.Popen[bytes]:
    proc = topo.popen(
        node,
        "tcpdump", "-U", "--immediate-mode", "-B", "16384", "--time-stamp-precision", "nano",
        "-n", "-i", node.ifname, "-w", str(path), "ip proto 112 or arp",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    line = proc.stderr.readline().decode(errors="replace")
    if "listening" not in line:
        raise RuntimeError(f"tcpdump did not start: {line!r}")
    return proc


def _stop_capture(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_impl(impl: str, trials: int, adverts: int, workdir: Path, log: Any) -> dict[str, Any]:
    from tests.support.netns import PYTHON, Topology
    from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster

    from fastha.bench import measure

    router = Router(version=3, advert_int=ADVERT_INT_S)
    topo = Topology(workdir)
    try:
        with VrrpCluster(
            topo,
            router,
            [NodeSpec("a", impl, PRIO_MASTER), NodeSpec("b", impl, PRIO_BACKUP)],  # type: ignore[arg-type]
        ) as c:
            a, b, obs = c["a"], c["b"], c.observer
            assert obs is not None
            pcap = workdir / f"{impl}.pcap"
            cap = _capture(topo, obs, pcap)
            events: list[tuple[str, int, int]] = []  # (kind, event_ns, end_ns)
            try:
                c.start_all()
                c.wait_master(timeout=20, expect="a")
                time.sleep(SETTLE_S)
                # Steady state: the master's advert schedule.
                log(f"[{impl}] steady state: {adverts} adverts ({adverts * ADVERT_INT_S:.0f} s)")
                steady_from = time.time_ns()
                time.sleep(adverts * ADVERT_INT_S + 0.05)
                steady_to = time.time_ns()
                kinds = ["kill"] * trials + ["term"] * trials
                for i, kind in enumerate(kinds):
                    prober = topo.popen(
                        obs, PYTHON, str(Path(__file__).resolve()), "_probe", obs.ifname,
                        router.vip, str(PROBE_COUNT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    )  # fmt: skip
                    if prober.stdout.readline().strip() != b"ready":
                        raise RuntimeError(f"prober failed: {prober.stderr.read().decode()}")
                    time.sleep(0.02)  # a few probes answered by the master first
                    event_ns = time.time_ns()
                    if kind == "kill":
                        c.kill(a)
                    else:
                        c.stop(a)
                    c.wait_state(b, "MASTER", timeout=10)
                    prober.wait(timeout=30)
                    # The dead master's VIPs stay behind after kill -9 (a crashed host's
                    # would vanish with it); remove them before it comes back.
                    for vip in router.vips:
                        topo.run(
                            a.node, "ip", "addr", "del", vip, "dev", a.node.ifname, check=False
                        )
                    end_ns = time.time_ns()
                    events.append((kind, event_ns, end_ns))
                    c.start(a)
                    c.wait_master(timeout=20, expect="a")
                    time.sleep(SETTLE_S)
                    if (i + 1) % 10 == 0:
                        log(f"[{impl}] {i + 1}/{len(kinds)} trials")
            finally:
                _stop_capture(cap)
            a_ip, b_ip = a.node.ipv4, b.node.ipv4
            b_mac = b.mac
            vrid = router.vrid
    finally:
        topo.close()

    fr = measure.frames(pcap)
    steady = [f for f in fr if steady_from <= f.ts_ns <= steady_to]
    intervals = measure.advert_intervals_ms(steady, a_ip, vrid)[:adverts]
    result: dict[str, Any] = {
        "impl": impl,
        "intervals": measure.interval_figures(intervals, ADVERT_INT_S * 1000),
    }
    # A stalled master lets the backup take over: its adverts in the steady window.
    result["intervals"]["backup_adverts"] = len(measure.advert_intervals_ms(steady, b_ip, vrid))
    for kind in ("kill", "term"):
        rows = []
        for k, ev, end in events:
            if k != kind:
                continue
            window = [f for f in fr if ev - 200_000_000 <= f.ts_ns <= end]
            rows.append(
                measure.failover(
                    window,
                    master_ip=a_ip,
                    backup_ip=b_ip,
                    backup_mac=b_mac,
                    vip=router.vip,
                    vrid=vrid,
                    priority_zero=(kind == "term"),
                    event_ns=ev,
                )
            )
        result[kind] = {
            "trials": len(rows),
            "problems": [r.problem for r in rows if r.problem],
            **{
                metric: measure.summary(
                    getattr(r, f"{metric}_ms")
                    for r in rows
                    if getattr(r, f"{metric}_ms") is not None
                )
                for metric in ("advert", "garp", "reply")
            },
        }
    return result


# -- report ---------------------------------------------------------------------------------


def bounds() -> dict[str, float]:
    from fastha.bench import measure

    return {
        "kill": measure.master_down_s(PRIO_BACKUP, ADVERT_INT_S) * 1000,
        "term": measure.skew_time_s(PRIO_BACKUP, ADVERT_INT_S) * 1000,
    }


def render(results: list[dict[str, Any]]) -> str:
    bd = bounds()
    out = []
    cols = ("p50", "p99", "p99.9", "max")
    for r in results:
        out.append(
            f"== {r['impl']}: VRRPv3, advert_int {ADVERT_INT_S * 1000:g} ms, prio {PRIO_MASTER} vs {PRIO_BACKUP}"
        )
        for kind, title in (
            ("kill", "kill -9, from the last advert"),
            ("term", "SIGTERM, from the priority-0 advert"),
        ):
            f = r[kind]
            out.append(f"  {title} ({f['trials']} trials; bound {bd[kind]:.3f} ms)")
            out.append(
                "    {:<22}".format("ms")
                + "".join(f"{c:>10}" for c in cols)
                + f"{'n':>6}{'p99-bound':>11}"
            )
            for metric, label in (
                ("advert", "-> first advert"),
                ("garp", "-> first GARP"),
                ("reply", "-> first ARP reply"),
            ):
                s = f[metric]
                out.append(
                    f"    {label:<22}" + "".join(f"{s[c]:>10.3f}" for c in cols)
                    + f"{s['n']:>6}{s['p99'] - bd[kind]:>+11.3f}"
                )  # fmt: skip
            if f["problems"]:
                out.append(f"    problems: {f['problems']}")
        iv = r["intervals"]
        if iv.get("n"):
            d = iv["deviation_us"]
            out.append(
                f"  adverts: {iv['n']} intervals, mean {iv['mean_ms']:.5f} ms "
                f"({iv['mean_error_pct']:+.4f}%), per slot {iv['mean_per_slot_ms']:.5f} ms "
                f"({iv['slot_error_pct']:+.4f}%), |dev| p50 {d['p50']:.1f} us p99 {d['p99']:.1f} us "
                f"p99.9 {d['p99.9']:.1f} us max {d['max']:.1f} us, missing {iv['missing']}, "
                f"backup adverts meanwhile {iv['backup_adverts']}"
            )
    if len(results) == 2:
        fa, ka = results
        out.append(f"== ratios {fa['impl']}/{ka['impl']} (p50, p99; < 1 is better)")
        for kind in ("kill", "term"):
            for metric in ("advert", "garp", "reply"):
                x, y = fa[kind][metric], ka[kind][metric]
                out.append(
                    f"  {kind:<5}{metric:<8}"
                    + "".join(f"{c} {_ratio(x[c], y[c]):>7.3f}  " for c in ("p50", "p99"))
                )
        x, y = fa["intervals"].get("deviation_us", {}), ka["intervals"].get("deviation_us", {})
        if x and y:
            out.append(
                "  advert |dev|  "
                + "".join(f"{c} {_ratio(x[c], y[c]):>7.3f}  " for c in ("p50", "p99"))
            )
    return "\n".join(out)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def main(argv: list[str] | None = None) -> int:
    import argparse

    import orjson
    from tests.support.vrrp_peer import keepalived_binary

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=30, help="trials of each of kill -9 and SIGTERM")
    p.add_argument("--adverts", type=int, default=6000, help="adverts for the interval figures")
    p.add_argument("--peer", choices=("keepalived", "none"),
                   default="keepalived" if keepalived_binary() else "none",
                   help="also run keepalived as both nodes and print ratios")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the figures as JSON (orjson)")
    p.add_argument("--keep", action="store_true", help="keep the captures (prints the directory)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-failover-"))
    impls = ["fastha"] + (["keepalived"] if args.peer == "keepalived" else [])
    results = [run_impl(i, args.trials, args.adverts, workdir, log) for i in impls]
    doc = {"advert_int_ms": ADVERT_INT_S * 1000, "bounds_ms": bounds(), "results": results}
    if args.json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        print(render(results))
    if args.keep:
        log(f"captures kept in {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "_probe":
        raise SystemExit(probe_main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    raise SystemExit(main())
