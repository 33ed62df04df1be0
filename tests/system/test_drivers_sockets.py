"""VRRP raw sockets and the AF_PACKET sender between real namespaces on a bridge."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.support.netns import PYTHON, Node, Topology
from tests.support.prereq import need_tool

pytestmark = pytest.mark.system

PEER = ("-m", "tests.support.driver_peer")
V4 = ("198.18.0.1/24", "198.18.0.2/24", "198.18.0.3/24")
V6 = ("fd00:198:18::1/64", "fd00:198:18::2/64", "fd00:198:18::3/64")


def _three(topo: Topology) -> tuple[Node, Node, Node]:
    a, b, obs = (topo.node(n, ipv4=v4, ipv6=v6) for n, v4, v6 in zip("abo", V4, V6, strict=True))
    return a, b, obs


def _vrrp2_payload() -> bytes:
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRP

    pkt = IP(src="198.18.0.1", dst="224.0.0.18") / VRRP(
        vrid=51, priority=100, addrlist=["198.18.0.100"]
    )
    return bytes(pkt)[20:]  # scapy fills the checksum; the kernel builds the IP header


def _vrrp3_payload(src: str, dst: str) -> bytes:
    from scapy.layers.inet6 import IPv6
    from scapy.layers.vrrp import VRRPv3

    pkt = IPv6(src=src, dst=dst) / VRRPv3(
        vrid=52, priority=150, ipcount=1, addrlist=["fd00:198:18::100"]
    )
    return bytes(pkt)[40:]  # v3 checksum covers the pseudo-header, so build with it


def _start_receiver(topo: Topology, node: Node, *args: str) -> subprocess.Popen[str]:
    proc = topo.popen(node, PYTHON, *PEER, "recv", "--dev", node.ifname, *args,
                      stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first["ready"], first
    return proc


def _finish(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=20)
    return [json.loads(ln) for ln in out.splitlines()]


def _send(topo: Topology, node: Node, *args: str) -> dict[str, Any]:
    res = topo.run(node, PYTHON, *PEER, "send", "--dev", node.ifname, *args)
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("mode", ["multicast", "unicast"])
def test_vrrp_ipv4_exchange(topo: Topology, mode: str) -> None:
    need_tool("tshark")
    need_tool("tcpdump")
    a, b, obs = _three(topo)
    payload = _vrrp2_payload()
    peer_args = ("--peer", b.ipv4) if mode == "unicast" else ()
    rx_args = ("--peer", a.ipv4) if mode == "unicast" else ()
    with topo.capture(obs, "ip proto 112") as cap:
        rx = _start_receiver(topo, b, "--family", "4", "--count", "3", *rx_args)
        sent = _send(topo, a, "--family", "4", "--src", a.ipv4, "--hex", payload.hex(),
                     "--count", "3", *peer_args)  # fmt: skip
        lines = _finish(rx)
    assert sent["sent"] == 3
    pkts = [ln for ln in lines if "hex" in ln]
    assert len(pkts) == 3, lines
    want_dst = b.ipv4 if mode == "unicast" else "224.0.0.18"
    for p in pkts:
        assert p["ttl"] == 255
        assert p["src"] == a.ipv4
        assert p["dst"] == want_dst
        assert bytes.fromhex(p["hex"]) == payload
        assert p["ifindex"] == b.ifindex
    seen = cap.packets(
        "vrrp", fields=("ip.src", "ip.dst", "ip.ttl", "vrrp.virt_rtr_id", "vrrp.prio")
    )
    if mode == "multicast":
        assert len(seen) == 3, seen  # flooded by the bridge to the observer
        assert all(s["ip.dst"] == "224.0.0.18" and s["ip.ttl"] == "255" for s in seen)
        assert all(s["vrrp.virt_rtr_id"] == "51" and s["vrrp.prio"] == "100" for s in seen)


@pytest.mark.parametrize("mode", ["multicast", "unicast"])
def test_vrrp_ipv6_exchange(topo: Topology, mode: str) -> None:
    need_tool("tshark")
    need_tool("tcpdump")
    a, b, obs = _three(topo)
    src = a.link_local()  # RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address
    b.link_local()
    dst = b.ipv6 if mode == "unicast" else "ff02::12"
    payload = _vrrp3_payload(src, dst)
    peer_args = ("--peer", b.ipv6) if mode == "unicast" else ()
    with topo.capture(obs, "ip6 proto 112") as cap:
        rx = _start_receiver(topo, b, "--family", "6", "--count", "3")
        sent = _send(topo, a, "--family", "6", "--src", src, "--hex", payload.hex(),
                     "--count", "3", *peer_args)  # fmt: skip
        lines = _finish(rx)
    assert sent["sent"] == 3
    pkts = [ln for ln in lines if "hex" in ln]
    assert len(pkts) == 3, lines
    for p in pkts:
        assert p["ttl"] == 255
        assert p["src"] == src
        assert p["dst"] == dst
        assert bytes.fromhex(p["hex"]) == payload
        assert p["ifindex"] == b.ifindex
    if mode == "multicast":
        seen = cap.packets("vrrp", fields=("ipv6.src", "ipv6.dst", "ipv6.hlim", "vrrp.virt_rtr_id"))
        assert len(seen) == 3, seen
        assert all(s["ipv6.dst"] == "ff02::12" and s["ipv6.hlim"] == "255" for s in seen)
        assert all(s["vrrp.virt_rtr_id"] == "52" for s in seen)


def test_vrrp_multicast_not_looped_back(topo: Topology) -> None:
    """IP_MULTICAST_LOOP is off: a node never hears its own adverts."""
    a, _b, _ = _three(topo)
    rx = _start_receiver(topo, a, "--family", "4", "--count", "1", "--timeout", "1")
    _send(topo, a, "--family", "4", "--hex", _vrrp2_payload().hex())
    lines = _finish(rx)
    assert not [ln for ln in lines if "hex" in ln], lines


def test_garp_frame_seen_by_peer(topo: Topology) -> None:
    need_tool("tshark")
    need_tool("tcpdump")
    from scapy.layers.l2 import ARP, Ether

    a, b, _ = _three(topo)
    vip = "198.18.0.100"
    frame = bytes(
        Ether(src=a.mac, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=a.mac, psrc=vip, hwdst="ff:ff:ff:ff:ff:ff", pdst=vip)
    )
    with topo.capture(b, "arp") as cap:
        res = topo.run(a, PYTHON, *PEER, "garp", "--dev", a.ifname, "--hex", frame.hex(),
                       "--count", "2")  # fmt: skip
    out = json.loads(res.stdout.splitlines()[-1])
    assert out == {"sent": 2, "mac": a.mac}
    seen = cap.packets("arp", fields=("eth.src", "arp.src.proto_ipv4", "arp.isgratuitous"))
    assert len(seen) == 2, seen
    assert all(s["eth.src"] == a.mac and s["arp.src.proto_ipv4"] == vip for s in seen)
    assert all(s["arp.isgratuitous"] in ("1", "True") for s in seen)
