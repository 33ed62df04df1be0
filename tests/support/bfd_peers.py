"""Real BFD peers in a test namespace: keepalived 2.2.7's BFD child, FRR's bfdd and
fastha's BFD child, each started from a config of its own, read for each session's
state, changed live (new intervals: a Poll sequence), stopped, or killed by pid.

    a = topo.node("a", ipv4="198.18.0.1/24", ipv6="2001:db8::1/64")
    b = topo.node("b", ipv4="198.18.0.2/24", ipv6="2001:db8::2/64")
    ka = make_peer("keepalived", topo, a, sessions(a, b), tmp_path).start()
    frr = make_peer("frr", topo, b, sessions(b, a), tmp_path).start()
    wait_all(("Up",), ka, frr)

A session is named as keepalived names it (its ``bfd_instance``); FRR has no names, so
its sessions are found by (peer, local) address. States read: ``Up``, ``Down``,
``Init``, ``AdminDown`` (RFC 5880's names; keepalived's BFD_STATE_STR, FRR's json
``status`` mapped), ``""`` before anything is known.

Facts learned running them (keepalived 2.2.7, FRR 8.4.4 on Debian 12):
- keepalived -n -l -D with a config holding only ``bfd_instance`` runs the parent and
  its BFD child alone (``Starting BFD child process``); the child logs ``(NAME) Entering
  Up state`` always, ``Entering Down state (Local diagnostic - ...)`` only when leaving
  Up, ``Entering Init state`` never at -D (only with extra detail). So its state is
  read from the log; Init is not seen. On SIGHUP a session whose min_rx/min_tx changed
  starts a Poll sequence (bfd_data.c, bfd_cmp_timers); SIGUSR1 dumps to
  $TMPDIR/keepalived_bfd.data.
- keepalived 2.2.7 sends IPv6 BFD with hop limit **64** unless ``hoplimit`` is set
  (bfd.h BFD_CONTROL_HOPLIMIT; the IPv4 default is 255): FRR drops those as RFC 5881
  GTSM requires ("control-packet: invalid TTL: 64 expected 255") and the session never
  comes Up. The configs here set ``hoplimit 255`` on IPv6 sessions for that reason.
- FRR's bfdd runs without zebra and watchfrr: it retries the zebra socket (``-z``, a
  path of ours that nothing serves) and runs its sessions regardless. It must run as
  user frr (a root bfdd refuses: "user(root) is not part of vty group frrvty"), so its
  directory is a fresh one under /tmp owned by frr. ``-P 0``: no TCP vty;
  ``--bfdctl``/``--vty_socket``/``-i``: every socket and pid file in that directory,
  never /run/frr of an installed FRR. vtysh as root reaches it with ``--vty_socket DIR
  -d bfdd``; a ``peer`` re-entered with new ``transmit-interval``/``receive-interval``
  is changed live with a Poll sequence.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fastha.bench.daemons import Daemon, keepalived_binary
from tests.support.prereq import need_tool
from tests.support.vrrp_peer import fastha_binary

if TYPE_CHECKING:
    from tests.support.netns import Capture, Node, Topology

__all__ = [
    "BFD_STATES",
    "BfdPacket",
    "BfdPeer",
    "FastHaBfd",
    "FrrBfd",
    "Impl",
    "KeepalivedBfd",
    "Session",
    "bfd_packets",
    "decode_problems",
    "log_state",
    "make_peer",
    "sessions",
    "wait_all",
]

Impl = Literal["keepalived", "frr", "fastha"]
BFD_STATES = ("AdminDown", "Down", "Init", "Up")  # RFC 5880 §4.1 state values 0..3
BFDD = "/usr/lib/frr/bfdd"
# What the tests' sessions run at: fast enough that bring-up, Down and Poll take well
# under a second after the 1 s slow start of RFC 5880 §6.8.3, slow enough that a loaded
# 2-core CI host does not fake a Down (both ends were seen stalled ~160 ms at once, at
# 50 ms x 3 a fastha<->fastha session flapped).
MIN_TX_MS = 100
MIN_RX_MS = 100
MULTIPLIER = 4


@dataclass(frozen=True, slots=True)
class Session:
    """One BFD session as one side configures it (times in ms, as keepalived's
    min_rx/min_tx and FRR's receive-/transmit-interval take them)."""

    name: str  # keepalived's bfd_instance name (FRR: only in our records)
    local: str  # source_ip / local-address
    peer: str  # neighbor_ip / peer
    min_tx: int = MIN_TX_MS
    min_rx: int = MIN_RX_MS
    multiplier: int = MULTIPLIER

    @property
    def ipv6(self) -> bool:
        return ":" in self.peer


def sessions(node: Node, peer: Node, **timers: int) -> tuple[Session, ...]:
    """The sessions ``node`` runs towards ``peer``: one per family both have, named
    ``bfd4``/``bfd6`` (the same name on both sides)."""
    out = []
    if node.ipv4 and peer.ipv4:
        out.append(Session("bfd4", node.ipv4, peer.ipv4, **timers))
    if node.ipv6 and peer.ipv6:
        out.append(Session("bfd6", node.ipv6, peer.ipv6, **timers))
    return tuple(out)


class BfdPeer(Daemon):
    """One BFD implementation on one namespace node: its sessions, config, process."""

    impl: Impl
    # Does a SIGTERM make it send AdminDown (RFC 5880 §6.8.16) before it exits?
    admin_down_on_stop: bool = True

    def __init__(
        self, topo: Topology, node: Node, sessions: Sequence[Session], workdir: Path
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.node = node
        self.sessions = {s.name: s for s in sessions}
        self.workdir = workdir
        super().__init__(
            topo,
            node.ns,
            workdir / f"{node.name}-{self.impl}.log",
            self.rundir_for(workdir / f"{node.name}-{self.impl}-run"),
            label=f"<{self.impl} bfd on {node.name}>",
        )

    def rundir_for(self, rundir: Path) -> Path:
        """Where its pid files, sockets and dumps go (one per node and implementation)."""
        rundir.mkdir(exist_ok=True)
        return rundir

    # -- to be provided by each implementation ---------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def state(self, name: str) -> str:
        """The session's state as this implementation reports it now."""
        raise NotImplementedError

    def set_timers(self, name: str, **timers: int) -> None:
        """Change a running session's intervals (min_tx, min_rx, multiplier)."""
        raise NotImplementedError

    # -- common ------------------------------------------------------------------------

    def start(self) -> BfdPeer:
        self.write_config()
        self.launch(self.command(), env=self.environment())
        return self

    def environment(self) -> dict[str, str] | None:
        return None

    def states(self) -> dict[str, str]:
        return {name: self.state(name) for name in self.sessions}

    def wait_state(self, name: str, states: Iterable[str], timeout: float = 15) -> str:
        """Poll until session ``name`` is in one of ``states``; fail naming what was seen,
        with the log's tail, at once if the daemon exits."""
        want = tuple(states)
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            assert self.running, f"{self} exited waiting for {name} {want}\n{self.tail()}"
            seen = self.state(name)
            if seen in want:
                return seen
            time.sleep(0.05)
        raise AssertionError(
            f"{self}: {name} is {seen!r}, not {want}, after {timeout}s\n{self.tail()}"
        )

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM and wait; one that ignores it is killed and fails the test."""
        if not self.terminate(timeout):
            raise AssertionError(f"{self} ignored SIGTERM for {timeout} s\n{self.tail()}")
        return self.returncode

    def close(self) -> None:
        """Kill it if still running (teardown); nothing else is touched."""
        if self.running:
            self.kill()


def _log_states(log: str, pattern: re.Pattern[str]) -> dict[str, str]:
    return {m["name"]: m["state"] for m in pattern.finditer(log)}


def log_state(log: str, name: str) -> str:
    """A BFD session's last state in a keepalived (or fastha) log, keepalived's wording:
    ``(NAME) Entering Up state`` ("" before any)."""
    return _log_states(log, KeepalivedBfd.STATE_RE).get(name, "")


class KeepalivedBfd(BfdPeer):
    """keepalived 2.2.7 with a config of ``bfd_instance`` blocks only: the parent and
    its BFD child, in the foreground, console log, every pid file and dump in our
    directory."""

    impl: Impl = "keepalived"
    # 2.2.7 enters AdminDown only when it cannot open a socket (bfd_scheduler.c); on
    # SIGTERM its BFD child exits without a word and the peer times out.
    admin_down_on_stop = False
    STATE_RE = re.compile(r"\((?P<name>[^)\s]+)\) Entering (?P<state>AdminDown|Down|Init|Up) state")

    @property
    def conf(self) -> Path:
        return self.workdir / f"{self.node.name}-{self.impl}.conf"

    def config_text(self) -> str:
        lines = ["global_defs {", f"    router_id {self.node.name}", "}"]
        for s in self.sessions.values():
            lines += [
                f"bfd_instance {s.name} {{",
                f"    neighbor_ip {s.peer}",
                f"    source_ip {s.local}",
                f"    min_tx {s.min_tx}",
                f"    min_rx {s.min_rx}",
                f"    multiplier {s.multiplier}",
            ]
            if s.ipv6:
                lines.append("    hoplimit 255")  # 2.2.7's IPv6 default is 64 (see above)
            lines.append("}")
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        self.conf.write_text(self.config_text())

    def command(self) -> list[str]:
        exe = keepalived_binary() or need_tool("keepalived")
        r = self.rundir
        return [exe, "-n", "-l", "-D", "-f", str(self.conf),
                "-p", str(r / "keepalived.pid"), "-r", str(r / "vrrp.pid"),
                "-c", str(r / "checkers.pid"), "-b", str(r / "bfd.pid")]  # fmt: skip

    def environment(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.rundir)}  # where SIGUSR1 dumps go

    def state(self, name: str) -> str:
        if not self.running:
            return ""
        return _log_states(self.log(), self.STATE_RE).get(name, "")

    def set_timers(self, name: str, **timers: int) -> None:
        """Rewrite the config with the new timers and reload (SIGHUP to the parent)."""
        self.sessions[name] = replace(self.sessions[name], **timers)
        self.reload()

    def reload(self) -> None:
        self.write_config()
        os.kill(self.pid, signal.SIGHUP)


class FastHaBfd(KeepalivedBfd):
    """fastha's daemon on the same keepalived.conf, run as keepalived is; it logs the
    session states in keepalived's wording, so they are read the same way."""

    impl: Impl = "fastha"
    admin_down_on_stop = False  # silent, as keepalived 2.2.7 (runtime/bfd/session.stop)

    def command(self) -> list[str]:
        exe = fastha_binary()
        if exe is None:
            raise AssertionError("the venv has no fastha: run `bash scripts/install test,bench`")
        r = self.rundir
        return [exe, "daemon", "-n", "-l", "-D", "-f", str(self.conf),
                "-p", str(r / "fastha.pid"), "-r", str(r / "vrrp.pid"),
                "-c", str(r / "checkers.pid"), "-b", str(r / "bfd.pid"),
                "--control-socket", str(r / "control.sock"),
                "--json-file", str(r / "fastha.json"), "--data-file", str(r / "fastha.data"),
                "--stats-file", str(r / "fastha.stats")]  # fmt: skip


class FrrBfd(BfdPeer):
    """FRR's bfdd alone (no zebra, no watchfrr), as user frr, in the foreground, logging
    to stdout; its state read with ``vtysh -d bfdd -c 'show bfd peers json'``."""

    impl: Impl = "frr"
    # 8.4.4 frees its configured sessions on SIGTERM without sending AdminDown (seen on
    # the wire: its last packets say Up; the peer times out). Its AdminDown is `shutdown`.
    admin_down_on_stop = False
    _STATUS: ClassVar[dict[str, str]] = {
        "up": "Up",
        "down": "Down",
        "init": "Init",
        "shutdown": "AdminDown",
    }

    def rundir_for(self, rundir: Path) -> Path:
        # bfdd drops to user frr: pytest's tmp_path (under a 0700 root directory) is out
        # of its reach, so its sockets, pid file and config live in a directory of its own.
        rundir = Path(tempfile.mkdtemp(prefix="fastha-frr-"))
        frr = pwd.getpwnam("frr")
        os.chown(rundir, frr.pw_uid, frr.pw_gid)
        return rundir

    @property
    def conf(self) -> Path:
        return self.rundir / "bfdd.conf"

    def config_text(self) -> str:
        lines = ["bfd"]
        for s in self.sessions.values():
            lines += [f" peer {s.peer} local-address {s.local}", *self._timer_lines(s), " !"]
        return "\n".join([*lines, "!"]) + "\n"

    @staticmethod
    def _timer_lines(s: Session) -> list[str]:
        return [
            f"  transmit-interval {s.min_tx}",
            f"  receive-interval {s.min_rx}",
            f"  detect-multiplier {s.multiplier}",
        ]

    def write_config(self) -> None:
        # A killed bfdd leaves its sockets: vtysh would try the stale one.
        for stale in ("bfdd.vty", "bfdd.sock"):
            (self.rundir / stale).unlink(missing_ok=True)
        self.conf.write_text(self.config_text())
        frr = pwd.getpwnam("frr")
        os.chown(self.conf, frr.pw_uid, frr.pw_gid)

    def command(self) -> list[str]:
        exe = BFDD if os.access(BFDD, os.X_OK) else None
        if exe is None:
            raise AssertionError(f"{BFDD} is missing: run `bash scripts/test` (installs frr)")
        r = self.rundir
        return [exe, "-f", str(self.conf), "-i", str(r / "bfdd.pid"),
                "--vty_socket", str(r), "-P", "0", "-z", str(r / "zserv.api"),
                "--bfdctl", str(r / "bfdd.sock"), "-u", "frr", "-g", "frr",
                "--log", "stdout", "--log-level", "info"]  # fmt: skip

    def vtysh(self, *commands: str) -> str:
        vtysh = need_tool("vtysh")
        argv = [vtysh, "--vty_socket", str(self.rundir), "-d", "bfdd"]
        for c in commands:
            argv += ["-c", c]
        out = self.topo.run(self.ns, *argv, check=False, timeout=15)
        if out.returncode != 0:
            raise AssertionError(f"vtysh {commands} -> {out.returncode}: {out.stdout}{out.stderr}")
        return out.stdout

    def peers(self) -> list[dict[str, Any]]:
        """``show bfd peers json``: one dict per session ([] while bfdd is not serving)."""
        if not self.running or not (self.rundir / "bfdd.vty").exists():
            return []
        try:
            return list(json.loads(self.vtysh("show bfd peers json") or "[]"))
        except AssertionError as e:
            if "failed to connect" in str(e):  # its socket exists, it does not listen yet
                return []
            raise

    def peer_info(self, name: str) -> dict[str, Any]:
        s = self.sessions[name]
        for p in self.peers():
            if p.get("peer") == s.peer and p.get("local") == s.local:
                return p
        return {}

    def state(self, name: str) -> str:
        return self._STATUS.get(str(self.peer_info(name).get("status", "")), "")

    def set_timers(self, name: str, **timers: int) -> None:
        """Re-enter the peer with new timers through vtysh: bfdd changes them live."""
        s = self.sessions[name] = replace(self.sessions[name], **timers)
        cmds = ["configure terminal", "bfd", f"peer {s.peer} local-address {s.local}"]
        self.vtysh(*cmds, *(line.strip() for line in self._timer_lines(s)))

    def admin_down(self, name: str, down: bool = True) -> None:
        """``shutdown`` (AdminDown, RFC 5880 §6.8.16) or ``no shutdown`` of a session."""
        s = self.sessions[name]
        cmds = ["configure terminal", "bfd", f"peer {s.peer} local-address {s.local}"]
        self.vtysh(*cmds, "shutdown" if down else "no shutdown")

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.rundir, ignore_errors=True)


_IMPLS: dict[str, type[BfdPeer]] = {"keepalived": KeepalivedBfd, "frr": FrrBfd, "fastha": FastHaBfd}


def make_peer(
    impl: Impl, topo: Topology, node: Node, sess: Sequence[Session], workdir: Path
) -> BfdPeer:
    return _IMPLS[impl](topo, node, sess, workdir)


def wait_all(states: Iterable[str], *peers: BfdPeer, timeout: float = 15) -> None:
    """Every session of every peer in one of ``states``."""
    want = tuple(states)
    deadline = time.monotonic() + timeout
    for p in peers:
        for name in p.sessions:
            p.wait_state(name, want, timeout=max(0.5, deadline - time.monotonic()))


# -- the wire, as tshark decodes it ----------------------------------------------------

_FIELDS = {
    "time": "frame.time_epoch",
    "src4": "ip.src",
    "src6": "ipv6.src",
    "dst4": "ip.dst",
    "dst6": "ipv6.dst",
    "ttl": "ip.ttl",
    "hlim": "ipv6.hlim",
    "sport": "udp.srcport",
    "dport": "udp.dstport",
    "state": "bfd.sta",
    "diag": "bfd.diag",
    "poll": "bfd.flags.p",
    "final": "bfd.flags.f",
    "mult": "bfd.detect_time_multiplier",
    "my_discr": "bfd.my_discriminator",
    "your_discr": "bfd.your_discriminator",
    "min_tx": "bfd.desired_min_tx_interval",
    "min_rx": "bfd.required_min_rx_interval",
}


@dataclass(frozen=True, slots=True)
class BfdPacket:
    """One BFD control packet as tshark decoded it (intervals in µs, as on the wire)."""

    time: float
    src: str
    dst: str
    ttl: int  # IPv4 TTL or IPv6 hop limit
    sport: int
    dport: int
    state: str
    diag: int
    poll: bool
    final: bool
    mult: int
    my_discr: int
    your_discr: int
    min_tx: int
    min_rx: int


def _int(text: str) -> int:
    text = text.strip()
    return int(text, 16) if text.startswith("0x") else int(text or 0)


def _flag(text: str) -> bool:
    return text.strip() in ("1", "True", "true")


def bfd_packets(cap: Capture) -> list[BfdPacket]:
    """Every BFD control packet of a capture, in order."""
    rows = cap.packets("bfd", fields=tuple(_FIELDS.values()))
    out = []
    for row in rows:
        r = {k: row.get(f, "") for k, f in _FIELDS.items()}
        out.append(
            BfdPacket(
                time=float(r["time"]),
                src=r["src4"] or r["src6"],
                dst=r["dst4"] or r["dst6"],
                ttl=_int(r["ttl"] or r["hlim"]),
                sport=_int(r["sport"]),
                dport=_int(r["dport"]),
                state=BFD_STATES[_int(r["state"])],
                diag=_int(r["diag"]),
                poll=_flag(r["poll"]),
                final=_flag(r["final"]),
                mult=_int(r["mult"]),
                my_discr=_int(r["my_discr"]),
                your_discr=_int(r["your_discr"]),
                min_tx=_int(r["min_tx"]),
                min_rx=_int(r["min_rx"]),
            )
        )
    return out


def decode_problems(cap: Capture) -> list[str]:
    """Packets on the BFD ports that tshark does not decode as BFD, or decodes with an
    expert note (malformed, bad length, bad checksum...): [] when all is clean."""
    ports = "udp.port == 3784 || udp.port == 4784"
    fields = ("frame.number", "udp.srcport", "udp.dstport", "_ws.expert.message")
    problems = []
    for p in cap.packets(f"({ports}) && (!bfd || _ws.expert || _ws.malformed)", fields=fields):
        problems.append(
            f"frame {p['frame.number']} {p['udp.srcport']}->{p['udp.dstport']}: "
            f"{p.get('_ws.expert.message') or 'not decoded as BFD'}"
        )
    return problems
