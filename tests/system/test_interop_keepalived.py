"""fastha and Debian's keepalived 2.2.7 in one virtual router, from the same keepalived.conf.

The matrix: peers {keepalived+keepalived (proves the harness), fastha+keepalived,
keepalived+fastha, fastha+fastha} (the first one has the higher priority and must be the
master) x {VRRPv2, VRRPv3 (IPv4 and IPv6)} x {multicast, unicast} x {no auth, PASS (v2
only: v3 has no authentication)}. Each cell, in one topology:

1. both start; the higher priority node becomes the only master, holds the VIP and
   answers ARP/ND for it (seen from an observer namespace);
2. kill -9 of the master: the other one takes over;
3. restart: the higher priority node preempts back, the VIP has one owner again;
4. SIGTERM of the master: it sends priority 0 and the other one takes over;
5. tshark decodes every VRRP packet on the bridge with no expert info (checksums,
   malformed fields), with TTL/hop limit 255, the configured version, VRID, priority
   and authentication, and both nodes were heard.
"""

from __future__ import annotations

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import (
    NodeSpec,
    Router,
    VrrpCluster,
    need_impl,
    vrrp_capture_problems,
)

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

PEERS = [
    pytest.param(("keepalived", "keepalived"), id="keepalived+keepalived"),
    pytest.param(("fastha", "keepalived"), id="fastha+keepalived"),
    pytest.param(("keepalived", "fastha"), id="keepalived+fastha"),
    pytest.param(("fastha", "fastha"), id="fastha+fastha"),
]
# VRRPv2 adverts are whole seconds; v3 runs at 0.2 s so those cells take ~3 s.
ROUTERS = [
    Router(version=2, advert_int=1),
    Router(version=2, advert_int=1, auth_pass="fastha1"),
    Router(version=2, advert_int=1, unicast=True),
    Router(version=2, advert_int=1, unicast=True, auth_pass="fastha1"),
    Router(version=3, advert_int=0.2),
    Router(version=3, advert_int=0.2, unicast=True),
    Router(version=3, family=6, advert_int=0.2),
    Router(version=3, family=6, advert_int=0.2, unicast=True),
]
TIMEOUT = 10  # seconds; master_down_interval is at most about 3.6 s here
HI, LO = 150, 100


def _check_capture(c: VrrpCluster, cap, router: Router) -> None:  # type: ignore[no-untyped-def]
    problems = vrrp_capture_problems(cap)
    assert not problems, f"tshark flags VRRP packets: {problems}\n{c.logs()}"
    ttl = "ip.ttl" if router.family == 4 else "ipv6.hlim"
    fields = ("eth.src", ttl, "vrrp.version", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.auth_type")
    pkts = cap.packets("vrrp", fields=fields)
    assert pkts, "no VRRP packet captured on the bridge"
    macs = {c["hi"].mac: "hi", c["lo"].mac: "lo"}
    heard = set()
    for p in pkts:
        who = macs.get(p["eth.src"])
        assert who is not None, f"VRRP from an unknown MAC: {p}"
        heard.add(who)
        if not (router.family == 6 and router.unicast and c[who].impl == "keepalived"):
            assert p[ttl] == "255", f"RFC 5798 5.1.1.3 / 5.1.2.3: TTL/hop limit 255: {p}"
        # else: keepalived 2.2.7 sends unicast IPv6 adverts with the default hop limit
        # (64): it sets IPV6_MULTICAST_HOPS only. A receiver must accept them to interop.
        assert p["vrrp.version"] == str(router.version), p
        assert p["vrrp.virt_rtr_id"] == str(router.vrid), p
        assert p["vrrp.prio"] in ("0", str(HI if who == "hi" else LO)), p
        if router.version == 2:
            assert p["vrrp.auth_type"] == ("1" if router.auth_pass else "0"), p
    assert heard == {"hi", "lo"}, f"only {heard} sent adverts"
    if router.auth_pass:
        strings = {p["vrrp.auth_string"] for p in cap.packets("vrrp", fields=("vrrp.auth_string",))}
        assert strings == {router.auth_pass}, strings


def _sole_owner(c: VrrpCluster, name: str) -> None:
    c.wait_vip(name, TIMEOUT)
    assert [n.name for n in c.vip_holders()] == [name], f"VIP holders\n{c.logs()}"
    c.wait_observer_macs([c[name].mac], TIMEOUT)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.label())
@pytest.mark.parametrize("peers", PEERS)
def test_interop(topo: Topology, peers: tuple[str, str], router: Router) -> None:
    for impl in set(peers):
        need_impl(impl)  # type: ignore[arg-type]
    need_tool("tshark")
    need_tool("tcpdump")
    hi, lo = peers
    specs = [NodeSpec("hi", hi, priority=HI), NodeSpec("lo", lo, priority=LO)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, specs) as c:
        with c.bridge_capture() as cap:
            # 1. election
            c.start_all()
            c.wait_master(TIMEOUT, expect="hi")
            _sole_owner(c, "hi")
            assert c.ping_vip(), f"the VIP does not answer ping\n{c.logs()}"
            assert c["lo"].state() == "BACKUP", f"split brain\n{c.logs()}"
            # 2. crash of the master
            c.kill("hi")
            c.wait_master(TIMEOUT, expect="lo")
            c.wait_vip("lo", TIMEOUT)
            # 3. restart: preemption back (the stale VIP is removed at start)
            c.start("hi")
            c.wait_master(TIMEOUT, expect="hi")
            _sole_owner(c, "hi")
            assert c["lo"].state() == "BACKUP", f"split brain\n{c.logs()}"
            # 4. clean stop: priority 0 hands over
            assert c.stop("hi") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="lo")
            _sole_owner(c, "lo")
        zero = cap.packets(f"vrrp.prio == 0 && eth.src == {c['hi'].mac}", fields=("frame.number",))
        assert zero, f"the stopping master sent no priority 0 advert\n{c.logs()}"
        _check_capture(c, cap, router)
