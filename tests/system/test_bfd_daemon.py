"""The BFD child for real: two daemons in namespaces joined by a bridge, real UDP on
3784, the real parent with its event pipes.

Node `a` runs the fastha parent with its real BFD child and the signal-obeying stub
for the VRRP and checker children (`fastha.runtime.child sleep`): a stub lists, in its
`status`, every record that came down its BFD pipe, so the test sees what a consumer
gets without the VRRP child's track_bfd. Node `b` is the peer: `fastha daemon` (only its
BFD child runs: the file has nothing else), or keepalived 2.2.7 itself, which proves
the test tells a working session from a broken one against an independent BFD.

Sessions: `P4` (IPv4, `vrrp`: only the VRRP child hears of it) and `P6` (IPv6, neither
keyword: both hear). Nothing here measures time; the intervals are loose (20 ms x 5)
so a busy CI host does not flap the sessions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastha.bench.daemons import keepalived_binary
from fastha.runtime.control import ControlError, request_sync
from tests.support.netns import PYTHON, Topology
from tests.support.prereq import need_root
from tests.support.wait import wait_for

pytestmark = pytest.mark.system

DEADLINE = 20.0  # generous: nothing here measures time
A4, B4, A6, B6 = "198.18.40.1", "198.18.40.2", "2001:db8:40::1", "2001:db8:40::2"
EXPIRED = 1  # RFC 5880 diag: Control Detection Time Expired

PARENT = """
import json, logging, sys
from fastha.config.loader import load
from fastha.daemon.supervisor import SupervisorOptions, run_supervisor
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
options = SupervisorOptions(**json.loads(sys.argv[1]))
result = load(options.config_file, options.config_id)
assert result.config is not None, [str(d) for d in result.diagnostics]
sys.exit(run_supervisor(options, result.config))
"""


def conf(router: str, peer4: str, src4: str, peer6: str) -> str:
    return f"""global_defs {{
  router_id {router}
}}
bfd_instance P4 {{
  neighbor_ip {peer4}
  source_ip {src4}
  min_rx 20
  min_tx 20
  multiplier 5
  vrrp
}}
bfd_instance P6 {{
  neighbour_ip {peer6}
  min_rx 20
  min_tx 20
  multiplier 5
}}
"""


class Node:
    """A daemon in one namespace: its files in `tmp/name`, its control socket."""

    def __init__(self, topo: Topology, tmp: Path, name: str, text: str) -> None:
        self.topo, self.name = topo, name
        self.dir = tmp / name
        self.dir.mkdir()
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(text)
        self.control = str(self.dir / "run" / "control.sock")
        self.log = self.dir / "daemon.log"
        self.proc: subprocess.Popen[Any] | None = None

    def _popen(self, *cmd: str) -> None:
        with self.log.open("a") as out:
            self.proc = self.topo.popen(
                self.name, *cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def start_parent_with_stubs(self) -> Node:
        """The fastha parent: stub VRRP and checker children, the real BFD child."""
        options = {
            "config_file": str(self.conf),
            "vrrp": True,
            "check": True,
            "bfd": True,
            "pid_file": str(self.dir / "fastha.pid"),
            "vrrp_pid_file": str(self.dir / "vrrp.pid"),
            "checkers_pid_file": str(self.dir / "checkers.pid"),
            "bfd_pid_file": str(self.dir / "bfd.pid"),
            "control_socket": self.control,
            "run_dir": str(self.dir / "run"),
            "backoff_initial": 0.1,
            "stub_children": True,
        }
        self._popen(PYTHON, "-c", PARENT, json.dumps(options))
        return self

    def start_fastha(self, *extra: str) -> Node:
        self._popen(
            PYTHON, "-I", "-m", "fastha.cli.main", "daemon", "-n", "-l", "-D",
            "-f", str(self.conf),
            "-p", str(self.dir / "fastha.pid"),
            "-b", str(self.dir / "bfd.pid"),
            "--control-socket", self.control,
            *extra,
        )  # fmt: skip  # option and value on one line
        return self

    def start_keepalived(self) -> Node:
        exe = keepalived_binary()
        assert exe, "keepalived 2.2.7 is not installed (Debian: apt-get install keepalived)"
        self._popen(
            exe, "-n", "-l", "-D", "-f", str(self.conf),
            "-p", str(self.dir / "keepalived.pid"),
            "-r", str(self.dir / "vrrp.pid"),
            "-c", str(self.dir / "checkers.pid"),
            "-b", str(self.dir / "bfd.pid"),
        )  # fmt: skip  # option and value on one line
        return self

    def kill9(self) -> None:
        """kill -9 of the daemon's whole process group: a crash, no AdminDown."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(DEADLINE)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill9()

    def status(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return request_sync(self.control, "status")  # type: ignore[no-any-return]
        except ControlError:
            return None

    def sessions(self) -> dict[str, dict[str, Any]]:
        status = self.status() or {}
        bfd = status.get("bfd")
        if not isinstance(bfd, dict) or "sessions" not in bfd:
            return {}
        return {s["name"]: s for s in bfd["sessions"]}

    def wait_states(self, want: str, what: str) -> dict[str, dict[str, Any]]:
        def ok() -> dict[str, dict[str, Any]] | None:
            found = self.sessions()
            return found if found and all(s["state"] == want for s in found.values()) else None

        try:
            return wait_for(ok, f"{self.name}: every session {want} ({what})", DEADLINE)  # type: ignore[no-any-return]
        except AssertionError:
            print(self.log.read_text()[-4000:])
            raise

    def events(self, kind: str) -> list[list[Any]]:
        """The records the stub `kind` child got down its pipe: [name, up, diag, sent_ns]."""
        status = self.status() or {}
        child = status.get(kind)
        return list(child.get("bfd_events", [])) if isinstance(child, dict) else []


@pytest.fixture
def lab(topo: Topology, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    need_root()
    topo.node("a", ipv4=f"{A4}/24", ipv6=f"{A6}/64")
    topo.node("b", ipv4=f"{B4}/24", ipv6=f"{B6}/64")
    a = Node(topo, tmp_path, topo["a"].ns, conf("a", B4, A4, B6))
    b = Node(topo, tmp_path, topo["b"].ns, conf("b", A4, B4, A6))
    try:
        yield a, b
    finally:
        for node in (a, b):
            node.terminate()


def last(events: list[list[Any]], name: str) -> list[Any] | None:
    mine = [e for e in events if e[0] == name]
    return mine[-1] if mine else None


def heard(node: Node, kind: str, name: str) -> tuple[bool, int] | None:
    """(up, diag) of the last record the `kind` stub got for session `name`."""
    ev = last(node.events(kind), name)
    return None if ev is None else (bool(ev[1]), int(ev[2]))


@pytest.mark.parametrize("peer", ["fastha", "keepalived"])
def test_sessions_up_down_and_the_consumer_pipes(
    lab: tuple[Node, Node], topo: Topology, peer: str
) -> None:
    a, b = lab
    a.start_parent_with_stubs()
    if peer == "fastha":
        b.start_fastha()
    else:
        b.start_keepalived()

    # Up, IPv4 and IPv6, on both sides.
    up = a.wait_states("Up", f"against {peer}")
    assert up["P4"]["source_port"] >= 49152 and up["P6"]["source_port"] >= 49152
    if peer == "fastha":
        b.wait_states("Up", "the fastha peer")
    # Routed as keepalived routes: P4 names `vrrp` only, P6 neither (both hear).
    wait_for(
        lambda: (
            heard(a, "vrrp", "P4") == heard(a, "vrrp", "P6") == heard(a, "check", "P6") == (True, 0)
        ),
        "Up records down the VRRP and checker pipes",
        DEADLINE,
    )
    assert last(a.events("check"), "P4") is None, a.events("check")

    # A respawned consumer hears every session's state again (the parent drains the
    # pipe and asks the BFD child to replay).
    old_vrrp = a.status()["parent"]["children"]["vrrp"]["pid"]  # type: ignore[index]
    os.kill(old_vrrp, signal.SIGKILL)
    wait_for(
        lambda: (
            (s := a.status())
            and s["parent"]["children"]["vrrp"]["pid"] not in (None, old_vrrp)
            and heard(a, "vrrp", "P4") == (True, 0)
        ),
        "the respawned VRRP stub to get P4 Up again",
        DEADLINE,
    )

    # Link cut: both sessions expire; the consumers hear Down (diag: detection time).
    topo.link_down(topo["b"], port=True)
    down = a.wait_states("Down", "link cut")
    assert {s["local_diag"] for s in down.values()} == {"Control Detection Time Expired"}
    wait_for(
        lambda: heard(a, "vrrp", "P4") == (False, EXPIRED),
        "a Down record for P4 down the VRRP pipe",
        DEADLINE,
    )
    topo.link_up(topo["b"], port=True)
    a.wait_states("Up", "link back")

    # kill -9 of the peer: Down again, no AdminDown from a dead process.
    b.kill9()
    down = a.wait_states("Down", f"{peer} killed")
    assert {s["local_diag"] for s in down.values()} == {"Control Detection Time Expired"}
    assert {s["remote_diag"] for s in down.values()} != {"Administratively Down"}
    wait_for(
        lambda: heard(a, "check", "P6") == (False, EXPIRED),
        "a Down record for P6 down the checker pipe",
        DEADLINE,
    )


def test_sigterm_says_admindown_and_reload_keeps_sessions(lab: tuple[Node, Node]) -> None:
    a, b = lab
    a.start_fastha()
    b.start_fastha()
    before = a.wait_states("Up", "start")
    b.wait_states("Up", "start")

    # SIGHUP with new intervals: the sessions stay Up (same discriminators), a Poll
    # sequence moves both sides to the new interval.
    a.conf.write_text(a.conf.read_text().replace("min_tx 20", "min_tx 30"))
    assert a.proc is not None
    a.proc.send_signal(signal.SIGHUP)

    def renegotiated() -> dict[str, dict[str, Any]] | None:
        now = a.sessions()
        return now if now and all(s["min_tx_us"] == 30_000 for s in now.values()) else None

    after = wait_for(renegotiated, "the reload's new min_tx", DEADLINE)
    wait_for(
        lambda: all(s["detect_time_us"] == 5 * 30_000 for s in b.sessions().values()),
        "the peer's detection time from the new interval (Poll/Final)",
        DEADLINE,
    )
    for name in ("P4", "P6"):
        assert after[name]["state"] == "Up"
        assert after[name]["local_discr"] == before[name]["local_discr"]

    # SIGTERM: AdminDown to the peer, which goes Down for that reason.
    a.terminate()
    down = b.wait_states("Down", "the peer said AdminDown")
    assert {s["local_diag"] for s in down.values()} == {"Neighbor Signaled Session Down"}
    # keepalived's words for it (bfd_state_down), in the peer's log.
    text = b.log.read_text()
    for name in ("P4", "P6"):
        assert (
            f"({name}) Entering Down state (Local diagnostic - Neighbor Signaled Session "
            "Down, Remote diagnostic - Administratively Down)"
        ) in text, text[-3000:]
    assert "(P4) Entering AdminDown state" in a.log.read_text()


def test_no_bfd_option_runs_no_bfd_child(lab: tuple[Node, Node]) -> None:
    a, _b = lab
    a.start_fastha("-B")
    status = wait_for(a.status, "the parent to answer", DEADLINE)
    assert "bfd" not in status["parent"]["children"], status
    assert not (a.dir / "bfd.pid").exists()
