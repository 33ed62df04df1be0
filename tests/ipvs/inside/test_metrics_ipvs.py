"""Metrics of the checker child and the kernel's IPVS counters, inside UML (a real ip_vs):
`fastha daemon -n -l --metrics` with a virtual server whose real server listens on
loopback. Every dashboard series the system test leaves to this suite
(tests/system/test_metrics_live.py CHECKER_ONLY) is in a live scrape, and the IPVS
counters equal the kernel's own (`ipvsadm -Ln --stats --exact`) after real connections
through the virtual server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ipvs.inside.conftest import ipvsadm
from tests.ipvs.inside.test_checker_reload import Counting
from tests.system.test_metrics_live import CHECKER_ONLY, dashboard_series

ROOT = Path(__file__).resolve().parents[3]
PORT = 9652
CONF = """
virtual_server 10.30.9.1 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.79.1 8001 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
"""


def scrape() -> str:
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def until(pred, what: str, log: Path, guard: float = 45.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + guard
    while not (value := pred()):
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return value


def test_checker_and_ipvs_series(tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "replace", "198.18.79.1/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "addr", "replace", "10.30.9.1/32", "dev", "lo"], check=True)
    ipvsadm("-C")
    server = Counting("198.18.79.1", 8001)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    log = tmp_path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastha.cli.main", "daemon", "-n", "-l", "-f", str(conf),
             "-p", str(tmp_path / "p.pid"), "-r", str(tmp_path / "v.pid"),
             "-c", str(tmp_path / "c.pid"), "--control-socket", str(tmp_path / "ctl.sock"),
             "--metrics", f"127.0.0.1:{PORT}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        until(lambda: "198.18.79.1:8001" in ipvsadm("-Ln"), "the real server in IPVS", log)

        def scraped() -> dict[str, list[tuple[dict[str, str], float]]] | None:
            try:
                got = samples(scrape())
            except OSError:
                return None
            up = got.get("fastha_real_server_up") or []
            probes = dict((lb["result"], v) for lb, v in got.get("fastha_checker_probes_total", ()))
            return got if up and up[0][1] == 1 and probes.get("success", 0) >= 1 else None

        got = until(scraped, "a scrape after a successful probe", log)
        wanted = {n for n in dashboard_series() if CHECKER_ONLY.match(n)}
        assert len(wanted) > 10, wanted
        missing = sorted(n for n in wanted if n not in got and f"{n}_bucket" not in got)
        assert not missing, f"absent from a live scrape: {missing}; have {sorted(got)}"
        [(labels, _)] = got["fastha_lvs_rs_conn_total"]
        assert labels == {
            "virtual_server": "[10.30.9.1]:tcp:80",
            "real_server": "[198.18.79.1]:8001",
        }

        # Connections through the virtual server from this host (IPVS's LOCAL_OUT hook).
        made = 0
        for _ in range(3):
            try:
                with socket.create_connection(("10.30.9.1", 80), timeout=2):
                    made += 1
            except OSError:
                pass
        print(f"connections through the virtual server: {made}")
        # The counters are the kernel's, refreshed by its estimator every 2 s: the page
        # (cached for a second) and ipvsadm agree once both have read the same refresh.
        last: list[object] = []

        def agree() -> bool:
            page = samples(scrape())
            stats = ipvsadm("-Ln", "--stats", "--exact")
            m = re.search(r"TCP\s+10\.30\.9\.1:80\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", stats)
            assert m, stats
            kernel = dict(zip(("conn", "in_packets", "out_packets", "in_bytes", "out_bytes"),
                              (int(x) for x in m.groups()), strict=True))  # fmt: skip  # as the regex's groups
            vip = {k: page[f"fastha_lvs_vip_{k}_total"][0][1] for k in kernel}
            last[:] = [vip, stats]
            return made > 0 and kernel["conn"] >= made and vip == kernel

        deadline = time.monotonic() + 15
        while not agree():
            assert time.monotonic() < deadline, f"page VIP counters never ipvsadm's: {last}"
            time.sleep(0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.close()
        ipvsadm("-C")
