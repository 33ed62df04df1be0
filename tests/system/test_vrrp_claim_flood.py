"""A host floods claims for one of the master's VIPs (issue 15, ARP/ND defence).

The master watches ARP / Neighbor Advertisements and announces a VIP again when another
MAC claims it (drivers/arpwatch; test_vrrp_features has the benign case). Turned
against it: one host claims one VIP of three, 300 times a second for 3 s, from one MAC.
The master must answer only for the address claimed (not re-announce every VIP: an
amplifier anyone on the segment can drive) and back off from a MAC that keeps claiming
(answers 1, 2, 4 ... advert intervals apart instead of one burst every interval).
Asserted from a capture on the bridge: the master's unsolicited announcements during the
flood name the claimed VIP only, in at most ``MAX_BURSTS`` bursts (one every advert
interval would be ~30); it is still master and holds every VIP.
"""

from __future__ import annotations

import time

import pytest

from tests.support.drill_daemon import status
from tests.support.flood import Hostile, write_frames
from tests.support.netns import PYTHON, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, need_impl

pytestmark = pytest.mark.system

CLAIMER = "02:00:5e:00:aa:02"
ADVERT = 0.1
RATE = 300.0
SECONDS = 3.0
REPEAT = 5  # garp_master_repeat's default: frames per VIP in one burst
# Back-off 1, 2, 4, 8, 16 intervals after the first answer: 5 bursts in 3 s (one more
# for a claim that lands just as a burst goes out).
MAX_BURSTS = 7
# tshark: the frames of an announcement, their address field, and what makes one
# unsolicited (a solicited reply to a host probing its cache is not an announcement).
_FIELDS = {
    4: ("arp", "arp.src.proto_ipv4", "arp.isgratuitous == 1"),
    6: ("icmpv6.type == 136", "icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.s == 0"),
}


def _claim(family: int, vip: str) -> bytes:
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import ARP, Ether

    if family == 6:
        return bytes(
            Ether(src=CLAIMER, dst="33:33:00:00:00:01")
            / IPv6(dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(tgt=vip, R=0, S=0, O=1)
            / ICMPv6NDOptDstLLAddr(lladdr=CLAIMER)
        )
    return bytes(
        Ether(src=CLAIMER, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLAIMER, psrc=vip, pdst=vip)
    )


@pytest.mark.parametrize("family", [4, 6])
def test_claim_flood_answers_the_claimed_vip_only_and_backs_off(
    topo: Topology, family: int
) -> None:
    need_impl("fastha")
    need_tool("tcpdump")
    need_tool("tshark")
    router = Router(
        version=3, family=family, advert_int=ADVERT, vip_count=3,  # type: ignore[arg-type]
        global_extra=("vrrp_garp_master_delay 0",),
    )  # fmt: skip
    target = router.vip
    others = [a for a in router.vip_addresses if a != target]
    kind, addr_field, unsolicited = _FIELDS[family]
    with VrrpCluster(topo, router, [NodeSpec("a", "fastha", 150, "MASTER")]) as c:
        a, obs = c["a"], c.observer
        assert obs is not None
        c.start_all()
        c.wait_master(15, expect=a)
        c.wait_vip(a)
        time.sleep(1.0)  # a's own take-over bursts are over
        frames = c.workdir / "claims.bin"
        write_frames(frames, [Hostile("claim", None, _claim(family, target))] * int(RATE * SECONDS))
        with c.bridge_capture("arp" if family == 4 else "icmp6") as cap:
            time.sleep(0.2)
            out = topo.run(
                obs, PYTHON, "-m", "tests.support.flood", "send", obs.ifname, str(frames),
                "--rate", str(RATE), timeout=SECONDS + 30,
            )  # fmt: skip
            time.sleep(0.5)
        sent = int(out.stdout.strip())
        fields = ("frame.time_relative", addr_field)
        answers = cap.packets(f"{kind} && {unsolicited} && eth.src == {a.mac}", fields=fields)
        by_addr: dict[str, int] = {}
        for f in answers:
            by_addr[f[addr_field]] = by_addr.get(f[addr_field], 0) + 1
        counters = status(topo, a)["vrrp"]["instances"][0]["counters"]
        print(
            f"\n[ipv{family}] {sent} claims for {target} from {CLAIMER}: the master announced "
            f"{by_addr} ({by_addr.get(target, 0) / REPEAT:g} bursts); counters "
            f"vip_claimed={counters['vip_claimed']} ignored={counters.get('vip_claim_ignored')}"
        )
        assert sent == int(RATE * SECONDS)
        assert not {o: by_addr[o] for o in others if o in by_addr}, (
            f"a claim for {target} made the master re-announce other VIPs: {by_addr}"
        )
        assert by_addr.get(target, 0) >= REPEAT, f"the claimed VIP was never defended: {by_addr}"
        bursts = by_addr[target] / REPEAT
        assert bursts <= MAX_BURSTS, (
            f"{bursts:g} defence bursts in {SECONDS:g} s: no back-off from a MAC that keeps "
            "claiming"
        )
        assert a.state() == "MASTER"
        assert c.vip_holders() == [a]
