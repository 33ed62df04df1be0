"""A configured interface that does not exist (issue 14), run under keepalived 2.2.7 and
under fastha, the same test body for both:

- without `dynamic_interfaces`, keepalived's VRRP child stops ("Non-existent interface
  specified in configuration") and keepalived with it: so does fastha, at start-up, with
  keepalived's exit code (2);
- with it, keepalived runs: the instance on the missing interface waits in FAULT (the
  other instance runs as usual) and, once the interface is created, becomes master and
  puts its VIP on it. fastha's VRRP child must not die meanwhile.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_peer import Peer

pytestmark = pytest.mark.system

IMPLS = ["keepalived", "fastha"]

CONF = """\
global_defs {{
    router_id DYN
{dynamic}
}}
vrrp_instance VI_LATE {{
    state BACKUP
    interface late0
    virtual_router_id 71
    priority 100
    advert_int 1
    virtual_ipaddress {{
        198.18.71.10/24
    }}
}}
vrrp_instance VI_HERE {{
    state BACKUP
    interface {ifname}
    virtual_router_id 72
    priority 100
    advert_int 1
    virtual_ipaddress {{
        198.18.72.10/24
    }}
}}
"""


def _has(topo: Topology, node: object, ifname: str, address: str) -> bool:
    out = topo.run(node, "ip", "-j", "addr", "show", "dev", ifname, check=False)  # type: ignore[arg-type]
    if out.returncode != 0:
        return False
    return any(
        a.get("local") == address for link in json.loads(out.stdout or "[]")
        for a in link.get("addr_info", [])
    )  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
def test_missing_interface_without_dynamic_interfaces_stops(
    topo: Topology, tmp_path: Path, impl: str
) -> None:
    need_tool(impl if impl == "keepalived" else "ip")
    node = topo.node("a", ipv4="198.18.70.2/24")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(dynamic="", ifname=node.ifname))
    peer = Peer(topo, node, impl, conf, tmp_path / "run").start()  # type: ignore[arg-type]
    assert peer.proc is not None
    rc = peer.proc.wait(timeout=30)
    assert rc == 2, peer.log()
    assert "late0" in peer.log()


@pytest.mark.parametrize("impl", IMPLS)
def test_dynamic_interfaces_waits_for_the_interface(
    topo: Topology, tmp_path: Path, impl: str
) -> None:
    need_tool(impl if impl == "keepalived" else "ip")
    node = topo.node("a", ipv4="198.18.70.2/24")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(dynamic="    dynamic_interfaces", ifname=node.ifname))
    peer = Peer(topo, node, impl, conf, tmp_path / "run").start()  # type: ignore[arg-type]
    try:
        # The other instance runs meanwhile (alone on its link: master, VIP up).
        peer.wait(
            "master on its own interface", lambda: _has(topo, node, node.ifname, "198.18.72.10"), 15
        )
        log = peer.log()
        assert "late0" in log and "FAULT" in log.upper(), log[-3000:]
        topo.run(node, "ip", "link", "add", "late0", "type", "veth", "peer", "name", "late0p")
        topo.run(node, "ip", "addr", "add", "198.18.71.2/24", "dev", "late0")
        topo.run(node, "ip", "link", "set", "late0p", "up")
        topo.run(node, "ip", "link", "set", "late0", "up")
        peer.wait(
            "master on the interface created late",
            lambda: _has(topo, node, "late0", "198.18.71.10"),
            15,
        )
    finally:
        peer.stop()


@pytest.mark.parametrize("impl", IMPLS)
def test_interfaces_are_looked_up_in_the_namespace(
    topo: Topology, tmp_path: Path, impl: str
) -> None:
    """`-s NETNS` from the host: the instance's interface exists only in that namespace,
    and both daemons look it up there (keepalived enters it before reading the file)."""
    import subprocess

    from tests.support.vrrp_peer import FASTHA, keepalived_binary

    node = topo.node("a", ipv4="198.18.70.2/24")
    topo.run(node, "ip", "link", "add", "late0", "type", "veth", "peer", "name", "late0p")
    topo.run(node, "ip", "addr", "add", "198.18.71.2/24", "dev", "late0")
    for dev in ("late0p", "late0"):
        topo.run(node, "ip", "link", "set", dev, "up")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(dynamic="", ifname=node.ifname))
    run = tmp_path / "run"
    run.mkdir()
    if impl == "keepalived":
        cmd = [keepalived_binary() or "keepalived", "-n", "-l", "-P", "-s", node.ns, "-f",
               str(conf), "-p", f"{run}/p", "-r", f"{run}/r", "-c", f"{run}/c"]  # fmt: skip
    else:
        cmd = [str(FASTHA), "daemon", "-P", "-n", "-l", "-s", node.ns, "-f", str(conf),
               "-p", f"{run}/p", "-r", f"{run}/r", "--control-socket", f"{run}/ctl.sock",
               "--json-file", f"{run}/j"]  # fmt: skip
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{impl} exited {proc.returncode}:\n{log.read_text()}"
            if _has(topo, node, "late0", "198.18.71.10"):
                return
            time.sleep(0.2)
        pytest.fail(f"{impl}: no VIP on late0:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
