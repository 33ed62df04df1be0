"""What goes on the wire, field by field, against keepalived 2.2.7 as the oracle.

The same keepalived.conf (VRRPv2 and VRRPv3 over IPv4, VRRPv3 over IPv6) runs once
under keepalived and once under fastha on the same namespace node (same name, MAC and
addresses; net.ipv6.conf.eth0.forwarding=1, which keepalived turns into the NA Router
flag). Each run is captured on the bridge from start to a clean stop, decoded by
tshark, and normalised into a trace:

- adverts, per VRID: IPv4 TOS/DSCP, DF, TTL, protocol and how the IP ID runs (its
  first value, one step per advert), or the IPv6 traffic class and hop limit; the
  VRRP fields (version, type, VRID, priorities seen, count, interval, addresses);
- gratuitous ARP per VIP: count at the transition to MASTER and every ARP/Ethernet field;
- unsolicited NA per VIP: count, the Router/Solicited/Override flags, IPv6 source,
  destination, hop limit, traffic class, the target link-layer address option.

The two traces must be equal. (A scenario for tests/conformance once it exists.)
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Capture, Node, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import need_impl
from tests.support.vrrp_peer import Peer

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

CONF = """\
global_defs {
    router_id n1
    enable_script_security
    vrrp_garp_master_delay 0
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    version 2
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.0.102/24
    }
}
vrrp_instance VI_3 {
    state BACKUP
    interface eth0
    version 3
    virtual_router_id 53
    priority 100
    advert_int 0.5
    virtual_ipaddress {
        198.18.0.103/24
    }
}
vrrp_instance VI_6 {
    state BACKUP
    interface eth0
    version 3
    virtual_router_id 56
    priority 100
    advert_int 0.5
    virtual_ipaddress {
        fe80::56:100/64
        fd00:198:18::106/64
    }
}
"""
INSTANCES = ("VI_2", "VI_3", "VI_6")
VIPS = ("198.18.0.102", "198.18.0.103", "fe80::56:100", "fd00:198:18::106")

ADVERT4 = ("ip.dsfield", "ip.flags.df", "ip.ttl", "ip.proto", "ip.src", "ip.dst")
ADVERT6 = ("ipv6.tclass", "ipv6.hlim", "ipv6.dst")
VRRP = ("vrrp.version", "vrrp.type", "vrrp.addr_count", "vrrp.auth_type", "vrrp.adver_int",
        "vrrp.ip_addr", "vrrp.ipv6_addr")  # fmt: skip
GARP = ("eth.dst", "eth.src", "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4",
        "arp.dst.hw_mac", "arp.dst.proto_ipv4", "frame.len")  # fmt: skip
NA = ("eth.dst", "eth.src", "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.tclass",
      "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o",
      "icmpv6.opt.linkaddr", "frame.len")  # fmt: skip


def _distinct(rows: Iterable[dict[str, str]], keys: Iterable[str]) -> list[tuple[str, ...]]:
    keys = tuple(keys)
    return sorted({tuple(r.get(k, "") for k in keys) for r in rows})


def normalise(cap: Capture) -> dict[str, Any]:
    trace: dict[str, Any] = {}
    rows = cap.packets("vrrp", fields=("vrrp.virt_rtr_id", "vrrp.prio", "ip.id", *ADVERT4,
                                       *ADVERT6, *VRRP))  # fmt: skip
    by_vrid: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_vrid[r["vrrp.virt_rtr_id"]].append(r)
    for vrid, rs in sorted(by_vrid.items()):
        t: dict[str, Any] = {
            "priorities": sorted({r["vrrp.prio"] for r in rs}),
            "vrrp": _distinct(rs, VRRP),
        }
        if rs[0].get("ip.id"):
            ids = [int(r["ip.id"], 16) for r in rs]
            t["ip"] = _distinct(rs, ADVERT4)
            t["ip.id first"] = ids[0]
            t["ip.id steps"] = sorted({(b - a) % 0x10000 for a, b in itertools.pairwise(ids)})
        else:
            t["ipv6"] = _distinct(rs, ADVERT6)
        trace[f"advert vrid {vrid}"] = t
    for r in cap.packets("arp", fields=GARP):
        t = trace.setdefault(f"garp {r['arp.src.proto_ipv4']}", {"count": 0, "fields": set()})
        t["count"] += 1
        t["fields"].add(tuple(r.get(k, "") for k in GARP))
    for r in cap.packets("icmpv6.type == 136", fields=("icmpv6.nd.na.target_address", *NA)):
        t = trace.setdefault(
            f"na {r['icmpv6.nd.na.target_address']}", {"count": 0, "fields": set()}
        )
        t["count"] += 1
        t["fields"].add(tuple(r.get(k, "") for k in NA))
    for t in trace.values():
        if "fields" in t:
            t["fields"] = sorted(t["fields"])
    return trace


def _run(topo: Topology, node: Node, impl: str, workdir: Path) -> dict[str, Any]:
    conf = workdir / "keepalived.conf"
    conf.write_text(CONF)
    peer = Peer(topo, node, impl, conf, workdir / impl)  # type: ignore[arg-type]
    cap = Capture(
        topo,
        topo.nodes["obs"],
        "ip proto 112 or ip6 proto 112 or arp or icmp6",
        workdir / f"{impl}.pcap",
    )
    with cap:
        peer.start()
        try:
            deadline = time.monotonic() + 15
            while not all(peer.state(i) == "MASTER" for i in INSTANCES):
                assert peer.running, f"{impl} exited\n{peer.tail()}"
                assert time.monotonic() < deadline, f"{impl} not MASTER\n{peer.tail()}"
                time.sleep(0.05)
            time.sleep(1.5)  # the GARP/NA bursts and a few adverts
        finally:
            assert peer.stop() == 0, peer.tail()
    have = {a.get("local") for a in topo.addresses(node)}
    assert not have & set(VIPS), f"{impl} left VIPs behind: {have}"
    return normalise(cap)


def test_wire_fields_as_keepalived(topo: Topology, tmp_path: Path) -> None:
    for impl in ("keepalived", "fastha"):
        need_impl(impl)  # type: ignore[arg-type]
    need_tool("tshark")
    need_tool("tcpdump")
    node = topo.node("n1", ipv4="198.18.0.11/24", ipv6="fd00:198:18::11/64")
    topo.node("obs", ipv4="198.18.0.2/24", ipv6="fd00:198:18::2/64")
    # keepalived sets the NA Router flag from the interface's IPv6 forwarding.
    topo.run(node, "sysctl", "-qw", "net.ipv6.conf.eth0.forwarding=1")
    traces = {impl: _run(topo, node, impl, tmp_path) for impl in ("keepalived", "fastha")}
    want, got = traces["keepalived"], traces["fastha"]
    assert set(want) == {*(f"advert vrid {v}" for v in (52, 53, 56)),
                         "garp 198.18.0.102", "garp 198.18.0.103",
                         "na fe80::56:100", "na fd00:198:18::106"}, want  # fmt: skip
    diffs = [
        f"{key}: keepalived {want.get(key)!r}\n{' ' * len(key)}  fastha     {got.get(key)!r}"
        for key in sorted(set(want) | set(got))
        if want.get(key) != got.get(key)
    ]
    assert not diffs, "fastha's wire differs from keepalived's:\n" + "\n".join(diffs)
