"""The BFD child for real: two daemons in namespaces joined by a bridge, real UDP on
3784, the real parent with its event pipes.

Node `a` runs the fastha parent with its real BFD child and the signal-obeying stub
for the VRRP and checker children (`fastha.runtime.child sleep`): a stub lists, in its
`status`, every record that came down its BFD pipe, so the test sees what a consumer
gets without the VRRP child's track_bfd. Node `b` is the peer: `fastha daemon` (only its
BFD child runs: the file has nothing else), or keepalived 2.2.7 itself, which proves
the test tells a working session from a broken one against an independent BFD.

Sessions: `P4` (IPv4, `vrrp`: only the VRRP child hears of it) and `P6` (IPv6, neither
keyword: both hear). The real VRRP child acting on these records (`track_bfd`, against
keepalived too) is tests/system/test_bfd_track_daemons.py. Nothing here measures time; the intervals are loose (20 ms x 5)
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
from prometheus_client.parser import text_string_to_metric_families

from fastha.bench.daemons import keepalived_binary
from fastha.cli.status import render
from fastha.runtime.control import ControlError, request_sync
from tests.support.netns import PYTHON, Topology
from tests.support.prereq import need_root
from tests.support.wait import wait_for

pytestmark = pytest.mark.system

DEADLINE = 20.0  # generous: nothing here measures time
METRICS_PORT = 9478
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

    def bfd_metrics(self) -> dict[tuple[str, str], float]:
        """The BFD series of one scrape of the daemon's --metrics endpoint (started
        with METRICS), parsed by prometheus_client: {(series, session): value}, the
        state series as "state=<name>"."""
        out = self.topo.run(self.name, PYTHON, "-m", "tests.support.metrics_client", "scrape",
                            "127.0.0.1", str(METRICS_PORT), timeout=30)  # fmt: skip
        got: dict[tuple[str, str], float] = {}
        for fam in text_string_to_metric_families(out.stdout):
            for smp in fam.samples:
                if smp.name.startswith("fastha_bfd_") and "session" in smp.labels:
                    key = smp.name
                    if "state" in smp.labels:
                        key = f"{key}:state={smp.labels['state']}"
                    elif "reason" in smp.labels:
                        key = f"{key}:reason={smp.labels['reason']}"
                    got[key, smp.labels["session"]] = smp.value
        return got

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
        topo.run(b.name, "ip", "link", "set", "lo", "up")
        b.start_fastha("--metrics", f"127.0.0.1:{METRICS_PORT}")
    else:
        b.start_keepalived()

    # Up, IPv4 and IPv6, on both sides.
    up = a.wait_states("Up", f"against {peer}")
    assert up["P4"]["source_port"] >= 49152 and up["P6"]["source_port"] >= 49152
    if peer == "fastha":
        b.wait_states("Up", "the fastha peer")
        # What an operator's Prometheus sees (docs/MONITORING.md).
        m = wait_for(
            lambda: (m := b.bfd_metrics()).get(("fastha_bfd_packets_received_total", "P4")) and m,
            "b's /metrics to show P4 receiving",
            DEADLINE,
        )
        for name in ("P4", "P6"):
            assert m["fastha_bfd_session_up", name] == 1, m
            assert m["fastha_bfd_session_state:state=Up", name] == 1, m
            assert m["fastha_bfd_session_state:state=Down", name] == 0, m
            assert m["fastha_bfd_packets_sent_total", name] > 0, m
            assert m["fastha_bfd_detect_time_seconds", name] == pytest.approx(0.1), m
            assert m["fastha_bfd_dropped_total:reason=TTL", name] == 0, m
    # Routed as keepalived routes: P4 names `vrrp` only, P6 neither (both hear).
    wait_for(
        lambda: (
            heard(a, "vrrp", "P4") == heard(a, "vrrp", "P6") == heard(a, "check", "P6") == (True, 0)
        ),
        "Up records down the VRRP and checker pipes",
        DEADLINE,
    )
    assert last(a.events("check"), "P4") is None, a.events("check")
    # Informational (no timing assertion): the relay's delay, BFD child -> consumer.
    delays = sorted((e[4] - e[3]) // 1000 for e in a.events("vrrp") + a.events("check"))
    print(f"BFD -> consumer relay delay, us: {delays}")

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
    if peer == "fastha":
        b.wait_states("Down", "link cut, the fastha peer")
        # the page is cached for 1 s: scrape until it shows the change
        wait_for(
            lambda: all(
                (m := b.bfd_metrics())["fastha_bfd_session_up", name] == 0
                and m["fastha_bfd_session_state:state=Down", name] == 1
                for name in ("P4", "P6")
            ),
            "b's /metrics to show both sessions Down",
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


def test_sigterm_is_silent_and_reload_keeps_sessions(lab: tuple[Node, Node]) -> None:
    a, b = lab
    # The bfd_* process knobs apply to the BFD child (keepalived's set_process_priorities).
    a.conf.write_text(
        a.conf.read_text().replace(
            "router_id a", "router_id a\n  bfd_priority -7\n  bfd_cpu_affinity 0"
        )
    )
    a.start_fastha()
    b.start_fastha()
    before = a.wait_states("Up", "start")
    b.wait_states("Up", "start")
    # -b: the BFD child's pid file; `fastha status` shows its sessions.
    status = a.status() or {}
    bfd_pid = status["parent"]["children"]["bfd"]["pid"]
    assert (a.dir / "bfd.pid").read_text().split() == [str(bfd_pid)]
    assert os.getpriority(os.PRIO_PROCESS, bfd_pid) == -7
    assert os.sched_getaffinity(bfd_pid) == {0}
    shown = render(status)
    assert any(ln.split()[:4] == ["P6", "Up", "Up", B6] for ln in shown.splitlines()), shown

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

    # SIGTERM: silent, as keepalived 2.2.7 and FRR stop; the peer's detection time
    # takes it Down (an AdminDown would leave the peer's track_bfd Up).
    a.terminate()
    down = b.wait_states("Down", "the peer's detection time")
    assert {s["local_diag"] for s in down.values()} == {"Control Detection Time Expired"}
    # keepalived's words for it (bfd_state_down), in the peer's log.
    text = b.log.read_text()
    for name in ("P4", "P6"):
        assert (
            f"({name}) Entering Down state (Local diagnostic - Control Detection Time Expired"
        ) in text, text[-3000:]
    assert "Entering AdminDown state" not in a.log.read_text()


def test_no_bfd_option_runs_no_bfd_child(lab: tuple[Node, Node]) -> None:
    a, _b = lab
    a.start_fastha("-B")
    status = wait_for(a.status, "the parent to answer", DEADLINE)
    assert "bfd" not in status["parent"]["children"], status
    assert not (a.dir / "bfd.pid").exists()


def test_a_reload_adding_bfd_starts_the_bfd_child(lab: tuple[Node, Node]) -> None:
    """keepalived's parent starts the BFD child on SIGHUP once the file has a
    bfd_instance; the running VRRP child already holds its pipe end."""
    a, b = lab
    text = a.conf.read_text()
    a.conf.write_text(text.split("bfd_instance")[0])  # nothing but global_defs
    a.start_fastha()
    status = wait_for(a.status, "the parent to answer", DEADLINE)
    assert set(status["parent"]["children"]) == {"vrrp"}, status
    b.start_fastha()
    a.conf.write_text(text)
    outcome = request_sync(a.control, "reload")
    assert outcome["accepted"] and outcome.get("started") == ["bfd"], outcome
    a.wait_states("Up", "the BFD child the reload started")
