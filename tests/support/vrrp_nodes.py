"""Run a virtual router's nodes - keepalived or fastha, in any mix - from one description.

Describe the virtual router once (:class:`Router`) and each node (:class:`NodeSpec`);
:class:`VrrpCluster` builds the namespaces on a :class:`~tests.support.netns.Topology`,
writes ONE keepalived.conf per node (the same file whichever daemon runs it: the
point of fastha), starts the daemons and observes them::

    router = Router(version=3, advert_int=0.2, unicast=True)
    with VrrpCluster(topo, router, [NodeSpec("a", "fastha", 150),
                                    NodeSpec("b", "keepalived", 100)]) as c:
        c.start_all()
        master = c.wait_master(timeout=10)            # exactly one MASTER, others BACKUP
        assert c.vip_holders() == [master]
        assert c.observer_macs() == [master.mac]      # who answers ARP/ND for the VIP
        c.kill(master)                                # kill -9; stop() is SIGTERM
        c.wait_master(timeout=10, expect="b")

Addresses: nodes get 198.18.0.11, .12, ... (fd00:198:18::11, ...), the observer .2,
the VIPs 198.18.0.100 (fd00:198:18::100) and up. ``python -m tests.support.vrrp_nodes
probe IFACE VIP`` is the observer's helper: scapy sends one ARP request (IPv4) or
neighbour solicitation (IPv6) and prints the JSON list of MACs that answered.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.support.netns import PYTHON, Capture, Node, Topology
from tests.support.vrrp_peer import Impl, Peer

State = Literal["MASTER", "BACKUP", "FAULT"]

V4_NET = "198.18.0.{}/24"
V6_NET = "fd00:198:18::{:x}/64"


@dataclass(frozen=True, slots=True)
class TrackScript:
    """A ``vrrp_script`` whose command is run by the daemon (as root)."""

    name: str
    script: str  # full command line; absolute paths (keepalived's script security)
    interval: int = 1  # keepalived 2.2.7: whole seconds (it ignores "0.2" with a warning)
    weight: int = 0  # 0: failing puts the instance in FAULT; else priority +/- weight
    fall: int = 1
    rise: int = 1


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    impl: Impl = "keepalived"
    priority: int = 100
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    nopreempt: bool = False
    preempt_delay: float | None = None
    track_scripts: tuple[TrackScript, ...] = ()
    extra: tuple[str, ...] = ()  # raw lines appended inside vrrp_instance
    root_extra: tuple[str, ...] = ()  # raw lines before vrrp_instance (vrrp_track_process...)

    def __post_init__(self) -> None:
        # keepalived 2.2.7 warns (keepalived -t exit 5) and drops one of them.
        if self.nopreempt and self.preempt_delay is not None:
            raise ValueError("preempt_delay is incompatible with nopreempt")
        if self.nopreempt and self.state == "MASTER":
            raise ValueError("nopreempt needs the initial state BACKUP")


@dataclass(frozen=True, slots=True)
class Router:
    """One virtual router, as every node's keepalived.conf describes it."""

    version: Literal[2, 3] = 2
    family: Literal[4, 6] = 4
    unicast: bool = False
    auth_pass: str | None = None  # PASS authentication (VRRPv2 only)
    auth_type: Literal["PASS", "AH"] = "PASS"  # with auth_pass: PASS or keepalived's AH
    advert_int: float = 1
    vrid: int = 51
    instance: str = "VI_1"
    vip_count: int = 1
    global_extra: tuple[str, ...] = ()  # raw lines appended inside global_defs
    script_user: str | None = "root"  # None: keepalived's default (keepalived_script)

    def __post_init__(self) -> None:
        if self.auth_pass is not None and self.version != 2:
            raise ValueError("VRRPv3 has no authentication (RFC 5798 section 9)")
        if self.version == 2 and self.family == 6:
            raise ValueError("VRRPv2 is IPv4 only; use version 3 for IPv6")

    @property
    def vips(self) -> list[str]:
        """VIPs as CIDR strings. IPv6 starts with a link-local one, as RFC 5798 section
        5.2.9 asks of the first address (keepalived warns otherwise)."""
        if self.family == 4:
            return [V4_NET.format(100 + i) for i in range(self.vip_count)]
        return [f"fe80::{self.vrid:x}:100/64"] + [
            V6_NET.format(0x100 + i) for i in range(self.vip_count)
        ]

    @property
    def vip_addresses(self) -> list[str]:
        return [v.split("/")[0] for v in self.vips]

    @property
    def vip(self) -> str:
        """The first routable VIP: the one the observer probes and pings."""
        return next(a for a in self.vip_addresses if not a.startswith("fe80:"))

    def label(self) -> str:
        return (
            f"v{self.version}-ipv{self.family}-{'unicast' if self.unicast else 'multicast'}"
            f"-{self.auth_type.lower() if self.auth_pass else 'noauth'}"
        )


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def keepalived_conf(router: Router, spec: NodeSpec, me: Node, peers: Sequence[Node]) -> str:
    """The keepalived.conf of one node; valid for keepalived 2.2.7 and for fastha."""
    addr = (lambda n: n.ipv4) if router.family == 4 else (lambda n: n.ipv6)
    out = [
        f"! generated by tests/support/vrrp_nodes.py for node {spec.name} ({router.label()})",
        "global_defs {",
        f"    router_id {spec.name}",
        f"    vrrp_version {router.version}",
        "    enable_script_security",
        *([f"    script_user {router.script_user}"] if router.script_user else []),
        *(f"    {line}" for line in router.global_extra),
        "}",
        "",
    ]
    for ts in spec.track_scripts:
        out += [
            f"vrrp_script {ts.name} {{",
            f'    script "{ts.script}"',
            f"    interval {_fmt_num(ts.interval)}",
            *([f"    weight {ts.weight}"] if ts.weight else []),
            f"    fall {ts.fall}",
            f"    rise {ts.rise}",
            "}",
            "",
        ]
    out += [*spec.root_extra, *([""] if spec.root_extra else [])]
    out += [
        f"vrrp_instance {router.instance} {{",
        f"    state {spec.state}",
        f"    interface {me.ifname}",
        f"    virtual_router_id {router.vrid}",
        f"    priority {spec.priority}",
        f"    advert_int {_fmt_num(router.advert_int)}",
    ]
    if spec.nopreempt:
        out.append("    nopreempt")
    if spec.preempt_delay is not None:
        out.append(f"    preempt_delay {_fmt_num(spec.preempt_delay)}")
    if router.unicast:
        out += [
            f"    unicast_src_ip {addr(me)}",
            "    unicast_peer {",
            *(f"        {addr(p)}" for p in peers),
            "    }",
        ]
    if router.auth_pass is not None:
        out += [
            "    authentication {",
            f"        auth_type {router.auth_type}",
            f"        auth_pass {router.auth_pass}",
            "    }",
        ]
    out += ["    virtual_ipaddress {", *(f"        {v}" for v in router.vips), "    }"]
    if spec.track_scripts:
        out += ["    track_script {", *(f"        {t.name}" for t in spec.track_scripts), "    }"]
    out += [*(f"    {line}" for line in spec.extra), "}", ""]
    return "\n".join(out)


@dataclass(slots=True)
class VrrpNode:
    """A node of the cluster: its namespace, its spec, its daemon."""

    spec: NodeSpec
    node: Node
    conf: Path
    peer: Peer
    cluster: VrrpCluster = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def impl(self) -> Impl:
        return self.spec.impl

    @property
    def mac(self) -> str:
        return self.node.mac

    def state(self) -> str:
        return self.peer.state(self.cluster.router.instance)

    def has_vip(self) -> bool:
        return self.cluster.has_vip(self)

    def __repr__(self) -> str:
        return f"<{self.name}:{self.impl} prio {self.spec.priority}>"


class VrrpCluster:
    """N VRRP nodes and an observer on one topology. Closing it stops every daemon
    (the topology's close() kills whatever is left and deletes the namespaces)."""

    def __init__(
        self,
        topo: Topology,
        router: Router,
        specs: Iterable[NodeSpec],
        *,
        observer: bool = True,
        first_host: int = 11,
    ) -> None:
        self.topo, self.router = topo, router
        specs = list(specs)
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("node names must be unique")
        self.workdir = topo.tmp_path / f"vrrp-{router.label()}-{topo.prefix}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        raw: list[Node] = []
        for i, s in enumerate(specs):
            h = first_host + i
            raw.append(topo.node(s.name, ipv4=V4_NET.format(h), ipv6=V6_NET.format(h)))
        self.observer: Node | None = None
        if observer:
            self.observer = topo.node("obs", ipv4=V4_NET.format(2), ipv6=V6_NET.format(2))
        self.nodes: dict[str, VrrpNode] = {}
        for s, n in zip(specs, raw, strict=True):
            conf = self.workdir / f"{s.name}.conf"
            conf.write_text(keepalived_conf(router, s, n, [p for p in raw if p is not n]))
            peer = Peer(topo, n, s.impl, conf, self.workdir / s.name)
            self.nodes[s.name] = VrrpNode(s, n, conf, peer, self)

    # -- access -------------------------------------------------------------------

    def __getitem__(self, name: str) -> VrrpNode:
        return self.nodes[name]

    def __iter__(self) -> Iterator[VrrpNode]:
        return iter(self.nodes.values())

    def _n(self, node: VrrpNode | str) -> VrrpNode:
        return self.nodes[node] if isinstance(node, str) else node

    # -- control --------------------------------------------------------------------

    def start(self, node: VrrpNode | str) -> VrrpNode:
        n = self._n(node)
        n.peer.start()
        return n

    def start_all(self) -> None:
        for n in self:
            n.peer.start()

    def stop(self, node: VrrpNode | str) -> int:
        """SIGTERM: a clean stop (a master sends priority 0)."""
        return self._n(node).peer.stop()

    def kill(self, node: VrrpNode | str) -> None:
        """kill -9 of the daemon's whole process group."""
        self._n(node).peer.kill()

    def link_down(self, node: VrrpNode | str, *, port: bool = False) -> None:
        self.topo.link_down(self._n(node).node, port=port)

    def link_up(self, node: VrrpNode | str, *, port: bool = False) -> None:
        self.topo.link_up(self._n(node).node, port=port)

    def close(self) -> None:
        for n in self:
            if n.peer.running:
                # stop() kills a daemon that ignores SIGTERM; the topology reaps the rest.
                with contextlib.suppress(AssertionError):
                    n.peer.stop(timeout=5)

    def __enter__(self) -> VrrpCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observing ------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        return {n.name: n.state() for n in self}

    def logs(self) -> str:
        """Every node's current-run log tail, for assertion messages."""
        return "\n".join(n.peer.tail() for n in self)

    def _wait(self, what: str, cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            for n in self:
                if n.peer.crashed:  # it will not reach any state by itself
                    raise AssertionError(
                        f"{n} exited with {n.peer.returncode} while waiting for {what}\n"
                        f"{self.logs()}"
                    )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; states {self.states()}\n"
                    f"{self.logs()}"
                )
            time.sleep(0.05)

    def wait_state(self, node: VrrpNode | str, state: str, timeout: float = 10) -> VrrpNode:
        n = self._n(node)
        self._wait(f"{n} to enter {state}", lambda: n.state() == state, timeout)
        return n

    def masters(self) -> list[VrrpNode]:
        return [n for n in self if n.state() == "MASTER"]

    def wait_master(self, timeout: float = 10, *, expect: VrrpNode | str | None = None) -> VrrpNode:
        """Wait until exactly one running node is MASTER and every other running node is
        BACKUP (or FAULT); ``expect`` also requires which one."""
        want = None if expect is None else self._n(expect)

        def settled() -> bool:
            running = [n for n in self if n.peer.running]
            m = [n for n in running if n.state() == "MASTER"]
            rest_ok = all(n.state() in ("BACKUP", "FAULT") for n in running if n not in m)
            return len(m) == 1 and rest_ok and (want is None or m[0] is want)

        self._wait(f"one master{'' if want is None else f' ({want})'}", settled, timeout)
        return self.masters()[0]

    def has_vip(self, node: VrrpNode | str) -> bool:
        """Whether the node holds every VIP (``ip -j addr`` in its namespace)."""
        n = self._n(node)
        have = {a.get("local") for a in self.topo.addresses(n.node)}
        return all(v in have for v in self.router.vip_addresses)

    def has_any_vip(self, node: VrrpNode | str) -> bool:
        n = self._n(node)
        have = {a.get("local") for a in self.topo.addresses(n.node)}
        return any(v in have for v in self.router.vip_addresses)

    def vip_holders(self) -> list[VrrpNode]:
        return [n for n in self if self.has_any_vip(n)]

    def wait_vip(self, node: VrrpNode | str, timeout: float = 10) -> None:
        n = self._n(node)
        self._wait(f"{n} to hold the VIPs", lambda: self.has_vip(n), timeout)

    def observer_macs(self, vip: str | None = None) -> list[str]:
        """MACs that answer ARP (IPv4) or neighbour solicitation (IPv6) for the VIP, as
        seen from the observer namespace (sorted, lower case)."""
        assert self.observer is not None, "cluster built without an observer"
        vip = vip or self.router.vip
        probe = ("-m", "tests.support.vrrp_nodes", "probe", self.observer.ifname, vip)
        out = self.topo.run(self.observer, PYTHON, *probe, timeout=60)
        return sorted(json.loads(out.stdout.strip().splitlines()[-1]))

    def wait_observer_macs(self, macs: Sequence[str], timeout: float = 10) -> None:
        want = sorted(m.lower() for m in macs)
        seen: list[list[str]] = []

        def ok() -> bool:
            seen.append(self.observer_macs())
            return seen[-1] == want

        try:
            self._wait(f"the VIP answered by {want}", ok, timeout)
        except AssertionError as e:
            raise AssertionError(f"last answers {seen[-1:]}; {e}") from None

    def ping_vip(self, vip: str | None = None, count: int = 1) -> bool:
        assert self.observer is not None, "cluster built without an observer"
        vip = vip or self.router.vip
        fam = "-4" if ipaddress.ip_address(vip).version == 4 else "-6"
        r = self.topo.run(
            self.observer, "ping", fam, "-n", "-c", str(count), "-W", "1", vip, check=False
        )
        return r.returncode == 0

    def bridge_capture(self, bpf: str = "ip proto 112 or ip6 proto 112") -> Capture:
        """An unstarted capture on the switch's bridge. tcpdump puts br0 in promiscuous
        mode, so the bridge hands it every frame, unicast adverts between ports included."""
        sw = Node(name="bridge", ns=self.topo.switch, ifname="br0", port="")
        return Capture(self.topo, sw, bpf, self.workdir / f"bridge-{time.monotonic_ns()}.pcap")


# -- tshark checks ----------------------------------------------------------------------


def vrrp_capture_problems(cap: Capture) -> list[str]:
    """Problems tshark sees in a capture's VRRP packets: expert infos (bad checksum,
    malformed ...) and IP protocol 112 packets it did not decode as VRRP."""
    problems = []
    for p in cap.packets("vrrp && _ws.expert", fields=("frame.number", "_ws.expert.message")):
        problems.append(f"frame {p['frame.number']}: {p.get('_ws.expert.message')}")
    undecoded = cap.packets(
        "(ip.proto == 112 || ipv6.nxt == 112) && !vrrp", fields=("frame.number",)
    )
    problems += [f"frame {p['frame.number']}: not decoded as VRRP" for p in undecoded]
    return problems


# -- prerequisites ------------------------------------------------------------------------


def need_impl(impl: Impl) -> None:
    """Fail (never skip) when an implementation cannot run here."""
    import subprocess

    import pytest

    from tests.support.prereq import need_root, need_tool
    from tests.support.vrrp_peer import command

    need_root()
    need_tool("ip")
    try:
        cmd = command(impl, Path("/dev/null"), Path("/tmp"))
    except FileNotFoundError as e:
        pytest.fail(str(e))
    if impl == "fastha":
        # Fail in a second with the reason, not after every wait times out.
        r = subprocess.run([cmd[0], "daemon", "--help"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            pytest.fail(
                f"`fastha daemon` is not available yet: {(r.stderr or r.stdout).strip()[-300:]}"
            )


# -- observer helper (runs inside the observer namespace) ----------------------------------


def _probe(iface: str, vip: str) -> list[str]:
    from scapy.config import conf

    conf.verb = 0
    from scapy.arch import get_if_hwaddr
    from scapy.layers.inet6 import (
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6NDOptDstLLAddr,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
        in6_getnsma,
        in6_getnsmac,
    )
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp
    from scapy.utils6 import inet_pton

    mac = get_if_hwaddr(iface)
    ip = ipaddress.ip_address(vip)
    if ip.version == 4:
        pkt = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(op=1, hwsrc=mac, pdst=vip)
        ans, _ = srp(pkt, iface=iface, timeout=1, multi=True)
        return sorted({r[ARP].hwsrc.lower() for _, r in ans if ARP in r and r[ARP].op == 2})
    import socket

    nsma = in6_getnsma(inet_pton(socket.AF_INET6, vip))
    dst = socket.inet_ntop(socket.AF_INET6, nsma)
    pkt = (
        Ether(dst=in6_getnsmac(nsma), src=mac)
        / IPv6(dst=dst, hlim=255)
        / ICMPv6ND_NS(tgt=vip)
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )
    ans, _ = srp(pkt, iface=iface, timeout=1, multi=True)
    macs = set()
    for _, r in ans:
        if ICMPv6ND_NA in r:
            opt = r.getlayer(ICMPv6NDOptDstLLAddr)
            macs.add((opt.lladdr if opt is not None else r[Ether].src).lower())
    return sorted(macs)


def main(argv: Sequence[str]) -> int:
    if len(argv) == 3 and argv[0] == "probe":
        print(json.dumps(_probe(argv[1], argv[2])))
        return 0
    print("usage: python -m tests.support.vrrp_nodes probe IFACE VIP", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
