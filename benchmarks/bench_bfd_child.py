"""The BFD child's CPU per 1,000 packets (sent + received) against keepalived 2.2.7's BFD
process in the same run: N sessions at 10 ms x 3 between two namespaces, fastha's
daemon on one side, keepalived on the other, so both children handle the same packets.

CPU is read from /proc/PID/stat (utime + stime, clock ticks) over the run; packets from
fastha's `status`. "downs" counts the "Entering Down" lines each side logged during
the run (false Downs: nothing is cut; a busy host shows them). Never asserts.
`fastha bench bfd` (bench/bfd.py) is the full benchmark; this is the process model's
figure (the issue's "choose, measure, and say why").

    .venv/bin/python benchmarks/bench_bfd_child.py [--sessions 10] [--seconds 15] [--rt 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from fastha.bench.daemons import keepalived_binary
from fastha.bench.topology import Topology
from fastha.runtime.control import ControlError, request_sync

HZ = os.sysconf("SC_CLK_TCK")


def conf(n: int, me: int, peer: int, rt: int | None) -> str:
    knob = f"  bfd_rt_priority {rt}\n" if rt else ""
    out = [f"global_defs {{\n  router_id bench\n{knob}}}\n"]
    for i in range(n):
        out.append(
            f"bfd_instance S{i} {{\n  neighbor_ip 198.18.41.{peer + i}\n"
            f"  source_ip 198.18.41.{me + i}\n  min_rx 10\n  min_tx 10\n  multiplier 3\n}}\n"
        )
    return "".join(out)


def ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument(
        "--rt", type=int, default=None, help="bfd_rt_priority for both sides (SCHED_RR)"
    )
    args = ap.parse_args()
    n = args.sessions
    exe = keepalived_binary()
    if exe is None:
        print("keepalived is not installed", file=sys.stderr)
        return 1
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-bfd-{os.getpid()}"
    tmp.mkdir(parents=True)
    topo = Topology(f"bb{os.getpid() % 1000}", nodad=True).build()
    try:
        a = topo.node("a", ipv4=[f"198.18.41.{1 + i}/24" for i in range(n)])
        b = topo.node("b", ipv4=[f"198.18.41.{101 + i}/24" for i in range(n)])
        (tmp / "a.conf").write_text(conf(n, 1, 101, args.rt))
        (tmp / "b.conf").write_text(conf(n, 101, 1, args.rt))
        control = str(tmp / "a" / "control.sock")
        with open(tmp / "a.log", "w") as la, open(tmp / "b.log", "w") as lb:
            topo.popen(
                a, sys.executable, "-I", "-m", "fastha.cli.main", "daemon", "-n", "-l",
                "-f", str(tmp / "a.conf"), "-p", str(tmp / "a.pid"),
                "-b", str(tmp / "a-bfd.pid"), "--control-socket", control,
                stdout=la, stderr=la,
            )  # fmt: skip
            topo.popen(
                b, exe, "-n", "-l", "-f", str(tmp / "b.conf"), "-p", str(tmp / "b.pid"),
                "-r", str(tmp / "b-vrrp.pid"), "-c", str(tmp / "b-check.pid"),
                "-b", str(tmp / "b-bfd.pid"), stdout=lb, stderr=lb,
            )  # fmt: skip

        def status() -> dict[str, object] | None:
            try:
                bfd = request_sync(control, "status")["bfd"]
            except (ControlError, KeyError, TypeError):
                return None
            return bfd if isinstance(bfd, dict) and "sessions" in bfd else None

        deadline = time.monotonic() + 30
        while True:
            s = status()
            sessions = s["sessions"] if s else []
            if len(sessions) == n and all(x["state"] == "Up" for x in sessions):  # type: ignore[union-attr, index]
                break
            if time.monotonic() > deadline:
                print(f"sessions not Up: {s}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        time.sleep(2)
        apid = int((tmp / "a-bfd.pid").read_text())
        bpid = int((tmp / "b-bfd.pid").read_text())

        def packets() -> int:
            st = status() or {}
            return sum(x["sent"] + x["received"] for x in st.get("sessions", ()))  # type: ignore[attr-defined]

        def downs(log: str) -> int:
            return (tmp / log).read_text(errors="replace").count("Entering Down")

        p0, a0, b0, t0 = packets(), ticks(apid), ticks(bpid), time.monotonic()
        d0 = (downs("a.log"), downs("b.log"))
        time.sleep(args.seconds)
        p1, a1, b1, t1 = packets(), ticks(apid), ticks(bpid), time.monotonic()
        pk = p1 - p0
        fa = (a1 - a0) / HZ * 1e3 / pk * 1000  # ms of CPU per 1,000 packets
        fb = (b1 - b0) / HZ * 1e3 / pk * 1000
        print(
            json.dumps(
                {
                    "sessions": n,
                    "bfd_rt_priority": args.rt,
                    "seconds": round(t1 - t0, 1),
                    "packets": pk,
                    "results": {
                        "fastha": {
                            "cpu_ms_per_1000_packets": round(fa, 2),
                            "cpu_percent": round((a1 - a0) / HZ / (t1 - t0) * 100, 1),
                            "downs": downs("a.log") - d0[0],
                        },
                        "keepalived": {
                            "cpu_ms_per_1000_packets": round(fb, 2),
                            "cpu_percent": round((b1 - b0) / HZ / (t1 - t0) * 100, 1),
                            "downs": downs("b.log") - d0[1],
                        },
                    },
                    "ratios": {"cpu_fastha_over_keepalived": round(fa / fb, 2) if fb else None},
                },
                indent=1,
            )
        )
        return 0
    finally:
        topo.close()


if __name__ == "__main__":
    sys.exit(main())
