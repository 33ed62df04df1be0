"""Network-namespace topologies: a switch namespace holding bridge ``br0`` and node
namespaces joined to it by veths. The one implementation under ``fastha lab``,
``fastha bench`` and the system tests (tests/support/netns.py is a thin fixture over it).

    topo = Topology("fh1230").build()            # namespace fh1230sw, bridge br0
    a = topo.node("a", ipv4="198.18.0.11/24")   # namespace fh1230a, eth0 on the bridge
    topo.run(a, "ping", "-c1", "198.18.0.12")
    proc = topo.popen(a, "tcpdump", ...)         # its own session; killed by close()
    topo.close()                                 # kills what runs inside, deletes all

No interface is ever created in the host's namespace: each veth is created inside the
switch namespace with its peer moved straight into the node namespace, so a half-built
topology is cleaned up by deleting namespaces alone. Teardown kills the processes this
topology started (their process groups) and whatever still runs inside its namespaces:
nothing else. Each namespace is reported to ``on_namespace`` as soon as it exists, so
a caller can record it before anything else can fail (the lab's state file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class LabError(RuntimeError):
    """The lab could not be built or a daemon did not reach a state in time."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def ns_pids(ns: str) -> list[int]:
    """Every process in a namespace (``ip netns pids``)."""
    out = ip("netns", "pids", ns, check=False).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list", check=False).stdout.splitlines()]


def alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Place(Protocol):
    """Where a command runs: a namespace and the interface there."""

    @property
    def ns(self) -> str: ...

    @property
    def ifname(self) -> str: ...


@dataclass(slots=True)
class Node:
    """One namespace with one interface (``ifname``) on the shared bridge."""

    name: str  # logical name ("a", "keepalived", "client")
    ns: str  # namespace name (prefixed)
    ifname: str  # interface inside the namespace
    port: str  # its bridge port in the switch namespace
    ipv4: str | None = None  # address without prefix length, handy for sockets
    ipv6: str | None = None
    ipv4_cidr: str | None = None
    ipv6_cidr: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mac(self) -> str:
        return str(_link_json(self.ns, self.ifname)["address"])

    @property
    def ifindex(self) -> int:
        return int(_link_json(self.ns, self.ifname)["ifindex"])

    def link_local(self) -> str:
        """The fe80:: address of ``ifname`` (DAD is off, so it exists once the link is up)."""
        deadline = time.monotonic() + 5
        while True:
            cmd = ("-n", self.ns, "-j", "-6", "addr", "show", "dev", self.ifname, "scope", "link")
            for link in json.loads(ip(*cmd).stdout or "[]"):
                for a in link.get("addr_info", []):
                    if "local" in a:
                        return str(a["local"])
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)  # the kernel assigns it asynchronously once carrier is up
        raise RuntimeError(f"{self.ns}/{self.ifname} has no link-local address")


def _link_json(ns: str, ifname: str) -> dict[str, Any]:
    out = ip("-n", ns, "-j", "link", "show", "dev", ifname)
    return dict(json.loads(out.stdout)[0])


class Topology:
    """A bridge in a switch namespace plus node namespaces. Build with ``build()``;
    always ``close()`` it (closing kills every process left in its namespaces)."""

    def __init__(
        self,
        prefix: str,
        *,
        cwd: str | os.PathLike[str] = "/",
        nodad: bool = False,
        on_namespace: Callable[[str], None] | None = None,
    ) -> None:
        """``prefix`` names everything: ``PREFIXsw`` (the switch), ``PREFIXname`` (a
        node). ``cwd``: where processes start. ``nodad``: addresses usable at once (no
        1-2 s of IPv6 tentative state)."""
        self.prefix = prefix
        self.switch = f"{prefix}sw"
        self.cwd = cwd
        self.nodad = nodad
        self.on_namespace = on_namespace
        self.nodes: dict[str, Node] = {}
        self.namespaces: list[str] = []
        self.procs: dict[int, subprocess.Popen[Any]] = {}

    # -- building -------------------------------------------------------------

    def build(self) -> Topology:
        """The switch namespace and its bridge; torn down again if that fails."""
        try:
            self._add_ns(self.switch)
            bridge = "br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0"
            self.run(self.switch, "ip", "link", "add", *bridge.split())
            self.run(self.switch, "ip", "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def _add_ns(self, ns: str) -> None:
        ip("netns", "add", ns)
        self.namespaces.append(ns)  # registered before anything else can fail
        if self.on_namespace is not None:
            self.on_namespace(ns)
        self.run(ns, "ip", "link", "set", "lo", "up")
        if self.nodad:
            for key in ("all", "default"):
                self.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0")

    def node(
        self,
        name: str,
        *,
        ipv4: str | Sequence[str] | None = None,
        ipv6: str | Sequence[str] | None = None,
        ifname: str = "eth0",
        up: bool = True,
    ) -> Node:
        """A node namespace with ``ifname`` on the bridge and the given addresses
        (CIDR strings; the first of each family is recorded on the Node)."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} already exists")
        ns = f"{self.prefix}{name}"
        port = f"p{len(self.nodes)}"
        self._add_ns(ns)
        veth = f"{port} type veth peer name {ifname} netns {ns}"
        self.run(self.switch, "ip", "link", "add", *veth.split())
        self.run(self.switch, "ip", "link", "set", port, "master", "br0", "up")
        v4 = [ipv4] if isinstance(ipv4, str) else list(ipv4 or ())
        v6 = [ipv6] if isinstance(ipv6, str) else list(ipv6 or ())
        for cidr in v4:
            self.run(ns, "ip", "addr", "add", cidr, "dev", ifname)
        for cidr in v6:
            self.run(ns, "ip", "addr", "add", cidr, "dev", ifname, "nodad")
        node = Node(
            name=name,
            ns=ns,
            ifname=ifname,
            port=port,
            ipv4=v4[0].split("/")[0] if v4 else None,
            ipv6=v6[0].split("/")[0] if v6 else None,
            ipv4_cidr=v4[0] if v4 else None,
            ipv6_cidr=v6[0] if v6 else None,
        )
        self.nodes[name] = node
        if up:
            self.link_up(node)
        return node

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    # -- acting -----------------------------------------------------------------

    @staticmethod
    def ns_of(where: Place | str) -> str:
        return where if isinstance(where, str) else where.ns

    def run(
        self,
        where: Place | str,
        *cmd: str,
        check: bool = True,
        timeout: float | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in a namespace; output captured as text."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns_of(where), *cmd],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=self.cwd,
        )

    def popen(self, where: Place | str, *cmd: str, **kw: Any) -> subprocess.Popen[Any]:
        """Start a background process in a namespace (``ip netns exec`` execs it: same
        pid), in its own session so its whole group can be signalled; close() kills it."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("cwd", self.cwd)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns_of(where), *cmd], **kw)
        self.procs[proc.pid] = proc
        return proc

    def link_down(self, node: Node, *, port: bool = False) -> None:
        """Take the node's interface (or, with ``port``, its bridge port: carrier loss
        seen from the node, as a pulled cable) down."""
        if port:
            self.run(self.switch, "ip", "link", "set", node.port, "down")
        else:
            self.run(node.ns, "ip", "link", "set", node.ifname, "down")

    def link_up(self, node: Node, *, port: bool = False) -> None:
        if port:
            self.run(self.switch, "ip", "link", "set", node.port, "up")
        else:
            self.run(node.ns, "ip", "link", "set", node.ifname, "up")

    def addresses(self, node: Node, ifname: str | None = None) -> list[dict[str, Any]]:
        """``ip -j addr show`` addr_info entries of an interface (default: the node's)."""
        out = self.run(node, "ip", "-j", "addr", "show", "dev", ifname or node.ifname)
        return [a for link in json.loads(out.stdout or "[]") for a in link.get("addr_info", [])]

    # -- teardown ---------------------------------------------------------------

    def close(self, grace: float = 0.0) -> list[str]:
        """Kill everything started here or still running in the namespaces, then delete
        them; with ``grace``, SIGTERM first and up to that many seconds to exit. Safe to
        call twice, after a half-built topology, and on one rebuilt from a record of its
        namespaces (another process). Returns the namespaces deleted."""
        if grace > 0:
            pids = {p for ns in self.namespaces for p in ns_pids(ns)}
            pids |= {pid for pid, proc in self.procs.items() if proc.poll() is None}
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                for proc in self.procs.values():
                    proc.poll()  # reap ours so they stop counting as alive
                time.sleep(0.02)
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        removed = []
        present = set(namespaces())
        for ns in reversed(self.namespaces):
            for pid in ns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if ns in present:
                ip("netns", "del", ns, check=False)
                removed.append(ns)
        self.namespaces.clear()
        return removed

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Capture:
    """tcpdump writing a pcap inside a namespace: kernel receive timestamps, flushed per
    packet (-U) so the file can be read while it runs. ``buffer_kib`` and ``nano`` (the
    bench's: a large ring, nanosecond timestamps) are tcpdump's -B and precision."""

    def __init__(
        self,
        topo: Topology,
        node: Place,
        bpf: str,
        path: Path,
        *,
        buffer_kib: int = 0,
        nano: bool = False,
        settle: float = 0.2,
    ) -> None:
        self.topo, self.node, self.bpf, self.path = topo, node, bpf, path
        self.buffer_kib, self.nano, self.settle = buffer_kib, nano, settle
        self.proc: subprocess.Popen[bytes] | None = None
        self.dropped: int | None = None  # "N packets dropped by kernel", after stop()

    def start(self) -> Capture:
        opts = ["-U", "--immediate-mode"]
        if self.buffer_kib:
            opts += ["-B", str(self.buffer_kib)]
        if self.nano:
            opts += ["--time-stamp-precision", "nano"]
        opts += ["-n", "-i", self.node.ifname, "-w", str(self.path), self.bpf]
        self.proc = self.topo.popen(
            self.node,
            "tcpdump",
            *opts,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # tcpdump prints "listening on" to stderr once the capture is armed.
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise LabError(f"tcpdump did not start in {self.node.ns}: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        time.sleep(self.settle)  # let in-flight frames reach the ring before SIGINT
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        m = re.search(rb"(\d+) packets? dropped by kernel", err or b"")
        self.dropped = int(m.group(1)) if m else None

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
