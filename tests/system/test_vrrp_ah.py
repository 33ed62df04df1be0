"""keepalived's `auth_type AH` (VRRPv2 with an IPsec-AH header), against keepalived 2.2.7.

keepalived puts an AH header (RFC 2402: SPI = the source address, a sequence number,
an HMAC-MD5-96 ICV keyed by auth_pass over the packet with its mutable IP fields
zeroed) between its own IPv4 header (IP protocol 51) and the VRRPv2 message, and drops
any advert whose ICV, SPI or sequence number does not check.

- interop both ways (and keepalived with itself, proving the test): one VIP holder
  through election, kill -9, preemption back and a clean stop; tshark decodes every
  advert as AH + VRRP, SPI = source, sequence numbers rising across the whole run;
- a forger on the segment: adverts with a garbage ICV are dropped and logged (the
  master stays master), and the same advert signed with the right key (by an
  independent HMAC written here) does make it step down: the forger is heard; once
  master again, a replay of a signed advert with an older sequence number is dropped.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, need_impl

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

KEY = "fastha1"
ROUTER = Router(version=2, advert_int=1, auth_pass=KEY, auth_type="AH")
UNICAST = Router(version=2, advert_int=1, auth_pass=KEY, auth_type="AH", unicast=True)
TIMEOUT = 10
HI, LO = 150, 100
BAD_ICV_LOG = "IPSEC-AH : invalid IPSEC HMAC-MD5 value"

# Unicast: the TTL is left out of the ICV and every peer gets its own.
CELLS = [
    pytest.param(ROUTER, ("keepalived", "keepalived"), id="multicast-keepalived+keepalived"),
    pytest.param(ROUTER, ("fastha", "keepalived"), id="multicast-fastha+keepalived"),
    pytest.param(ROUTER, ("keepalived", "fastha"), id="multicast-keepalived+fastha"),
    pytest.param(UNICAST, ("fastha", "keepalived"), id="unicast-fastha+keepalived"),
    pytest.param(UNICAST, ("keepalived", "fastha"), id="unicast-keepalived+fastha"),
]


def _sole_owner(c: VrrpCluster, name: str) -> None:
    c.wait_vip(name, TIMEOUT)
    assert [n.name for n in c.vip_holders()] == [name], f"VIP holders\n{c.logs()}"


@pytest.mark.parametrize(("router", "peers"), CELLS)
def test_ah_interop(topo: Topology, router: Router, peers: tuple[str, str]) -> None:
    for impl in set(peers):
        need_impl(impl)  # type: ignore[arg-type]
    need_tool("tshark")
    need_tool("tcpdump")
    hi, lo = peers
    specs = [NodeSpec("hi", hi, priority=HI), NodeSpec("lo", lo, priority=LO)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, specs, observer=False) as c:
        with c.bridge_capture("ip proto 51 or ip proto 112") as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="hi")
            _sole_owner(c, "hi")
            c.kill("hi")  # kill -9 leaves its VIP behind; the restart removes it
            c.wait_master(TIMEOUT, expect="lo")
            c.wait_vip("lo", TIMEOUT)
            # The restarted node's counter starts at 0: it must take up the backup's
            # sequence from its adverts, or the backup drops it as a replay.
            c.start("hi")
            c.wait_master(TIMEOUT, expect="hi")
            _sole_owner(c, "hi")
            assert c.stop("hi") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="lo")
            _sole_owner(c, "lo")
        fields = ("eth.src", "ip.src", "ip.proto", "ah.spi", "ah.sequence", "vrrp.auth_type",
                  "vrrp.prio", "ip.dsfield", "ip.flags.df")  # fmt: skip
        pkts = cap.packets("", fields=fields)
    assert pkts, "nothing captured"
    macs = {c["hi"].mac: "hi", c["lo"].mac: "lo"}
    heard = set()
    seqs = []
    for p in pkts:
        heard.add(macs[p["eth.src"]])
        assert p["ip.proto"] == "51", f"not an AH packet: {p}"
        assert p.get("vrrp.auth_type") == "2", f"tshark did not decode AH + VRRP: {p}"
        spi = int(p["ah.spi"], 16)
        assert spi == int.from_bytes(socket.inet_aton(p["ip.src"]), "big"), p
        assert p["ip.dsfield"] == "0xc0" and p["ip.flags.df"] in ("0", "False"), p
        seqs.append(int(p["ah.sequence"]))
    assert heard == {"hi", "lo"}, f"only {heard} sent adverts"
    # One counter per instance, shared by what it sends and what it accepts: the
    # sequence rises across masters (keepalived's anti-replay).
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


# Run in the observer's namespace: `count` forged adverts from sequence number `seq` on,
# priority 254, from the observer's address, signed with argv's key or ("-") carrying a
# garbage ICV. Written from RFC 2402 / keepalived's vrrp_ipsecah.c, independently of
# fastha._wire.
FORGE = r"""
import hmac, socket, struct, sys
from scapy.all import Ether, Raw, get_if_hwaddr, sendp
iface, src, vip, seq, key, count = sys.argv[1:7]
seq, count = int(seq), int(count)

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

vrrp = struct.pack("!BBBBBBH", 0x21, 51, 254, 1, 2, 1, 0) + socket.inet_aton(vip) + bytes(8)
vrrp = vrrp[:6] + struct.pack("!H", csum(vrrp)) + vrrp[8:]
spi = struct.unpack("!I", socket.inet_aton(src))[0]
for i in range(count):
    total = 20 + 24 + len(vrrp)
    # TOS, fragment field and checksum are zero while the ICV is computed.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1000 + i, 0, 255, 51, 0,
                     socket.inet_aton(src), socket.inet_aton("224.0.0.18"))
    ah = struct.pack("!BBHII", 112, 4, 0, spi, seq + i)
    if key == "-":
        icv = bytes(range(1, 13))
    else:
        k = key.encode()[:8].ljust(8, b"\0")
        icv = hmac.new(k, ip + ah + bytes(12) + vrrp, "md5").digest()[:12]
    ip = ip[:1] + b"\xc0" + ip[2:]
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frame = Ether(dst="01:00:5e:00:00:12", src=get_if_hwaddr(iface), type=0x0800)
    sendp(frame / Raw(ip + ah + icv + vrrp), iface=iface, verbose=False)
"""


@pytest.mark.parametrize("impl", ["keepalived", "fastha"])
def test_ah_forged_advert(topo: Topology, impl: str) -> None:
    need_impl(impl)  # type: ignore[arg-type]
    with VrrpCluster(topo, ROUTER, [NodeSpec("m", impl, priority=LO)]) as c:  # type: ignore[arg-type]
        obs = c.observer
        assert obs is not None and obs.ipv4 is not None
        c.start_all()
        c.wait_state("m", "MASTER", TIMEOUT)
        c.wait_vip("m", TIMEOUT)

        def forge(seq: int, key: str, count: int) -> None:
            topo.python(obs, FORGE, obs.ifname, obs.ipv4, ROUTER.vip, str(seq), key, str(count))

        forge(1_000_000, "-", 3)
        # A master obeys a higher priority advert at once: a few seconds is plenty.
        deadline = time.monotonic() + 3
        while c["m"].peer.log().count(BAD_ICV_LOG) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c["m"].peer.log().count(BAD_ICV_LOG) >= 3, (
            f"the garbage ICVs were not all seen and dropped\n{c.logs()}"
        )
        assert c["m"].state() == "MASTER" and c.has_vip("m"), f"a forgery won\n{c.logs()}"
        # Control: the same advert with the right key is heard and obeyed.
        forge(2_000_000, KEY, 1)
        c.wait_state("m", "BACKUP", TIMEOUT)
        # Master again (sending from 2,000,001 on): a replayed older advert is dropped.
        c.wait_state("m", "MASTER", TIMEOUT)
        forge(1_500_000, KEY, 1)
        deadline = time.monotonic() + 3
        while "already processed" not in c["m"].peer.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "already processed" in c["m"].peer.log(), c.logs()
        assert c["m"].peer.states()[-1] == "MASTER" and c.has_vip("m"), f"a replay won\n{c.logs()}"
