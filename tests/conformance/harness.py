"""The differential conformance harness: one scenario, run under keepalived 2.2.7 (the
oracle), under fastha, and mixed; normalised traces diffed field by field.

A run builds a lab on :class:`tests.support.netns.Topology` (the one lab of the test
suite): a bridge and one namespace per node, the same interface names, MACs and
addresses in every run; starts the daemons through :class:`tests.support.vrrp_peer.Peer`
(the same command lines as the interop tests), captures every frame on the bridge,
plays the timeline and, after each step has settled, takes a checkpoint of each node.
:func:`diff` compares two traces; README.md describes the format and the allow-list.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tests.support.netns import Capture, Node, Topology
from tests.support.vrrp_peer import Impl, Peer

HERE = Path(__file__).resolve().parent
ALLOWLIST = HERE / "allowlist.toml"

# Lab addressing: node k (1-based, in scenario order) gets these on eth0.
V4 = "198.18.0.{}"
V6 = "fd00:198:18::{:x}"
MAC = "02:fa:00:00:00:{:02x}"
# A node's extra interfaces (tracked ones, ones a VIP/route names with `dev`): veths
# whose peer (NAMEp) stays in the node,
# eth1 = 198.19.k.1/24, eth2 = 198.19.(100+k).1/24 ...
EXTRA_V4 = "198.19.{}.1/24"

# keepalived's --signum names (lib/signals.c get_signum, keepalived 2.2.7 on Debian).
SIGNALS = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": signal.SIGRTMAX - 1,
    "JSON": signal.SIGRTMIN + 2,
    "INT": signal.SIGINT,
}
# What a signal makes the VRRP child write into $TMPDIR (keepalived's make_tmp_filename).
DUMPS = {"DATA": "keepalived.data", "STATS": "keepalived.stats",
         "STATS_CLEAR": "keepalived.stats", "JSON": "keepalived.json"}  # fmt: skip


# -- scenario description ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a timeline. Build them with the functions below."""

    kind: str
    node: str | None = None
    args: tuple[Any, ...] = ()
    settle: float | None = None  # quiet period override (s)

    def label(self) -> str:
        a = " ".join(str(x) for x in self.args if not isinstance(x, str) or "\n" not in x)
        return " ".join(x for x in (self.kind, self.node or "", a) if x)


def start(*nodes: str, settle: float | None = None) -> Step:
    return Step("start", None, nodes, settle)


def stop(node: str, *, settle: float | None = None) -> Step:
    """SIGTERM: a clean stop (a master sends priority 0)."""
    return Step("stop", node, (), settle)


def kill(node: str) -> Step:
    """kill -9 of the daemon's process group: a crash."""
    return Step("kill", node)


def reload(node: str, conf: str) -> Step:
    """Write ``conf`` (a template) as the node's keepalived.conf, then SIGHUP."""
    return Step("reload", node, (conf,))


def sig(node: str, name: str, settle: float | None = None) -> Step:
    """A signal by keepalived's --signum name (STATS_CLEAR, JSON ...); the dump file it
    makes the daemon write, if any, becomes part of the checkpoint."""
    if name not in SIGNALS:
        raise ValueError(f"unknown signal {name!r}")
    return Step("signal", node, (name,), settle)


def link(node: str, up: bool, iface: str = "eth0", *, port: bool = False) -> Step:
    """An interface down/up; ``port`` takes the node's bridge port down instead (the
    node sees carrier loss)."""
    return Step("link", node, (iface, up, port))


def sh(node: str, *cmd: str, settle: float | None = None) -> Step:
    """Any command in the node's namespace (``ip addr del ...``: a VIP deleted by hand)."""
    return Step("sh", node, cmd, settle)


def iface(node: str, name: str, create: bool = True) -> Step:
    """Create (a veth whose peer NAMEp stays in the node, fixed MACs, 198.19.(200+k).1/24,
    up) or delete the interface ``name``: an interface the config names that appears or
    goes away while the daemon runs (dynamic_interfaces)."""
    return Step("iface", node, (name, create))


def script(node: str, name: str, ok: bool) -> Step:
    """Flip the result of the track script ``<<chk:name>>``."""
    return Step("script", node, (name, ok))


def write_file(node: str, name: str, value: str) -> Step:
    """Write ``value`` into the track_file ``<<file:name>>``."""
    return Step("file", node, (name, value))


def block(node: str, blocked: bool = True) -> Step:
    """Drop (or stop dropping) every frame the node sends, at the bridge: a partition."""
    return Step("block", node, (blocked,))


def wait(seconds: float) -> Step:
    return Step("wait", None, (seconds,), 0.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Node configs (keepalived.conf templates, see README.md) and a timeline."""

    name: str
    nodes: dict[str, str]  # node name -> keepalived.conf template, in lab order
    steps: tuple[Step, ...]
    doc: str = ""
    advert_int: float = 1.0  # sets the default quiet period of a step
    vips: tuple[str, ...] = ("198.18.0.100",)  # addresses whose holder is checked
    extra_ifs: tuple[str, ...] = ()  # dummy interfaces every node gets (eth1 ...)
    mixed: bool = True  # run every mixed role assignment too (multi-node only)
    full_only: bool = False  # only in `scripts/conformance --full`
    # Extra files each node's run directory gets (name -> template), e.g. an include.
    files: dict[str, str] = field(default_factory=dict)
    # A fix with no way to see it from a diff (rare) may name the node whose split brain
    # the mixed runs catch; purely informative.
    catches: str = ""

    @property
    def quiet(self) -> float:
        """How long nothing may change before a step counts as settled: longer than a
        master_down_interval (3 adverts + skew), so a takeover is never cut short, and
        than the garp_master_delay in the configs (default 5 s) + 1 s, so a new master's
        repeat GARP/NA burst falls in the step that made it master."""
        delays = [int(x) for c in self.nodes.values()
                  for x in re.findall(r"garp_master_delay\s+(\d+)", c)]  # fmt: skip
        return max(4 * self.advert_int + 0.6, max(delays or [5]) + 1.0)

    def assignments(self) -> list[dict[str, Impl]]:
        """Every mixed assignment of keepalived/fastha to the nodes."""
        names = list(self.nodes)
        out = []
        for combo in itertools.product(("keepalived", "fastha"), repeat=len(names)):
            if len(set(combo)) > 1:
                out.append(dict(zip(names, combo, strict=True)))  # type: ignore[arg-type]
        return out


# -- template expansion ----------------------------------------------------------------------

TOKEN = re.compile(r"<<([a-z_]+)(?:[.:]([A-Za-z0-9_.-]+))?>>")


def expand(text: str, scen: Scenario, me: str, workdir: Path) -> str:
    """``<<a.ip4>>`` ``<<a.ip6>>`` ``<<me.ip4>>`` ``<<peers.ip4>>`` (the others, one a
    line) ``<<dir>>`` ``<<notify>>`` ``<<fifo>>`` ``<<chk:NAME>>`` ``<<file:NAME>>``."""
    names = list(scen.nodes)

    def addr(who: str, fam: str) -> str:
        k = names.index(me if who == "me" else who) + 1
        return V4.format(10 + k) if fam == "ip4" else V6.format(0x10 + k)

    def sub(m: re.Match[str]) -> str:
        key, arg = m[1], m[2]
        if key == "dir":
            return str(workdir)
        if key == "notify":
            return str(workdir / "notify.sh")
        if key == "fifo":
            return str(workdir / "notify.fifo")
        if key == "chk":
            return str(workdir / f"chk_{arg}.sh")
        if key == "file":
            return str(workdir / f"track_{arg}")
        if key == "peers":
            return "\n".join(addr(n, arg or "ip4") for n in names if n != me)
        if key in names or key == "me":
            return addr(key, arg or "ip4")
        raise ValueError(f"unknown template token {m[0]!r}")

    return TOKEN.sub(sub, text)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=_Named)


def registrar(registry: dict[str, S]) -> Callable[[Callable[[], S]], Callable[[], S]]:
    """A ``@scenario`` decorator filling ``registry`` (VRRP and IPVS scenarios alike): the
    function runs once, its scenario is kept by name, a name used twice is an error."""

    def scenario(fn: Callable[[], S]) -> Callable[[], S]:
        s = fn()
        if s.name in registry:
            raise ValueError(f"scenario {s.name!r} defined twice")
        registry[s.name] = s
        return fn

    return scenario


def global_defs(*extra: str) -> str:
    """The global_defs every scenario node shares (scripts run as root, securely)."""
    lines = ["    enable_script_security", "    script_user root", *(f"    {x}" for x in extra)]
    return "global_defs {\n" + "\n".join(lines) + "\n}\n"


# -- a run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """The trace of one run of a scenario."""

    scenario: str
    impls: dict[str, Impl]
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    phases: list[float] = field(default_factory=list)  # wall-clock start of each step
    frames: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    # adverts are traced per step from the end of its start-up window (phases); GARP/NA
    # from the step's beginning (starts): a start's first announcement is in its window
    starts: list[float] = field(default_factory=list)
    skipped: list[tuple[float, float]] = field(default_factory=list)  # adverts not traced
    end: float = float("inf")

    @property
    def label(self) -> str:
        return "+".join(f"{n}:{'K' if i == 'keepalived' else 'F'}" for n, i in self.impls.items())

    def masters(self) -> list[list[str]]:
        return [sorted(n for n, s in cp["nodes"].items() if s["state"] == "MASTER")
                for cp in self.checkpoints]  # fmt: skip

    def holders(self) -> list[list[str]]:
        return [cp["vip_holders"] for cp in self.checkpoints]

    def traced(self) -> list[dict[str, Any]]:
        """The frames of the timeline: before the teardown, outside start-up windows."""
        return [f for f in self.frames if f["t"] < self.end
                and not any(a <= f["t"] < b for a, b in self.skipped)]  # fmt: skip

    def trace(self) -> dict[str, Any]:
        """The normalised trace diffed between implementations."""
        return {
            "checkpoints": [
                {k: v for k, v in cp.items() if k not in ("t",)} for cp in self.checkpoints
            ],
            "adverts": adverts_by_phase(self.traced(), self.phases),
            "announcements": announcements(
                [f for f in self.frames if f["t"] < self.end], self.starts
            ),
        }


class Lab:
    """One run: the topology, the nodes' daemons and files."""

    def __init__(self, scen: Scenario, impls: dict[str, Impl], base: Path) -> None:
        self.scen, self.impls = scen, impls
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.topo = Topology(base)
        self.nodes: dict[str, Node] = {}
        self.peers: dict[str, Peer] = {}
        self.dirs: dict[str, Path] = {}
        self.fifos: dict[str, int] = {}
        self.fifo_buf: dict[str, bytes] = {}
        self.notify_seen: dict[str, int] = {}
        self.sysctl_base: dict[str, dict[str, str]] = {}
        self.cap: Capture | None = None
        self.blocked: set[str] = set()

    # -- building --------------------------------------------------------------------

    def build(self) -> None:
        topo = self.topo
        for k, name in enumerate(self.scen.nodes, start=1):
            node = topo.node(name, ipv4=V4.format(10 + k) + "/24",
                             ipv6=V6.format(0x10 + k) + "/64", up=False)  # fmt: skip
            topo.run(node, "ip", "link", "set", "eth0", "address", MAC.format(k))
            topo.link_up(node)
            for j, ifname in enumerate(self.scen.extra_ifs):
                # a veth whose peer stays in the node (this kernel has no dummy driver)
                topo.run(node, "ip", "link", "add", ifname, "type", "veth",
                         "peer", "name", f"{ifname}p")  # fmt: skip
                # both ends' MACs fixed: the peer's link-local address is in the trace
                topo.run(node, "ip", "link", "set", f"{ifname}p", "address",
                         MAC.format(16 * (j + 1) + 8 + k))  # fmt: skip
                topo.run(node, "ip", "link", "set", f"{ifname}p", "up")
                topo.run(node, "ip", "link", "set", ifname, "address", MAC.format(16 * (j + 1) + k))
                topo.run(node, "ip", "addr", "add", EXTRA_V4.format(100 * j + k), "dev", ifname)
                topo.run(node, "ip", "link", "set", ifname, "up")
            self.nodes[name] = node
            d = self.base / "nodes" / name
            d.mkdir(parents=True, exist_ok=True)
            self.dirs[name] = d
            self._files(name, d)
            conf = d / "keepalived.conf"
            conf.write_text(expand(self.scen.nodes[name], self.scen, name, d))
            peer = Peer(topo, node, self.impls[name], conf, d)
            peer_env = {"TMPDIR": str(d)}
            self.peers[name] = peer
            peer.env = peer_env
            peer.vrrp_only = "bfd_instance" not in self.scen.nodes[name]
            self.sysctl_base[name] = self._sysctls(name)
        # One nft table on the bridge for block(): frames from a node's MAC dropped.
        topo.run(topo.switch, "nft", "-f", "-", input="add table bridge conf\n"
                 "add chain bridge conf drops { type filter hook forward priority 0; }\n")  # fmt: skip

    def _files(self, name: str, d: Path) -> None:
        notify = d / "notify.sh"
        notify.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {d}/notify.log\n')
        notify.chmod(0o755)
        for fname, template in self.scen.files.items():
            (d / fname).write_text(expand(template, self.scen, name, d))
        text = "\n".join([*self.scen.nodes.values(), *self.scen.files.values()])
        for chk in set(re.findall(r"<<chk:([A-Za-z0-9_.-]+)>>", text)):
            s = d / f"chk_{chk}.sh"
            s.write_text(f'#!/bin/sh\nexit "$(cat {d}/chk_{chk}.rc)"\n')
            s.chmod(0o755)
            (d / f"chk_{chk}.rc").write_text("0\n")
        for f in set(re.findall(r"<<file:([A-Za-z0-9_.-]+)>>", text)):
            (d / f"track_{f}").write_text("0\n")
        if "<<fifo>>" in text:
            os.mkfifo(d / "notify.fifo")
            # Read and write ends held by the harness: the daemon's writes never block or
            # fail, and every line is read at the next checkpoint.
            self.fifos[name] = os.open(d / "notify.fifo", os.O_RDWR | os.O_NONBLOCK)
            self.fifo_buf[name] = b""

    # -- acting ------------------------------------------------------------------------

    def apply(self, step: Step) -> None:
        topo, k = self.topo, step.kind
        node = self.nodes.get(step.node or "")
        if k == "start":
            # One after the other, each once it has logged its first state: an election
            # must not depend on how long one implementation takes to start (fastha's
            # Python start-up under load can exceed a master_down_interval).
            for n in step.args or tuple(self.nodes):
                self.peers[n].start()
                self._ready([n])
        elif k == "stop":
            self.peers[step.node].stop()  # type: ignore[index]
        elif k == "kill":
            self.peers[step.node].kill()  # type: ignore[index]
        elif k == "reload":
            d = self.dirs[step.node]  # type: ignore[index]
            (d / "keepalived.conf").write_text(expand(step.args[0], self.scen, step.node, d))  # type: ignore[arg-type]
            self._signal(step.node, signal.SIGHUP)  # type: ignore[arg-type]
        elif k == "signal":
            name = step.args[0]
            dump = DUMPS.get(name)
            if dump:
                (self.dirs[step.node] / dump).unlink(missing_ok=True)  # type: ignore[index]
            self._signal(step.node, SIGNALS[name])  # type: ignore[arg-type]
        elif k == "link":
            iface, up, port = step.args
            assert node is not None
            if port:
                (topo.link_up if up else topo.link_down)(node, port=True)
            else:
                topo.run(node, "ip", "link", "set", iface, "up" if up else "down")
        elif k == "sh":
            topo.run(node, *step.args)  # type: ignore[arg-type]
        elif k == "iface":
            name, create = step.args
            assert node is not None
            if create:
                n = list(self.nodes).index(step.node) + 1  # type: ignore[arg-type]
                topo.run(node, "ip", "link", "add", name, "address", MAC.format(0xE0 + n),
                         "type", "veth", "peer", "name", f"{name}p", "address",
                         MAC.format(0xF0 + n))  # fmt: skip
                topo.run(node, "ip", "addr", "add", EXTRA_V4.format(200 + n), "dev", name)
                topo.run(node, "ip", "link", "set", f"{name}p", "up")
                topo.run(node, "ip", "link", "set", name, "up")
            else:
                topo.run(node, "ip", "link", "del", name)
        elif k == "script":
            name, ok = step.args
            (self.dirs[step.node] / f"chk_{name}.rc").write_text("0\n" if ok else "1\n")  # type: ignore[index]
        elif k == "file":
            name, value = step.args
            (self.dirs[step.node] / f"track_{name}").write_text(f"{value}\n")  # type: ignore[index]
        elif k == "block":
            (blocked,) = step.args
            assert node is not None
            if blocked:
                self.blocked.add(step.node)  # type: ignore[arg-type]
            else:
                self.blocked.discard(step.node)  # type: ignore[arg-type]
            rules = ["flush chain bridge conf drops"]
            rules += [f"add rule bridge conf drops ether saddr {self._mac(n)} drop"
                      for n in sorted(self.blocked)]  # fmt: skip
            topo.run(topo.switch, "nft", "-f", "-", input="\n".join(rules) + "\n")
        elif k == "wait":
            time.sleep(step.args[0])
        else:
            raise ValueError(f"unknown step {k!r}")

    def _mac(self, name: str) -> str:
        return MAC.format(list(self.nodes).index(name) + 1)

    def _signal(self, name: str, signum: int) -> None:
        proc = self.peers[name].proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"{name} is not running")
        os.kill(proc.pid, signum)

    # -- observing ---------------------------------------------------------------------

    def observe(self) -> tuple[tuple[str, str], ...]:
        out = []
        for n, p in self.peers.items():
            out.append((n, p.state()))
        return tuple(out) + tuple(("vip", h) for h in self.vip_holders())

    def vip_holders(self) -> list[str]:
        held = []
        for n, node in self.nodes.items():
            r = self.topo.run(node, "ip", "-j", "addr", "show", check=False)
            have = {a.get("local") for link in json.loads(r.stdout or "[]")
                    for a in link.get("addr_info", [])}  # fmt: skip
            if any(v in have for v in self.scen.vips):
                held.append(n)
        return held

    def _ready(self, names: Iterable[str], limit: float = 20.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(self.peers[n].state() != "INIT" for n in names):
                return
            if any(self.peers[n].crashed for n in names):
                return
            time.sleep(0.02)

    def settle(self, quiet: float, limit: float = 30.0) -> None:
        """Wait until nothing observable changed for ``quiet`` seconds."""
        t_end = time.monotonic() + limit
        last, since = self.observe(), time.monotonic()
        while time.monotonic() < t_end:
            time.sleep(0.1)
            now = self.observe()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def checkpoint(self, step: Step) -> dict[str, Any]:
        nodes = {}
        for n in self.nodes:
            nodes[n] = self._node_state(n, step)
        return {"step": step.label(), "t": time.time(), "nodes": nodes,
                "vip_holders": self.vip_holders()}  # fmt: skip

    def _node_state(self, name: str, step: Step) -> dict[str, Any]:
        peer, node, d = self.peers[name], self.nodes[name], self.dirs[name]
        st: dict[str, Any] = {"state": peer.state(), "running": peer.running}
        if peer.crashed:  # exited on its own (a config it refuses): with which code
            st["exit"] = peer.returncode
        st["addr"] = self._addrs(node)
        st["route"] = self._ipj(node, "route", "show", "table", "all")
        st["route6"] = self._ipj(node, "-6", "route", "show", "table", "all")
        st["rule"] = self._ipj(node, "rule", "show")
        st["rule6"] = self._ipj(node, "-6", "rule", "show")
        st["link"] = self._links(node)
        base = self.sysctl_base[name]
        now = self._sysctls(name)
        st["sysctl"] = {k: v for k, v in now.items() if base.get(k) != v}
        nft = self.topo.run(node, "nft", "list", "ruleset", check=False).stdout
        st["nft"] = [ln.strip() for ln in re.sub(r"\s*# handle \d+", "", nft).splitlines()
                     if ln.strip()]  # fmt: skip
        # notify-script calls since the last checkpoint (order of completion varies)
        log = d / "notify.log"
        lines = log.read_text().splitlines() if log.exists() else []
        seen = self.notify_seen.get(name, 0)
        st["notify"] = _uniq(sorted(lines[seen:]))
        self.notify_seen[name] = len(lines)
        if name in self.fifos:
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(self.fifos[name], 65536):
                    self.fifo_buf[name] += chunk
            *done, rest = self.fifo_buf[name].split(b"\n")
            self.fifo_buf[name] = rest
            st["fifo"] = _uniq([ln.decode(errors="replace") for ln in done])
        if step.kind == "signal" and step.node == name and step.args[0] in DUMPS:
            st["dump"] = read_dump(d / DUMPS[step.args[0]], step.args[0])
        text = json.dumps(st)
        return json.loads(text.replace(str(d), "<<dir>>"))

    def _ipj(self, node: Node, *args: str) -> list[dict[str, Any]]:
        r = self.topo.run(node, "ip", "-j", *args, check=False)
        out = []
        for e in json.loads(r.stdout or "[]"):
            e = {k: v for k, v in e.items() if k not in ("expires", "cacheinfo")}
            out.append(e)
        return sorted(out, key=lambda e: json.dumps(e, sort_keys=True))

    def _addrs(self, node: Node) -> dict[str, list[str]]:
        r = self.topo.run(node, "ip", "-j", "addr", "show", check=False)
        out: dict[str, list[str]] = {}
        for link in json.loads(r.stdout or "[]"):
            items = []
            for a in link.get("addr_info", []):
                flags = sorted(k for k, v in a.items() if v is True)
                label = a.get("label", link["ifname"])
                extra = f" label {label}" if label != link["ifname"] else ""
                scope = a.get("scope")
                items.append(f"{a['local']}/{a['prefixlen']} scope {scope}{extra}"
                             + "".join(f" {f}" for f in flags))  # fmt: skip
            out[link["ifname"]] = sorted(items)
        return out

    def _links(self, node: Node) -> dict[str, dict[str, Any]]:
        r = self.topo.run(node, "ip", "-j", "-d", "link", "show", check=False)
        out = {}
        for link in json.loads(r.stdout or "[]"):
            out[link["ifname"]] = {
                "flags": sorted(link.get("flags", [])),
                "mtu": link.get("mtu"),
                "address": link.get("address"),
                "operstate": link.get("operstate"),
                "kind": (link.get("linkinfo") or {}).get("info_kind"),
            }
        return out

    def _sysctls(self, name: str) -> dict[str, str]:
        r = self.topo.run(self.nodes[name], "sysctl", "-a", "-r",
                          r"^net\.(ipv4\.conf|ipv6\.conf|ipv4\.ip_|ipv4\.neigh|ipv6\.neigh)",
                          check=False)  # fmt: skip
        out = {}
        for ln in r.stdout.splitlines():
            k, _, v = ln.partition(" = ")
            if "stable_secret" in k or k.endswith(".base_reachable_time") or ".lo." in k:
                continue
            out[k] = v
        return out

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> Run:
        run = Run(self.scen.name, dict(self.impls))
        try:
            self.build()
            br = Node(name="bridge", ns=self.topo.switch, ifname="br0", port="")
            self.cap = Capture(self.topo, br, "", self.base / "bridge.pcap").start()
            for step in self.scen.steps:
                t0 = time.time()
                run.phases.append(t0)
                run.starts.append(t0)
                self.apply(step)
                if step.kind == "start":
                    # How long a daemon takes to start is not behaviour to compare (the
                    # benchmarks measure it): the step's frames count from the moment
                    # every node started has logged its first state.
                    run.phases[-1] = time.time()
                    run.skipped.append((t0, run.phases[-1]))
                quiet = self.scen.quiet if step.settle is None else step.settle
                if step.kind != "wait":
                    self.settle(quiet)
                run.checkpoints.append(self.checkpoint(step))
            # The trace ends here: the teardown's own frames are no part of it. No tail
            # is waited out: the last step, as every step, lasted longer than
            # garp_master_delay + 1 s past its last change (Scenario.quiet), so its
            # transition's repeat GARP/NA burst is already in.
            run.end = time.time()
        except Exception as exc:  # recorded: the diff reports it with the logs
            run.error = f"{type(exc).__name__}: {exc}"
            run.end = time.time()
        finally:
            for p in self.peers.values():
                if p.running:
                    with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                        p.stop(timeout=10)
            if self.cap is not None:
                self.cap.stop()
            for fd in self.fifos.values():
                os.close(fd)
            run.logs = {n: p.log(all_runs=True) for n, p in self.peers.items()}
            self.topo.close()
        if self.cap is not None and self.cap.path.exists():
            macs = {MAC.format(k): n for k, n in enumerate(self.scen.nodes, start=1)}
            addrs = {}
            for k, n in enumerate(self.scen.nodes, start=1):
                addrs[V4.format(10 + k)] = n
                addrs[V6.format(0x10 + k)] = n
            run.frames = decode_pcap(self.cap.path, macs, addrs)
        return run


# keepalived.data lines whose value is a time, a timer or an fd: not compared.
DATA_VOLATILE = frozenset(
    ["Last transition", "Master down timer", "Read timeout", "Gratuitous ARP refresh timer",
     "fd_in 12 fd_out", "index", "Delayed state change running"]
)  # fmt: skip


def _uniq(lines: list[str]) -> list[str]:
    """Runs of one line collapsed to one: how often a repeated event (a master hearing
    lower-priority adverts every advert_int) recurs is the step's length, not behaviour."""
    return [ln for i, ln in enumerate(lines) if i == 0 or lines[i - 1] != ln]


def read_dump(path: Path, kind: str) -> Any:
    """A signal's dump file, normalised: JSON as a dict; the stats file as
    {instance: {counter path: int}}; the data file as {"data": {key: [values]}} (its
    "key = value" lines; the keys only one side writes are dropped before the diff)."""
    deadline = time.monotonic() + 3
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not path.exists():
        return None
    text = path.read_text(errors="replace")
    if kind == "JSON":
        try:
            return json.loads(text)
        except ValueError:
            return {"unparsable": True}
    if kind.startswith("STATS"):
        out: dict[str, dict[str, int]] = {}
        inst, section = "", ""
        for ln in text.splitlines():
            if ln.startswith("VRRP Instance: "):
                inst, section = ln.split(": ", 1)[1], ""
                out[inst] = {}
            elif ln.strip().endswith(":"):
                section = ln.strip()[:-1]
            elif ":" in ln and inst:
                k, v = ln.strip().split(":", 1)
                key = f"{section}/{k}" if ln.startswith("    ") else k
                with contextlib.suppress(ValueError):
                    out[inst][key] = int(v)
        return out
    out_d: dict[str, list[str]] = {}
    section = ""
    for ln in text.splitlines():
        if ln.startswith("------<"):
            section = ln
            continue
        # the instances' blocks (fastha's data file has no interface/socket sections)
        if "VRRP Topology" in section and " = " in ln:
            k, v = (x.strip() for x in ln.split(" = ", 1))
            if k not in DATA_VOLATILE:
                out_d.setdefault(k, []).append(v)
    return {"data": out_d}


# -- frames ---------------------------------------------------------------------------------


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def vrrp_checksum_ok(payload: bytes, src: str, dst: str) -> bool:
    """Is the VRRP checksum right for the receiver this copy is addressed to? v2 covers
    the message; v3 adds the pseudo-header of *this* packet's source and destination
    (RFC 5798 5.2.8), so a copy sent to peer B with peer A's bytes fails at B."""
    version = payload[0] >> 4
    if version == 2:
        return _csum(payload) == 0xFFFF
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 112, len(payload))
    else:
        pseudo = s.packed + d.packed + struct.pack("!I3xB", len(payload), 112)
    return _csum(pseudo + payload) == 0xFFFF


def decode_pcap(path: Path, macs: dict[str, str], addrs: dict[str, str]) -> list[dict[str, Any]]:
    """Every VRRP, ARP and neighbour-advert frame on the bridge, decoded by scapy, with
    the sender named by its MAC and the checksum checked as its receiver computes it."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import PcapReader

    out: list[dict[str, Any]] = []
    with PcapReader(str(path)) as rd:
        for pkt in rd:
            if Ether not in pkt:
                continue
            eth = pkt[Ether]
            who = macs.get(eth.src.lower(), eth.src.lower())
            t = float(pkt.time)
            if IP in pkt and pkt[IP].proto == 112:
                ip = pkt[IP]
                payload = bytes(ip.payload)[: max(0, ip.len - ip.ihl * 4)]
                rec = _vrrp(payload, ip.src, ip.dst, addrs)
                rec.update(ttl=ip.ttl, tos=ip.tos, df=bool(ip.flags & 2), ipid0=ip.id == 0)
            elif IPv6 in pkt and pkt[IPv6].nh == 112:
                ip6 = pkt[IPv6]
                payload = bytes(ip6.payload)[: ip6.plen]
                rec = _vrrp(payload, ip6.src, ip6.dst, addrs)
                rec.update(ttl=ip6.hlim, tos=ip6.tc)
            elif ARP in pkt:
                a = pkt[ARP]
                rec = {"kind": "arp", "target": a.psrc, "op": int(a.op), "eth_dst": eth.dst,
                       "hwsrc": a.hwsrc, "hwdst": a.hwdst, "pdst": a.pdst}  # fmt: skip
            elif ICMPv6ND_NA in pkt:
                na = pkt[ICMPv6ND_NA]
                opt = pkt.getlayer(ICMPv6NDOptDstLLAddr)
                rec = {"kind": "na", "target": na.tgt, "R": int(na.R), "S": int(na.S),
                       "O": int(na.O), "dst": pkt[IPv6].dst, "hlim": pkt[IPv6].hlim,
                       "lladdr": opt.lladdr if opt is not None else None}  # fmt: skip
            else:
                continue
            rec["t"], rec["from"] = t, who
            out.append(rec)
    return out


def _vrrp(payload: bytes, src: str, dst: str, addrs: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "vrrp", "to": addrs.get(dst, dst), "src": addrs.get(src, src)}
    if len(payload) < 8:
        rec["malformed"] = len(payload)
        return rec
    v = payload[0] >> 4
    rec.update(version=v, type=payload[0] & 15, vrid=payload[1], prio=payload[2],
               count=payload[3], checksum_ok=vrrp_checksum_ok(payload, src, dst),
               length=len(payload))  # fmt: skip
    fam = 6 if ":" in src else 4
    n = 16 if fam == 6 else 4
    body = payload[8 : 8 + n * payload[3]]
    rec["addrs"] = [str(ipaddress.ip_address(body[i : i + n])) for i in range(0, len(body), n)]
    if v == 2:
        rec["auth_type"], rec["adver_int"] = payload[4], payload[5]
        rec["auth"] = payload[8 + n * payload[3] :].hex()
    else:
        rec["adver_int"] = struct.unpack("!H", payload[4:6])[0] & 0x0FFF
    return rec


TIMED = ("t",)


def adverts_by_phase(frames: list[dict[str, Any]], phases: list[float]) -> list[dict[str, Any]]:
    """Per step, sender and "to DEST prio N": the distinct adverts (every field but time;
    one dict, or a list when several shapes share the key) and, when there are enough,
    their median interval."""
    out: list[dict[str, Any]] = []
    bounds = [*phases, float("inf")]
    for i in range(len(phases)):
        lo, hi = bounds[i], bounds[i + 1]
        senders: dict[str, Any] = {}
        mine = [f for f in frames if f["kind"] == "vrrp" and lo <= f["t"] < hi]
        for who in sorted({f["from"] for f in mine}):
            entry: dict[str, Any] = {}
            groups: dict[str, list[dict[str, Any]]] = {}
            for f in mine:
                if f["from"] == who:
                    groups.setdefault(f"to {f['to']} prio {f.get('prio')}", []).append(f)
            for key, fs in sorted(groups.items()):
                shapes = sorted({json.dumps({k: v for k, v in f.items() if k not in TIMED},
                                            sort_keys=True) for f in fs})  # fmt: skip
                got = [json.loads(x) for x in shapes]
                e: dict[str, Any] = {"shape": got[0] if len(got) == 1 else got}
                ts = sorted(f["t"] for f in fs)
                gaps = [b - a for a, b in itertools.pairwise(ts)]
                if len(gaps) >= 3:
                    e["interval"] = round(statistics.median(gaps), 3)
                entry[key] = e
            senders[who] = entry
        out.append(senders)
    return out


def _announces(f: dict[str, Any]) -> bool:
    if f["kind"] == "na":
        return not f["S"]
    return f["target"] == f.get("pdst") and f["eth_dst"] == "ff:ff:ff:ff:ff:ff"


def announcements(
    frames: list[dict[str, Any]], phases: list[float], gap: float = 0.5
) -> list[dict[str, Any]]:
    """Per step and (sender, address): the GARP / unsolicited NA bursts (frames closer
    than ``gap`` apart) with their count, the spacing inside them and the pause since
    the previous burst of the step, and every distinct frame shape. A step lasts longer
    than garp_master_delay + 1 s (Scenario.quiet), so a transition's repeat burst
    falls in the same step as the transition."""
    out: list[dict[str, Any]] = []
    bounds = [*phases, float("inf")]
    ann = [f for f in frames if f["kind"] in ("arp", "na")]
    # ARP requests for other addresses (the kernel resolving a neighbour) are not
    # announcements; a gratuitous ARP announces its own sender address, to everyone.
    # A kernel's unicast ARP reply to a peer's GARP (psrc == pdst == the VIP while both
    # hold it) and a solicited NA (S=1) answer someone; neither daemon sent them.
    ann = [f for f in ann if _announces(f)]
    for i in range(len(phases)):
        mine = [f for f in ann if bounds[i] <= f["t"] < bounds[i + 1]]
        step: dict[str, Any] = {}
        for key in sorted({(f["from"], f["target"]) for f in mine}):
            fs = sorted((f for f in mine if (f["from"], f["target"]) == key),
                        key=lambda f: f["t"])  # fmt: skip
            bursts: list[list[dict[str, Any]]] = []
            for f in fs:
                if bursts and f["t"] - bursts[-1][-1]["t"] < gap:
                    bursts[-1].append(f)
                else:
                    bursts.append([f])
            entry = []
            prev_end = None
            for burst in bursts:
                spacing = [y["t"] - x["t"] for x, y in itertools.pairwise(burst)]
                entry.append({
                    "count": len(burst),
                    "spacing": round(statistics.median(spacing), 3) if spacing else None,
                    "pause": None if prev_end is None else round(burst[0]["t"] - prev_end, 2),
                })  # fmt: skip
                prev_end = burst[-1]["t"]
            shapes = sorted({json.dumps({k: v for k, v in f.items() if k not in TIMED},
                                        sort_keys=True) for f in fs})  # fmt: skip
            step[f"{key[0]} {key[1]}"] = {
                "bursts": entry, "shapes": [json.loads(x) for x in shapes]
            }  # fmt: skip
        out.append(step)
    return out


# -- diff --------------------------------------------------------------------------------------

# Field name -> (absolute, relative) tolerance. Every other field must be equal.
TOLERANCE: dict[str, tuple[float, float]] = {
    "interval": (0.02, 0.1),  # median advert interval
    # between frames of one GARP/NA burst: keepalived -D logs a line per frame, which
    # spreads a back-to-back burst over tens of ms on a loaded host
    "spacing": (0.1, 0.5),
    "pause": (0.6, 0.1),  # between bursts (garp_master_delay, refresh)
}
# Counters in a stats/JSON dump depend on how long each step took.
COUNTER = re.compile(r"\.dump\b.*\.(Advertisements/|Became|Released|Priority Zero/|stats\.)")
COUNTER_TOL = (3, 0.3)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        if not obj:
            out[prefix] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


@dataclass(frozen=True, slots=True)
class Allowed:
    id: str
    path: str  # pattern over flattened paths: `*` matches anything, the rest is literal
    reason: str
    scenarios: tuple[str, ...] = ("*",)

    def matches(self, scenario: str, path: str) -> bool:
        return any(_glob(s, scenario) for s in self.scenarios) and _glob(self.path, path)


def _glob(pattern: str, text: str) -> bool:
    """``*`` matches anything (dots and brackets too); every other character itself, so
    ``checkpoints[*]`` is literal brackets around a wildcard."""
    rx = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(rx, text) is not None


def load_allowlist(path: Path = ALLOWLIST) -> tuple[list[Allowed], list[dict[str, str]]]:
    """(intended trace differences, keywords accepted but not acted on)."""
    data = tomllib.loads(path.read_text())
    diffs = []
    for e in data.get("difference", []):
        if not e.get("reason", "").strip():
            raise ValueError(f"allow-list entry {e.get('id')!r} has no reason")
        diffs.append(Allowed(e["id"], e["path"], e["reason"], tuple(e.get("scenarios", ["*"]))))
    return diffs, list(data.get("not_acted_on", []))


def _close(path: str, a: Any, b: Any) -> bool:
    name = path.rsplit(".", 1)[-1]
    tol = TOLERANCE.get(name)
    if tol is None and COUNTER.search("." + path):
        tol = COUNTER_TOL
    if tol is None or not isinstance(a, int | float) or not isinstance(b, int | float):
        return False
    return abs(a - b) <= max(tol[0], tol[1] * max(abs(a), abs(b)))


def diff(
    scenario: str, oracle: dict[str, Any], other: dict[str, Any], allowed: Iterable[Allowed]
) -> tuple[list[str], set[str]]:
    """Field-by-field differences (keepalived's value first) not allowed; and the ids of
    the allow-list entries that were used. Drop the dump fields only one side writes
    first (json_dump_paths_both)."""
    allowed = list(allowed)
    fa, fb = flatten(oracle), flatten(other)
    problems, used = [], set()
    for path in sorted(set(fa) | set(fb)):
        a, b = fa.get(path, "<absent>"), fb.get(path, "<absent>")
        if a == b or _close(path, a, b):
            continue
        if path.rsplit(".", 1)[-1] in TOLERANCE and "<absent>" in (a, b):
            continue  # a median needs enough frames; their number is the timeline's
        hit = next((e for e in allowed if e.matches(scenario, path)), None)
        if hit is not None:
            used.add(hit.id)
            continue
        problems.append(f"{path}: keepalived {a!r} != fastha {b!r}")
    return problems, used


def spill_adverts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """In place: an advert kind (sender, destination, priority) one run sent in step i
    and the other only in step i-1 or i+1 is a transition that fell on the other side of
    a step boundary (a tracker, a takeover reacting a little sooner or later): not a
    difference. A kind neither run shares nearby still is."""
    n = min(len(a), len(b))
    drop: list[tuple[list[dict[str, Any]], int, str, str]] = []
    for x, y in ((a, b), (b, a)):
        for i in range(n):
            for who, kinds in x[i].items():
                for key in kinds:
                    if key in y[i].get(who, {}):
                        continue
                    near = [j for j in (i - 1, i + 1) if 0 <= j < n]
                    if any(key in y[j].get(who, {}) for j in near):
                        drop.append((x, i, who, key))
    for x, i, who, key in drop:
        x[i].get(who, {}).pop(key, None)
        if who in x[i] and not x[i][who]:
            del x[i][who]


def json_dump_paths_both(oracle: dict[str, Any], other: dict[str, Any]) -> None:
    """Drop the JSON and data-file dump fields only one side writes, in place (the
    issue compares the fields both write)."""
    for cp_a, cp_b in zip(oracle.get("checkpoints", []), other.get("checkpoints", []),
                          strict=False):  # fmt: skip
        for n in cp_a.get("nodes", {}):
            da = cp_a["nodes"][n].get("dump")
            db = cp_b.get("nodes", {}).get(n, {}).get("dump")
            if isinstance(da, list) and isinstance(db, list):
                for ea, eb in zip(da, db, strict=False):
                    _intersect(ea, eb)
            elif isinstance(da, dict) and isinstance(db, dict) and "data" in da:
                _intersect(da["data"], db.get("data"))


def _intersect(a: Any, b: Any) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) ^ set(b):
            a.pop(k, None)
            b.pop(k, None)
        for k in a:
            _intersect(a[k], b[k])


# -- running a scenario --------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    scenario: Scenario
    runs: dict[str, Run]  # label -> run
    problems: list[str]
    used_allowances: set[str]

    def report(self) -> str:
        lines = [f"scenario {self.scenario.name}: {len(self.problems)} problem(s)"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def plans(scen: Scenario, *, mixed: bool = True) -> list[dict[str, Impl]]:
    """All-keepalived (the oracle), all-fastha and, ``mixed``, every mixed assignment."""
    names = list(scen.nodes)
    out: list[dict[str, Impl]] = [
        {n: "keepalived" for n in names},
        {n: "fastha" for n in names},
    ]
    if mixed and scen.mixed and len(names) > 1:
        out += scen.assignments()
    return out


def run_many(
    scenarios: Sequence[Scenario],
    base: Path,
    *,
    mixed: bool = True,
    workers: int = 4,
    allowed: Sequence[Allowed] | None = None,
) -> dict[str, Outcome]:
    """Every run of every scenario in one pool of parallel labs (each its own bridge and
    namespaces), then each scenario's diff and mixed-mode checks."""
    if allowed is None:
        allowed = load_allowlist()[0]
    jobs = [(s, i, p) for s in scenarios for i, p in enumerate(plans(s, mixed=mixed))]

    def one(job: tuple[Scenario, int, dict[str, Impl]]) -> Run:
        s, i, impls = job
        return Lab(s, impls, base / s.name / f"run{i}").run()

    # Longest first (the quiet periods a run waits out at least): a long scenario's runs
    # started last would keep the pool busy on one lab after the others had finished.
    order = sorted(range(len(jobs)), key=lambda j: -least_duration(jobs[j][0]))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {j: pool.submit(one, jobs[j]) for j in order}
        done = [futures[j].result() for j in range(len(jobs))]
    finally:
        # Interrupted: the labs not started yet never start; running ones clean up.
        pool.shutdown(wait=True, cancel_futures=True)
    out = {}
    for s in scenarios:
        runs = [r for (js, _, _), r in zip(jobs, done, strict=True) if js is s]
        out[s.name] = evaluate(s, runs, allowed)
    return out


def least_duration(scen: Scenario) -> float:
    """Seconds a run of ``scen`` waits at least: every step's quiet period (or wait)."""
    return sum(
        st.args[0] if st.kind == "wait" else scen.quiet if st.settle is None else st.settle
        for st in scen.steps
    )


def run_scenario(
    scen: Scenario,
    base: Path,
    *,
    mixed: bool = True,
    workers: int = 4,
    allowed: Sequence[Allowed] | None = None,
) -> Outcome:
    return run_many([scen], base, mixed=mixed, workers=workers, allowed=allowed)[scen.name]


def evaluate(scen: Scenario, runs: list[Run], allowed: Sequence[Allowed]) -> Outcome:
    """The all-fastha trace diffed against the all-keepalived one; every other run must
    elect the masters and the single VIP holder keepalived elected, at every checkpoint."""
    by_label = {r.label: r for r in runs}
    oracle, ours = runs[0], runs[1]
    problems: list[str] = []
    for r in runs:
        if r.error:
            problems.append(f"[{r.label}] run failed: {r.error}")
    if oracle.error:
        problems.append("the keepalived run failed: no oracle\n" + _tail(oracle))
        return Outcome(scen, by_label, problems, set())
    ta, tb = oracle.trace(), ours.trace()
    json_dump_paths_both(ta, tb)
    spill_adverts(ta["adverts"], tb["adverts"])
    found, used = diff(scen.name, ta, tb, allowed)
    problems += [f"[{ours.label}] {p}" for p in found]
    want_m, want_h = oracle.masters(), oracle.holders()
    for r in runs[1:]:
        if r.error:
            continue
        for i, (m, h) in enumerate(zip(r.masters(), r.holders(), strict=False)):
            step = scen.steps[i].label()
            if len(want_h[i]) == 1 and len(h) != 1:
                problems.append(f"[{r.label}] after step {i} ({step}): VIP holders {h}, "
                                f"keepalived: {want_h[i]}")  # fmt: skip
            elif m != want_m[i]:
                problems.append(f"[{r.label}] after step {i} ({step}): masters {m}, "
                                f"keepalived: {want_m[i]}")  # fmt: skip
    if problems:
        problems.append("logs:\n" + "\n".join(_tail(r) for r in runs))
    return Outcome(scen, by_label, problems, used)


def _tail(run: Run, n: int = 25) -> str:
    out = []
    for name, text in run.logs.items():
        body = "\n".join(text.splitlines()[-n:])
        out.append(f"--- [{run.label}] {name} ({run.impls[name]}) ---\n{body}")
    return "\n".join(out)
