"""Network-namespace topologies for system tests: a switch namespace with a bridge and
N node namespaces, each joined to it by a veth.

No interface is ever created in the host's namespace: each veth is created inside the
switch namespace with its peer moved straight into the node namespace, so a half-built
topology is cleaned up by deleting namespaces alone. Names carry a per-run prefix
(``fh<pid%1000>``) plus a counter because other engineers run namespace tests at the
same time.

    def test_x(topo: Topology) -> None:
        a = topo.node("a", ipv4="198.18.0.1/24", ipv6="fd00:198:18::1/64")
        b = topo.node("b", ipv4="198.18.0.2/24")
        topo.run(b, "ping", "-c1", "-W1", a.ipv4)
        with topo.capture("obs", "vrrp") as cap:   # observer node running tcpdump
            ...
        cap.packets(...)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_counter = itertools.count()
REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").is_dir() else sys.executable


def run_prefix() -> str:
    """A prefix unique to this test process and topology (fits in IFNAMSIZ with room)."""
    return f"fh{os.getpid() % 1000}{next(_counter)}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass(slots=True)
class Node:
    """One namespace with one interface (``ifname``) on the shared bridge."""

    name: str  # logical name given by the test ("a", "keepalived", "observer")
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
        return _link_json(self.ns, self.ifname)["address"]

    @property
    def ifindex(self) -> int:
        return int(_link_json(self.ns, self.ifname)["ifindex"])

    def link_local(self) -> str:
        """The fe80:: address of ``ifname`` (DAD is off, so it exists once the link is up)."""
        deadline = time.monotonic() + 5
        while True:
            cmd = ("-n", self.ns, "-j", "-6", "addr", "show", "dev", self.ifname, "scope", "link")
            for link in json.loads(_ip(*cmd).stdout or "[]"):
                for a in link.get("addr_info", []):
                    if "local" in a:
                        return str(a["local"])
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)  # the kernel assigns it asynchronously once carrier is up
        raise RuntimeError(f"{self.ns}/{self.ifname} has no link-local address")


def _link_json(ns: str, ifname: str) -> dict[str, Any]:
    out = _ip("-n", ns, "-j", "link", "show", "dev", ifname)
    return json.loads(out.stdout)[0]


class Capture:
    """tcpdump writing a pcap inside a namespace; decode it with tshark afterwards."""

    def __init__(self, topo: Topology, node: Node, bpf: str, path: Path) -> None:
        self.topo, self.node, self.bpf, self.path = topo, node, bpf, path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Capture:
        self.proc = self.topo.popen(
            self.node,
            "tcpdump", "-U", "--immediate-mode", "-n", "-i", self.node.ifname, "-w", str(self.path), self.bpf,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        # tcpdump prints "listening on" to stderr once the capture is armed.
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start in {self.node.ns}: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(0.2)  # let in-flight frames reach the ring before SIGINT
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def packets(self, display_filter: str = "", fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Decode the capture with tshark: one dict per packet (``-T ek``-style layers)
        or, when ``fields`` are given, ``{field: value}`` per packet."""
        cmd = ["tshark", "-r", str(self.path), "-n"]
        if display_filter:
            cmd += ["-Y", display_filter]
        if fields:
            cmd += ["-T", "fields", "-E", "separator=\t"]
            for f in fields:
                cmd += ["-e", f]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            return [dict(zip(fields, ln.split("\t"), strict=False)) for ln in out.splitlines()]
        cmd += ["-T", "json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return [p["_source"]["layers"] for p in json.loads(out or "[]")]

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Topology:
    """A bridge in a switch namespace plus node namespaces. Always ``close()`` it (the
    ``topo`` fixture does); closing kills every process left in its namespaces."""

    def __init__(self, tmp_path: Path | None = None, *, prefix: str | None = None) -> None:
        self.prefix = prefix or run_prefix()
        self.tmp_path = tmp_path or Path("/tmp")
        self.switch = f"{self.prefix}sw"
        self.nodes: dict[str, Node] = {}
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        try:
            self._add_ns(self.switch)
            self._in(self.switch, "ip", "link", "add", "br0", "type", "bridge",
                     "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0")  # fmt: skip
            self._in(self.switch, "ip", "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    # -- building -------------------------------------------------------------

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._namespaces.append(ns)  # registered before anything else can fail
        self._in(ns, "ip", "link", "set", "lo", "up")
        # Addresses are usable at once (no 1-2 s of IPv6 tentative state per test).
        for key in ("all", "default"):
            self._in(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0")

    def _in(self, ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True,
                              capture_output=True, text=True)  # fmt: skip

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
        n = len(self.nodes)
        ns = f"{self.prefix}{name}"
        port = f"p{n}"
        self._add_ns(ns)
        self._in(self.switch, "ip", "link", "add", port, "type", "veth",
                 "peer", "name", ifname, "netns", ns)  # fmt: skip
        self._in(self.switch, "ip", "link", "set", port, "master", "br0", "up")
        v4 = [ipv4] if isinstance(ipv4, str) else list(ipv4 or ())
        v6 = [ipv6] if isinstance(ipv6, str) else list(ipv6 or ())
        for cidr in v4:
            self._in(ns, "ip", "addr", "add", cidr, "dev", ifname)
        for cidr in v6:
            self._in(ns, "ip", "addr", "add", cidr, "dev", ifname, "nodad")
        node = Node(
            name=name, ns=ns, ifname=ifname, port=port,
            ipv4=v4[0].split("/")[0] if v4 else None,
            ipv6=v6[0].split("/")[0] if v6 else None,
            ipv4_cidr=v4[0] if v4 else None,
            ipv6_cidr=v6[0] if v6 else None,
        )  # fmt: skip
        self.nodes[name] = node
        if up:
            self.link_up(node)
        return node

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    # -- acting -----------------------------------------------------------------

    def _ns(self, where: Node | str) -> str:
        return where.ns if isinstance(where, Node) else where

    def run(
        self,
        where: Node | str,
        *cmd: str,
        check: bool = True,
        timeout: float = 30,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in a namespace; output captured as text."""
        return subprocess.run(
            ["ip", "netns", "exec", self._ns(where), *cmd],
            check=check, capture_output=True, text=True, timeout=timeout, input=input,
            cwd=REPO,  # so `python -m tests.support.<helper>` works from any cwd
        )  # fmt: skip

    def popen(self, where: Node | str, *cmd: str, **kw: Any) -> subprocess.Popen[Any]:
        """Start a background process in a namespace; it is killed on close()."""
        # Its own session, so close() can signal the whole group it spawns.
        kw.setdefault("start_new_session", True)
        kw.setdefault("cwd", REPO)
        proc = subprocess.Popen(["ip", "netns", "exec", self._ns(where), *cmd], **kw)
        self._procs.append(proc)
        return proc

    def python(
        self, where: Node | str, code: str, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run Python code (the project venv, fastha importable) inside a namespace."""
        return self.run(where, PYTHON, "-c", code, *args, check=check, timeout=timeout)

    def python_popen(
        self, where: Node | str, code: str, *args: str, **kw: Any
    ) -> subprocess.Popen[Any]:
        return self.popen(where, PYTHON, "-c", code, *args, **kw)

    def link_down(self, node: Node, *, port: bool = False) -> None:
        """Take the node's interface (or, with ``port``, its bridge port: carrier loss
        seen from the node) down."""
        if port:
            self._in(self.switch, "ip", "link", "set", node.port, "down")
        else:
            self._in(node.ns, "ip", "link", "set", node.ifname, "down")

    def link_up(self, node: Node, *, port: bool = False) -> None:
        if port:
            self._in(self.switch, "ip", "link", "set", node.port, "up")
        else:
            self._in(node.ns, "ip", "link", "set", node.ifname, "up")

    def addresses(self, node: Node, ifname: str | None = None) -> list[dict[str, Any]]:
        """``ip -j addr show`` addr_info entries of an interface (default: the node's)."""
        out = self.run(node, "ip", "-j", "addr", "show", "dev", ifname or node.ifname)
        return [a for link in json.loads(out.stdout or "[]") for a in link.get("addr_info", [])]

    def capture(self, where: Node | str, bpf: str = "", name: str | None = None) -> Capture:
        """An unstarted capture on a node (use as a context manager)."""
        node = where if isinstance(where, Node) else self.nodes[where]
        path = self.tmp_path / f"{name or node.name}-{next(_counter)}.pcap"
        return Capture(self, node, bpf, path)

    # -- teardown ---------------------------------------------------------------

    def close(self) -> None:
        """Kill everything started here or still running in the namespaces, then delete
        them. Safe to call twice and after a half-built topology."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        self._namespaces.clear()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def topology(tmp_path: Path | None = None) -> Iterator[Topology]:
    """A topology for use outside pytest fixtures (benchmarks, ad-hoc scripts)."""
    topo: Topology | None = None
    try:
        topo = Topology(tmp_path)
        yield topo
    finally:
        if topo is not None:
            topo.close()
