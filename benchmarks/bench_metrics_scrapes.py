"""Scrape floods vs advert timing (issue 15 item 7): does a flood of metrics scrapes move
the VRRP child's adverts?

A real `fastha daemon -P --metrics 127.0.0.1:PORT` runs in a network namespace as the
master of a VRRPv3 router at ADVERT_INT (50 ms). The adverts it sends are captured on
its interface (AF_PACKET, kernel timestamps) for SECONDS twice:

  idle      nobody scrapes
  scrapes   a scraper in the same namespace GETs /metrics RATE times a second (200)

and each interval's |deviation| from ADVERT_INT is summarised (p50, p99, max), with the
ratio scrapes/idle of the p99.

    sudo .venv/bin/python benchmarks/bench_metrics_scrapes.py
    sudo .venv/bin/python benchmarks/bench_metrics_scrapes.py --seconds 20 --rate 200

Prints figures and in-run ratios; never asserts timings.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ADVERT_INT = 0.05
PORT = 9651
CONF = """
vrrp_instance VI_1 {{
    state MASTER
    interface {ifname}
    virtual_router_id 51
    version 3
    priority 150
    advert_int {adv}
    virtual_ipaddress {{
        198.18.0.100/24
    }}
}}
"""


def _capture(ifname: str, seconds: float) -> list[int]:
    """Kernel timestamps (ns) of the VRRP packets leaving `ifname` for `seconds`."""
    # ETH_P_ALL: only "all" taps see the packets a host sends.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    s.settimeout(0.5)
    out: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data, anc, _flags, _addr = s.recvmsg(2048, 64)
        except TimeoutError:
            continue
        if len(data) < 34 or data[12:14] != b"\x08\x00" or data[23] != 112:
            continue
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == 35:
                sec, nsec = struct.unpack("qq", payload[:16])
                out.append(sec * 1_000_000_000 + nsec)
    return out


def _scrape_loop(rate: int, stop: threading.Event, counts: list[int]) -> None:
    period = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=2) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                while c.recv(65536):
                    pass
            counts[0] += 1
        except OSError:
            counts[1] += 1
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))


def _inside(ifname: str, seconds: float, rate: int) -> None:
    """Runs in the namespace: capture with and without scrapes; print JSON."""
    result = {}
    for phase, r in (("idle", 0), ("scrapes", rate)):
        stop, counts = threading.Event(), [0, 0]
        threads = [threading.Thread(target=_scrape_loop, args=(max(1, r // 4), stop, counts))
                   for _ in range(4 if r else 0)]  # fmt: skip
        for t in threads:
            t.start()
        stamps = _capture(ifname, seconds)
        stop.set()
        for t in threads:
            t.join()
        result[phase] = {"stamps": stamps, "scrapes": counts[0], "failed": counts[1]}
    print(json.dumps(result))


def _figures(stamps: list[int]) -> dict[str, float]:
    dev = sorted(abs((b - a) - ADVERT_INT * 1e9) / 1e3 for a, b in itertools.pairwise(stamps))
    if not dev:
        return {"n": 0, "p50_us": 0, "p99_us": 0, "max_us": 0}
    pick = lambda q: dev[min(len(dev) - 1, int(q * len(dev)))]  # noqa: E731
    return {"n": len(dev), "p50_us": pick(0.5), "p99_us": pick(0.99), "max_us": dev[-1]}


@click.command()
@click.option("--seconds", default=10.0, show_default=True, help="per phase")
@click.option("--rate", default=200, show_default=True, help="scrapes per second")
@click.option("--json", "as_json", is_flag=True)
def main(seconds: float, rate: int, as_json: bool) -> None:
    from tests.support.netns import Topology

    fastha = REPO / ".venv" / "bin" / "fastha"
    with (
        tempfile.TemporaryDirectory(prefix="fastha-bench-scrape-") as tmp,
        Topology(Path(tmp)) as topo,
    ):
        node = topo.node("a", ipv4="198.18.0.11/24")
        topo.run(node, "ip", "link", "set", "lo", "up")
        conf = Path(tmp) / "keepalived.conf"
        conf.write_text(CONF.format(ifname=node.ifname, adv=ADVERT_INT))
        d = topo.popen(node, str(fastha), "daemon", "-P", "-n", "-G", "-f", str(conf),
                       "-p", f"{tmp}/p.pid", "-r", f"{tmp}/v.pid", "-c", f"{tmp}/c.pid",
                       "--control-socket", f"{tmp}/ctl.sock", "--metrics", f"127.0.0.1:{PORT}",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(3)  # master after one advert interval + skew; let it settle
        out = topo.run(node, sys.executable, __file__, "--inside", node.ifname,
                       str(seconds), str(rate), timeout=seconds * 2 + 60)  # fmt: skip
        d.terminate()
        d.wait(10)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    res = {p: {**_figures(v["stamps"]), "scrapes": v["scrapes"], "failed": v["failed"]}
           for p, v in raw.items()}  # fmt: skip
    idle, busy = res["idle"]["p99_us"], res["scrapes"]["p99_us"]
    res["ratio_p99"] = busy / idle if idle else float("nan")
    if as_json:
        print(json.dumps(res))
        return
    print(f"adverts every {ADVERT_INT * 1000:.0f} ms, {seconds:g} s per phase, "
          f"scraper target {rate}/s")  # fmt: skip
    for p in ("idle", "scrapes"):
        r = res[p]
        print(f"  {p:8s} n={r['n']:5d} |dev| p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f} us"
              f"  max {r['max_us']:8.1f} us  scrapes {r['scrapes'] / seconds:6.1f}/s"
              f" (failed {r['failed']})")  # fmt: skip
    print(f"  ratio p99 scrapes/idle: {res['ratio_p99']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--inside":
        _inside(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        main()
