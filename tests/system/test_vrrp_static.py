"""static_ipaddress / static_routes / static_rules: set when the VRRP child starts, whatever
its state, and removed when it stops (kept with -V), as keepalived does."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.netns import Topology

pytestmark = pytest.mark.system

FASTHA = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "fastha")

CONF = """\
global_defs {
    router_id static-test
}
static_ipaddress {
    198.18.7.7/32 dev eth0 scope link
}
static_routes {
    198.18.200.0/24 via 198.18.0.254 dev eth0
}
static_rules {
    from 198.18.7.7 table 100 priority 1000
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 77
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.0.177/24
    }
}
"""


def _state(topo: Topology, node) -> tuple[bool, bool, bool]:  # type: ignore[no-untyped-def]
    addrs = {a.get("local") for a in topo.addresses(node)}
    routes = json.loads(topo.run(node, "ip", "-j", "route", "show").stdout)
    rules = json.loads(topo.run(node, "ip", "-j", "rule", "show").stdout)
    return (
        "198.18.7.7" in addrs,
        any(r.get("dst") == "198.18.200.0/24" for r in routes),
        any(r.get("priority") == 1000 and r.get("src") == "198.18.7.7" for r in rules),
    )


def _wait(cond, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("keep", [False, True], ids=["release", "dont-release"])
def test_statics_set_at_start_and_removed_at_stop(
    topo: Topology, tmp_path: Path, keep: bool
) -> None:
    node = topo.node("a", ipv4="198.18.0.1/24")
    topo.run(node, "ip", "route", "add", "198.18.0.254/32", "dev", "eth0")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    log = (tmp_path / "fastha.log").open("w")
    args = [FASTHA, "daemon", "-P", "-n", "-l", "-f", str(conf)] + (["-V"] if keep else [])
    proc = topo.popen(node, *args, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Static entries do not wait for any VRRP state: they appear while still BACKUP.
        assert _wait(lambda: _state(topo, node) == (True, True, True)), (
            tmp_path / "fastha.log"
        ).read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    expected = (True, True, True) if keep else (False, False, False)
    assert _state(topo, node) == expected, (tmp_path / "fastha.log").read_text()
