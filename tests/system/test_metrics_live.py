"""The metrics endpoint of a real daemon (VRRP child, a track script) in a namespace:

- every series the Grafana dashboard (contrib/grafana/fastha-dashboard.json) queries is
  in a live scrape, except the checker/IPVS ones, which need ip_vs (tests/ipvs); the BFD
  ones come from a session to a neighbour that never answers (Down);
- a flood of idle and never-reading connections (issue 15 item 7) leaves the endpoint
  answering a normal scraper, and the daemon running as master with its VIP.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.netns import PYTHON, Node, Topology
from tests.support.vrrp_peer import fastha_binary

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "contrib" / "grafana" / "fastha-dashboard.json"
PORT = 9650
VIP = "198.18.0.100"
# Series that exist only with a checker child on a kernel with ip_vs (tests/ipvs).
CHECKER_ONLY = re.compile(
    r"^(fastha_lvs_|fastha_real_server_|fastha_checker_|fastha_virtual_server_|fastha_check_)"
)
CONF = """
global_defs {{
    router_id metrics
    enable_script_security
    script_user root
}}
bfd_instance bfd_peer {{
    neighbor_ip 198.18.0.12
}}
vrrp_script chk {{
    script "/bin/true"
    interval 1
}}
vrrp_instance VI_1 {{
    state MASTER
    interface {ifname}
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
    track_script {{
        chk
    }}
}}
"""


def dashboard_series() -> set[str]:
    """Every metric name the dashboard's queries read."""
    doc = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in doc["panels"]:
        for target in panel.get("targets", ()):
            names |= set(re.findall(r"\b((?:fastha|process)_[a-z0-9_]+)", target["expr"]))
    return names


def scrape(topo: Topology, node: Node) -> str:
    out = topo.run(node, PYTHON, "-m", "tests.support.metrics_client", "scrape",
                   "127.0.0.1", str(PORT), timeout=30)  # fmt: skip
    return out.stdout


@pytest.fixture
def daemon(topo: Topology, tmp_path: Path) -> Iterator[tuple[Node, subprocess.Popen[bytes]]]:
    exe = fastha_binary()
    if exe is None:
        pytest.fail("fastha is not installed in .venv")
    node = topo.node("a", ipv4="198.18.0.11/24")
    topo.run(node, "ip", "link", "set", "lo", "up")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(ifname=node.ifname, vip=VIP))
    log = (tmp_path / "daemon.log").open("w")
    proc = topo.popen(
        node, exe, "daemon", "-P", "-n", "-l", "-f", str(conf),
        "-p", str(tmp_path / "p.pid"), "-r", str(tmp_path / "v.pid"),
        "-c", str(tmp_path / "c.pid"), "--control-socket", str(tmp_path / "ctl.sock"),
        "--metrics", f"127.0.0.1:{PORT}", stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not has_vip(topo, node):
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
            time.sleep(0.1)
        yield node, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def has_vip(topo: Topology, node: Node) -> bool:
    return any(a.get("local") == VIP for a in topo.addresses(node))


def test_dashboard_series_in_a_live_scrape(
    topo: Topology, daemon: tuple[Node, subprocess.Popen[bytes]]
) -> None:
    node, _ = daemon
    time.sleep(2.5)  # a few script runs and adverts
    present = {s.name for f in text_string_to_metric_families(scrape(topo, node))
               for s in f.samples}  # fmt: skip
    wanted = dashboard_series()
    assert len(wanted) > 20, wanted
    # A series is a sample name, or a histogram's base name (its _bucket is present).
    missing = sorted(
        n for n in wanted
        if not CHECKER_ONLY.match(n) and n not in present and f"{n}_bucket" not in present
    )  # fmt: skip
    assert not missing, f"dashboard series absent from a live scrape: {missing}"


def test_scrape_flood_keeps_endpoint_and_vip(
    topo: Topology, daemon: tuple[Node, subprocess.Popen[bytes]]
) -> None:
    node, proc = daemon

    def renders() -> float:
        text = scrape(topo, node)
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        return fams["fastha_metrics_renders"].samples[0].value

    before = renders()
    out = topo.run(node, PYTHON, "-m", "tests.support.metrics_client", "flood",
                   "127.0.0.1", str(PORT), "8", timeout=60)  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["opened"] > 500, result  # the attack happened
    assert result["scrapes_ok"] >= 5, result  # a normal scraper got through every second
    assert result["last_families"] > 10, result
    assert proc.poll() is None
    assert has_vip(topo, node)
    time.sleep(1.1)  # past the cache
    # The children were asked about once a second, not once per connection (+2: the
    # cache's edges at the start and end).
    assert renders() - before <= 8 + 3, result
    # After the flood: a normal scrape answers and the instance is still MASTER.
    fams = {f.name: f for f in text_string_to_metric_families(scrape(topo, node))}
    master = [s for s in fams["fastha_vrrp_state"].samples
              if s.labels["state"] == "MASTER" and s.value == 1]  # fmt: skip
    assert [s.labels["iname"] for s in master] == ["VI_1"]
