"""SIGHUP reload of the VRRP child, two fastha nodes in namespaces.

The VIP must never flap on a reload that does not concern it: the test watches the
master's address events with `ip monitor address` (netlink, from the test's side) during
the reload, and captures adverts and ARP on the bridge. Bounds are protocol-level: "no
advert gap of two intervals" (a missed advert), never a latency.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.netns import Node, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, VrrpNode, keepalived_conf

pytestmark = pytest.mark.system

ADVERT_INT = 0.5
# No delayed or periodic GARP burst: any gratuitous ARP seen during a reload is the
# reload's doing.
ROUTER = Router(version=3, advert_int=ADVERT_INT, global_extra=("vrrp_garp_master_delay 0",))
VIP = ROUTER.vip  # 198.18.0.100
NEW_VIP = "198.18.0.101"
TIMEOUT = 10
MARKER = "198.18.99.{}"


class AddressMonitor:
    """`ip -o monitor address` in a namespace, lines collected by a thread. `armed()`
    adds and removes a marker address on lo and waits to see it: from then on no event
    can be missed."""

    def __init__(self, topo: Topology, node: Node, n: int) -> None:
        self.topo, self.node, self.marker = topo, node, MARKER.format(n)
        self.proc = topo.popen(node, "ip", "-o", "monitor", "address",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        topo.run(node, "ip", "link", "set", "lo", "up")
        deadline = time.monotonic() + TIMEOUT
        while not any(self.marker in ln for ln in self.lines):
            topo.run(node, "ip", "addr", "replace", f"{self.marker}/32", "dev", "lo")
            time.sleep(0.1)
            topo.run(node, "ip", "addr", "del", f"{self.marker}/32", "dev", "lo", check=False)
            assert time.monotonic() < deadline, "ip monitor never reported the marker"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def stop(self) -> list[str]:
        time.sleep(0.3)  # events of the last netlink calls
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.thread.join(timeout=5)
        return [ln for ln in self.lines if self.marker not in ln]

    def events_for(self, address: str) -> list[str]:
        return [ln for ln in self.lines if re.search(rf"inet6? {re.escape(address)}/", ln)]


@contextmanager
def monitor(topo: Topology, node: VrrpNode) -> Iterator[AddressMonitor]:
    m = AddressMonitor(topo, node.node, len(node.name) + ord(node.name[0]) % 200)
    try:
        yield m
    finally:
        m.stop()


def _pair(topo: Topology) -> VrrpCluster:
    need_tool("tcpdump")
    need_tool("tshark")
    return VrrpCluster(
        topo, ROUTER, [NodeSpec("a", "fastha", priority=150), NodeSpec("b", "fastha", 100)]
    )


def _peers(c: VrrpCluster, n: VrrpNode) -> list[Node]:
    return [m.node for m in c if m is not n]


def write_conf(
    c: VrrpCluster,
    n: VrrpNode,
    *,
    priority: int | None = None,
    vip_count: int = 1,
    extra_instance: str = "",
) -> None:
    router = Router(
        version=ROUTER.version, advert_int=ROUTER.advert_int, global_extra=ROUTER.global_extra,
        vip_count=vip_count,
    )  # fmt: skip
    spec = n.spec if priority is None else NodeSpec(n.name, "fastha", priority)
    n.conf.write_text(keepalived_conf(router, spec, n.node, _peers(c, n)) + extra_instance)


def reloads(n: VrrpNode) -> int:
    return n.peer.log().count("Reload finished")


def hup(c: VrrpCluster, n: VrrpNode, *, expect_ok: bool = True) -> None:
    before_ok = reloads(n)
    before_failed = n.peer.log().count("Reload failed")
    assert n.peer.proc is not None
    n.peer.proc.send_signal(signal.SIGHUP)

    def done() -> bool:
        if expect_ok:
            return reloads(n) > before_ok
        return n.peer.log().count("Reload failed") > before_failed

    c._wait(f"{n} to finish reloading", done, TIMEOUT)


def addresses(c: VrrpCluster, n: VrrpNode) -> set[str]:
    return {a.get("local", "") for a in c.topo.addresses(n.node)}


def advert_gaps(c: VrrpCluster, cap: object, src: str) -> list[float]:
    pkts = cap.packets(f"vrrp && ip.src == {src}", fields=("frame.time_epoch",))  # type: ignore[attr-defined]
    times = [float(p["frame.time_epoch"]) for p in pkts]
    return [b - a for a, b in itertools.pairwise(times)]


def _started(topo: Topology) -> VrrpCluster:
    c = _pair(topo)
    c.start_all()
    c.wait_master(TIMEOUT, expect="a")
    c.wait_vip("a", TIMEOUT)
    return c


def test_unchanged_file_nothing_moves(topo: Topology) -> None:
    with _started(topo) as c:
        a, b = c["a"], c["b"]
        states = (a.peer.states(), b.peer.states())
        cap = c.bridge_capture("ip proto 112 or arp")
        with monitor(topo, a) as mon, cap:
            time.sleep(3 * ADVERT_INT)
            hup(c, a)
            hup(c, b)
            time.sleep(3 * ADVERT_INT)
        assert mon.events_for(VIP) == [], f"the VIP flapped: {mon.lines}\n{c.logs()}"
        assert (a.peer.states(), b.peer.states()) == states, c.logs()
        assert a.state() == "MASTER" and b.state() == "BACKUP"
        gaps = advert_gaps(c, cap, a.node.ipv4.split("/")[0])
        assert len(gaps) >= 4, f"too few adverts captured: {gaps}"
        assert max(gaps) < 2 * ADVERT_INT, f"an advert was missed around the reload: {gaps}"
        garps = cap.packets(f"arp && arp.src.proto_ipv4 == {VIP}", fields=("frame.number",))
        assert garps == [], f"the reload sent gratuitous ARPs: {garps}"
        assert "0 changed, 0 restarted, 0 added, 0 removed" in a.peer.log(), c.logs()


def test_new_vip_on_master_only_then_priority_moves_mastership(topo: Topology) -> None:
    with _started(topo) as c:
        a, b = c["a"], c["b"]
        write_conf(c, a, vip_count=2)
        write_conf(c, b, vip_count=2)
        with monitor(topo, a) as mon:
            hup(c, a)
            hup(c, b)
            c._wait("the new VIP on a", lambda: NEW_VIP in addresses(c, a), TIMEOUT)
        assert mon.events_for(VIP) == [], f"the old VIP flapped: {mon.lines}"
        assert [ln for ln in mon.events_for(NEW_VIP) if ln.startswith("Deleted")] == []
        assert NEW_VIP not in addresses(c, b) and VIP not in addresses(c, b)
        assert a.state() == "MASTER" and b.state() == "BACKUP"
        assert "adding VIP 198.18.0.101/24" in a.peer.log()

        # Raise b above a: b preempts a (RFC 5798 6.4.2), both VIPs move.
        write_conf(c, b, priority=200, vip_count=2)
        hup(c, b)
        c.wait_master(TIMEOUT, expect="b")
        c._wait("both VIPs on b", lambda: {VIP, NEW_VIP} <= addresses(c, b), TIMEOUT)
        c._wait("no VIP on a", lambda: not {VIP, NEW_VIP} & addresses(c, a), TIMEOUT)
        assert "Changing effective priority from 100 to 200" in b.peer.log(), c.logs()


def test_invalid_file_keeps_running_config(topo: Topology) -> None:
    with _started(topo) as c:
        a = c["a"]
        good = a.conf.read_text()
        # An unclosed vrrp_instance block: an error with file:line.
        a.conf.write_text(good.rstrip().rstrip("}") + "\n    priority 10\n")
        states = a.peer.states()
        with monitor(topo, a) as mon:
            hup(c, a, expect_ok=False)
            time.sleep(3 * ADVERT_INT)
        log = a.peer.log()
        assert re.search(rf"{re.escape(str(a.conf))}:\d+: error: ", log), log
        assert "keeping the running one" in log
        assert mon.events_for(VIP) == []
        assert a.peer.states() == states and a.state() == "MASTER"
        assert VIP in addresses(c, a)
        # Fixed again: the next HUP reloads normally and still changes nothing.
        a.conf.write_text(good)
        hup(c, a)
        assert a.state() == "MASTER" and c["b"].state() == "BACKUP"


VI_2 = """
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    advert_int 0.5
    virtual_ipaddress {
        198.18.0.110/24
    }
}
"""


def test_added_then_removed_instance(topo: Topology) -> None:
    with _started(topo) as c:
        a = c["a"]
        with monitor(topo, a) as mon:
            write_conf(c, a, extra_instance=VI_2)
            hup(c, a)
            # Alone on its VRID, VI_2 becomes master after Master_Down_Interval.
            c._wait("VI_2 master on a", lambda: a.peer.state("VI_2") == "MASTER", TIMEOUT)
            c._wait("VI_2's VIP on a", lambda: "198.18.0.110" in addresses(c, a), TIMEOUT)
            assert "(VI_2) added to the configuration" in a.peer.log()

            cap = c.bridge_capture("ip proto 112")
            with cap:
                write_conf(c, a)
                hup(c, a)
                c._wait("VI_2's VIP gone", lambda: "198.18.0.110" not in addresses(c, a), TIMEOUT)
        assert "(VI_2) removed from the configuration" in a.peer.log()
        # RFC 5798 6.4.3: a master that stops sends priority 0.
        zero = cap.packets("vrrp.prio == 0 && vrrp.virt_rtr_id == 52", fields=("frame.number",))
        assert zero, "no priority 0 advert from the removed master instance"
        assert mon.events_for(VIP) == [], f"VI_1's VIP flapped: {mon.lines}"
        assert a.peer.states("VI_1") == ["BACKUP", "MASTER"], a.peer.log()
