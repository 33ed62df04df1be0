"""The interfaces and addresses a VRRP instance owns, tracked as keepalived 2.2.7 tracks
them; each test runs keepalived too (the oracle) and fastha, on the same node.

- keepalived tracks, with weight 0, every interface a VIP's or a virtual route's `dev`
  names (vrrp.c vrrp_complete_instance, TRACK_ADDR / TRACK_ROUTE) unless `no_track`:
  that interface going down puts the instance in FAULT, up again lets it back;
- a VIP deleted by hand (`ip addr del`) while MASTER makes keepalived leave MASTER
  (keepalived_netlink.c set_vrrp_backup) and, with no other router, become master
  again at once, VIP restored; a `no_track` VIP deleted by hand stays deleted.

(Scenarios for tests/conformance once it exists.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.netns import Node, Topology
from tests.support.vrrp_nodes import need_impl
from tests.support.vrrp_peer import Peer

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

IMPLS = ["keepalived", "fastha"]
TIMEOUT = 10


def _instance(name: str, vrid: int, body: str) -> str:
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    version 3
    virtual_router_id {vrid}
    priority 100
    advert_int 0.2
{body}
}}
"""


def _conf(*instances: str) -> str:
    return "global_defs {\n    router_id n1\n}\n" + "".join(instances)


def _wait(what: str, cond: Callable[[], bool], peer: Peer, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert peer.running, f"{peer} exited waiting for {what}\n{peer.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{peer.tail()}"
        time.sleep(0.05)


def _addresses(topo: Topology, node: Node) -> set[str]:
    out = set()
    for ifname in ("eth0", "x0", "x1"):
        out |= {a.get("local") for a in topo.addresses(node, ifname)}
    return out


def _start(topo: Topology, tmp_path: Path, impl: str, conf: str) -> tuple[Node, Peer]:
    need_impl(impl)  # type: ignore[arg-type]
    node = topo.node("n1", ipv4="198.18.0.11/24", ipv6="fd00:198:18::11/64")
    # A second link inside the node: a veth pair, so x0 down takes x1's carrier too
    # but leaves eth0 (the VRRP interface) alone.
    topo.run(node, "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1")
    for ifname, addr in (("x0", "198.18.1.11/24"), ("x1", "198.18.2.11/24")):
        topo.run(node, "ip", "addr", "add", addr, "dev", ifname)
        topo.run(node, "ip", "link", "set", ifname, "up")
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    peer = Peer(topo, node, impl, path, tmp_path / impl)  # type: ignore[arg-type]
    peer.start()
    return node, peer


@pytest.mark.parametrize("impl", IMPLS)
def test_vip_and_route_dev_tracked(topo: Topology, tmp_path: Path, impl: str) -> None:
    conf = _conf(
        _instance("VI_VIP", 61, "    virtual_ipaddress {\n        198.18.0.161/24\n"
                  "        198.18.1.161/24 dev x0\n    }"),
        _instance("VI_ROUTE", 62, "    virtual_ipaddress {\n        198.18.0.162/24\n    }\n"
                  "    virtual_routes {\n        198.51.100.0/24 dev x1\n    }"),
        _instance("VI_NOTRACK", 63, "    virtual_ipaddress {\n        198.18.0.163/24\n"
                  "        198.18.1.163/24 dev x0 no_track\n    }"),
    )  # fmt: skip
    node, peer = _start(topo, tmp_path, impl, conf)
    names = ("VI_VIP", "VI_ROUTE", "VI_NOTRACK")
    try:
        _wait("every instance MASTER", lambda: all(peer.state(i) == "MASTER" for i in names), peer)
        topo.run(node, "ip", "link", "set", "x0", "down")
        _wait(
            "VI_VIP and VI_ROUTE in FAULT",
            lambda: peer.state("VI_VIP") == "FAULT" and peer.state("VI_ROUTE") == "FAULT",
            peer,
        )
        time.sleep(1)  # a no_track VIP's interface is not the instance's business
        assert peer.states("VI_NOTRACK") == ["BACKUP", "MASTER"], peer.tail()
        assert "198.18.0.161" not in _addresses(topo, node), "a FAULT instance kept its VIP"
        topo.run(node, "ip", "link", "set", "x0", "up")
        _wait("every instance MASTER again",
              lambda: all(peer.state(i) == "MASTER" for i in names), peer)  # fmt: skip
    finally:
        assert peer.stop() == 0, peer.tail()


@pytest.mark.parametrize("impl", IMPLS)
def test_vip_deleted_by_hand(topo: Topology, tmp_path: Path, impl: str) -> None:
    conf = _conf(
        _instance("VI_A", 71, "    virtual_ipaddress {\n        198.18.0.171/24\n    }"),
        _instance("VI_B", 72, "    virtual_ipaddress {\n        198.18.0.172/24 no_track\n    }"),
    )
    node, peer = _start(topo, tmp_path, impl, conf)
    try:
        _wait("both MASTER with their VIPs",
              lambda: peer.state("VI_A") == peer.state("VI_B") == "MASTER"
              and {"198.18.0.171", "198.18.0.172"} <= _addresses(topo, node), peer)  # fmt: skip
        topo.run(node, "ip", "addr", "del", "198.18.0.171/24", "dev", "eth0")
        # keepalived: BACKUP (priority 0 sent, VIPs removed), master again after
        # Skew_Time, the VIP put back.
        _wait("VI_A through BACKUP to MASTER",
              lambda: peer.states("VI_A")[2:] == ["BACKUP", "MASTER"], peer)  # fmt: skip
        _wait("the VIP back", lambda: "198.18.0.171" in _addresses(topo, node), peer)
        topo.run(node, "ip", "addr", "del", "198.18.0.172/24", "dev", "eth0")
        time.sleep(1.5)
        assert peer.states("VI_B") == ["BACKUP", "MASTER"], peer.tail()
        assert "198.18.0.172" not in _addresses(topo, node), "a no_track VIP came back"
        assert peer.states("VI_A") == ["BACKUP", "MASTER", "BACKUP", "MASTER"], peer.tail()
    finally:
        assert peer.stop() == 0, peer.tail()
