"""The parent process for real: real children (the signal-obeying stub), real signals,
real pid files, a real datagram socket playing systemd, the real control socket.

The stub child (`fastha.runtime.child sleep`) does nothing but obey signals: it appends
"PID SIGNAME" to a record file for each signal and answers `status` on its socket, so a
test can tell which process got which signal. Root: the control sockets are root only
and one test enters a network namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fastha.runtime.control import ControlError, request_sync
from tests.support.prereq import need_root, need_tool
from tests.support.wait import wait_for as support_wait_for

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
PARENT = """
import json, logging, sys
from fastha.config.loader import load
from fastha.daemon.supervisor import SupervisorOptions, run_supervisor
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
options = SupervisorOptions(**json.loads(sys.argv[1]))
result = load(options.config_file, options.config_id)
assert result.ok, [str(d) for d in result.diagnostics]
sys.exit(run_supervisor(options, result.config))
"""
GOOD = "global_defs {\n  router_id test\n}\n"
BAD = GOOD + "vrrp_instance VI_1 {\n  virtual_router_id 300\n}\n"
DEADLINE = 30.0  # generous: CI machines are busy; nothing here measures time


def wait_for(cond: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    return support_wait_for(cond, what, deadline, 0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours still "exists": look at its state.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


class Daemon:
    """One parent process with stub children, its files in `tmp`."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self.tmp = tmp
        self.conf = tmp / "keepalived.conf"
        if not self.conf.exists():
            self.conf.write_text(GOOD)
        self.record = tmp / "signals.log"
        self.log = tmp / "parent.log"
        self.control = str(tmp / "run" / "control.sock")
        options: dict[str, Any] = {
            "config_file": str(self.conf),
            "config_id": "test",
            "pid_file": str(tmp / "keepalived.pid"),
            "vrrp_pid_file": str(tmp / "vrrp.pid"),
            "checkers_pid_file": str(tmp / "checkers.pid"),
            "control_socket": self.control,
            "run_dir": str(tmp / "run"),
            "stop_timeout": 10.0,
            "backoff_initial": 0.1,
            "backoff_max": 0.4,
            "stub_children": True,
            "stub_args": ["--record", str(self.record)],
        }
        options.update(overrides)
        self.options = options
        self.env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> Daemon:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", PARENT, json.dumps(self.options)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env, **(env or {})},
            )
        return self

    def wait_ready(self) -> dict[str, Any]:
        """Until both (or the one) children answer through the parent."""
        kinds = [k for k in ("vrrp", "check") if self.options.get(k, True)]

        def ready() -> dict[str, Any] | None:
            assert self.proc is not None and self.proc.poll() is None, self.text()
            try:
                status = request_sync(self.control, "status")
            except ControlError:
                return None
            if all(isinstance(status.get(k), dict) and "pid" in status[k] for k in kinds):
                return status
            return None

        return wait_for(ready, "the children to answer")

    def text(self) -> str:
        return self.log.read_text()

    def signals(self) -> list[tuple[int, str]]:
        if not self.record.exists():
            return []
        return [
            (int(pid), name)
            for pid, name in (line.split() for line in self.record.read_text().splitlines())
        ]

    def child_pids(self) -> dict[str, int]:
        status = request_sync(self.control, "status")
        return {k: v["pid"] for k, v in status["parent"]["children"].items() if v["pid"]}

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(DEADLINE)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    need_root()
    made: list[Daemon] = []
    pids: set[int] = set()

    def make(**overrides: Any) -> Daemon:
        d = Daemon(tmp_path, **overrides)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            with contextlib.suppress(Exception):
                pids.update(pid for pid, _ in d.signals())
            d.kill()
        # No stub may outlive its test, whatever happened.
        for line in subprocess.run(
            ["pgrep", "-f", f"--record {tmp_path}"], capture_output=True, text=True
        ).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket playing systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(DEADLINE)
    try:
        yield sock, path
    finally:
        sock.close()


def notified(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_lifecycle_pid_files_readiness_and_clean_stop(
    daemons: Callable[..., Daemon], systemd: tuple[socket.socket, str]
) -> None:
    sock, path = systemd
    d = daemons().start(env={"NOTIFY_SOCKET": path})
    first = notified(sock)
    assert first["READY"] == "1"
    status = d.wait_ready()
    pids = {k: status[k]["pid"] for k in ("vrrp", "check")}
    assert pids == d.child_pids()
    assert status["vrrp"]["role"] == "vrrp" and status["check"]["role"] == "check"
    assert d.proc is not None
    # keepalived's pid files: the pid and a newline.
    assert (d.tmp / "keepalived.pid").read_text() == f"{d.proc.pid}\n"
    assert (d.tmp / "vrrp.pid").read_text() == f"{pids['vrrp']}\n"
    assert (d.tmp / "checkers.pid").read_text() == f"{pids['check']}\n"
    assert os.stat(d.control).st_mode & 0o777 == 0o600
    # The children must not talk to systemd themselves.
    for pid in pids.values():
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"NOTIFY_SOCKET=") for e in env)

    assert d.stop() == 0
    assert notified(sock)["STOPPING"] == "1"
    assert sorted(d.signals()) == sorted((pid, "SIGTERM") for pid in pids.values())
    for pid in pids.values():
        assert not alive(pid)
    for name in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
        assert not (d.tmp / name).exists(), name
    assert not os.path.exists(d.control)


def test_hup_with_a_good_file_signals_each_child_once(
    daemons: Callable[..., Daemon], systemd: tuple[socket.socket, str]
) -> None:
    sock, path = systemd
    d = daemons().start(env={"NOTIFY_SOCKET": path})
    assert notified(sock)["READY"] == "1"
    d.wait_ready()
    pids = d.child_pids()
    assert d.proc is not None
    d.conf.write_text(GOOD.replace("test", "changed"))
    d.proc.send_signal(signal.SIGHUP)
    reloading = notified(sock)
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    assert notified(sock)["READY"] == "1"
    wait_for(lambda: len(d.signals()) == 2, "both children to get SIGHUP")
    assert sorted(d.signals()) == sorted((pid, "SIGHUP") for pid in pids.values())
    assert d.child_pids() == pids
    dump = request_sync(d.control, "dump")
    assert dump["config"]["global_defs"]["router_id"] == "changed"
    # keepalived's data/stats signals are passed on too: USR1 (data) to both, USR2
    # (stats) to the VRRP child only (the checker has no stats file).
    d.proc.send_signal(signal.SIGUSR1)
    d.proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: len(d.signals()) == 5, "USR1 at both children, USR2 at VRRP's")
    for kind, pid in pids.items():
        got = [n for p, n in d.signals() if p == pid]
        want = ["SIGUSR1", "SIGUSR2"] if kind == "vrrp" else ["SIGUSR1"]
        assert got[0] == "SIGHUP" and sorted(got[1:]) == want
    assert d.stop() == 0


def test_hup_with_a_bad_file_keeps_the_old_config_and_leaves_children_alone(
    daemons: Callable[..., Daemon],
) -> None:
    d = daemons().start()
    d.wait_ready()
    pids = d.child_pids()
    assert d.proc is not None
    d.conf.write_text(BAD)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "Reload failed" in d.text(), "the refusal")
    log = d.text()
    # Every error, with file:line.
    assert f"{d.conf}:5: error: virtual_router_id: 300 is out of range" in log
    assert f"{d.conf}:4: error: (VI_1) the virtual router id must be set" in log
    # The same through the control socket, which also answers with the errors.
    outcome = request_sync(d.control, "reload")
    assert outcome["accepted"] is False
    assert any(e.startswith(f"{d.conf}:5: error:") for e in outcome["errors"])
    status = request_sync(d.control, "status")
    assert status["parent"]["refused_reloads"] == 2
    assert status["vrrp"]["signals"] == [] and status["check"]["signals"] == []
    assert d.child_pids() == pids
    assert request_sync(d.control, "dump")["config"]["global_defs"]["router_id"] == "test"
    assert d.signals() == []
    assert d.stop() == 0


def test_children_run_the_validated_config_not_the_file_as_it_is_now(
    daemons: Callable[..., Daemon],
) -> None:
    """The file changes (garbage) after the parent validated it: a child reloading or
    respawned then still runs what the parent accepted, from the snapshot."""
    d = daemons().start()
    status = d.wait_ready()
    assert status["vrrp"]["router_id"] == "test" and status["check"]["router_id"] == "test"
    assert d.proc is not None
    d.conf.write_text(GOOD.replace("test", "changed"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(d.signals()) == 2, "both children to get SIGHUP")
    wait_for(
        lambda: all(request_sync(d.control, "status")[k]["router_id"] == "changed"
                    for k in ("vrrp", "check")),
        "both children to run the new config",
    )  # fmt: skip
    snapshot = d.tmp / "run" / "config.snapshot"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    d.conf.write_text("vrrp_instance VI_1 {\n  virtual_router_id 300\n")  # half-written
    pids = d.child_pids()
    # A child reloading now (a HUP the parent did not validate) keeps the accepted one.
    os.kill(pids["check"], signal.SIGHUP)
    wait_for(lambda: len(d.signals()) == 3, "the checker to get SIGHUP")
    assert request_sync(d.control, "status")["check"]["router_id"] == "changed"
    # A respawned child starts from the snapshot: the daemon does not stop.
    os.kill(pids["vrrp"], signal.SIGKILL)
    new = wait_for(
        lambda: (p := d.child_pids().get("vrrp")) not in (None, pids["vrrp"]) and p,
        "a new VRRP child",
    )
    status = d.wait_ready()
    assert status["vrrp"]["pid"] == new and status["vrrp"]["router_id"] == "changed"
    assert d.proc.poll() is None
    assert d.stop() == 0
    assert not snapshot.exists()


def test_a_killed_child_is_respawned_with_backoff(daemons: Callable[..., Daemon]) -> None:
    d = daemons().start()
    d.wait_ready()
    old = d.child_pids()
    for round_ in range(2):
        before = d.child_pids()["vrrp"]
        os.kill(before, signal.SIGKILL)
        new = wait_for(
            lambda b=before: (p := d.child_pids().get("vrrp")) not in (None, b) and p,
            "a new VRRP child",
        )
        assert (d.tmp / "vrrp.pid").read_text() == f"{new}\n"
        delay = ("0.1", "0.2")[round_]
        assert f"VRRP child (pid {before}) died with status SIGKILL, restarting in {delay} s" in (
            d.text()
        )
    assert d.child_pids()["check"] == old["check"]
    status = d.wait_ready()
    assert status["parent"]["children"]["vrrp"]["restarts"] == 2
    assert d.stop() == 0


def test_dont_respawn_stops_the_daemon_when_a_child_dies(
    daemons: Callable[..., Daemon],
) -> None:
    d = daemons(respawn=False).start()
    d.wait_ready()
    pids = d.child_pids()
    os.kill(pids["check"], signal.SIGKILL)
    assert d.proc is not None
    assert d.proc.wait(DEADLINE) == 1
    assert "not respawning (-R)" in d.text()
    assert not alive(pids["vrrp"])


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(
    daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    record = str(tmp_path / "signals.log")
    d = daemons(check=False, stop_timeout=0.5, stub_args=["--record", record, "--ignore-term"])
    d.start()
    d.wait_ready()
    pid = d.child_pids()["vrrp"]
    assert d.stop() == 0
    assert f"VRRP child (pid {pid}) still running 0.5 s after SIGTERM, killing it" in d.text()
    assert not alive(pid)


def test_killing_the_parent_leaves_no_child_behind(daemons: Callable[..., Daemon]) -> None:
    d = daemons().start()
    d.wait_ready()
    pids = d.child_pids()
    d.kill()
    for pid in pids.values():
        wait_for(lambda p=pid: not alive(p), f"child {pid} to go with its parent")
    # SIGKILL (PR_SET_PDEATHSIG): a crash of the daemon, no goodbye from the children.
    assert d.signals() == []


def test_a_live_pid_file_refuses_a_second_daemon(daemons: Callable[..., Daemon]) -> None:
    d = daemons(vrrp=False).start()
    d.wait_ready()
    second = daemons(vrrp=False, control_socket=str(d.tmp / "other.sock"))
    second.log = d.tmp / "second.log"
    second.start()
    assert second.proc is not None
    assert second.proc.wait(DEADLINE) == 1
    assert "daemon is already running" in second.text()
    assert d.proc is not None
    assert (d.tmp / "keepalived.pid").read_text() == f"{d.proc.pid}\n"
    assert d.stop() == 0


def test_one_child_only(daemons: Callable[..., Daemon]) -> None:
    d = daemons(check=False).start()
    status = d.wait_ready()
    assert set(status["parent"]["children"]) == {"vrrp"}
    assert "check" not in status
    assert not (d.tmp / "checkers.pid").exists()
    assert d.stop() == 0


def test_children_start_in_the_namespace(daemons: Callable[..., Daemon]) -> None:
    need_tool("ip")
    name = f"fhd{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        d = daemons(namespace=name).start()
        status = d.wait_ready()
        inode = os.stat(f"/run/netns/{name}").st_ino
        assert status["vrrp"]["netns"] == inode
        assert status["check"]["netns"] == inode
        assert os.stat("/proc/self/ns/net").st_ino != inode
        assert d.stop() == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_startup_and_shutdown_scripts_run_around_the_children(
    daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {trace}\n')
    script.chmod(0o755)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "global_defs {\n  router_id test\n"
        f'  startup_script "{script} start"\n  shutdown_script "{script} stop"\n'
        "  shutdown_script_timeout 5\n}\n"
    )
    d = daemons().start()
    d.wait_ready()
    assert trace.read_text() == "start\n"
    assert d.stop() == 0
    assert trace.read_text() == "start\nstop\n"


def test_control_socket_is_root_only(daemons: Callable[..., Daemon]) -> None:
    nobody = pwd.getpwnam("nobody")
    # A directory nobody can traverse, so only the socket's own mode and SO_PEERCRED
    # stand between nobody and the daemon.
    shared = Path(tempfile.mkdtemp(prefix="fastha-ctl-", dir="/tmp"))
    shared.chmod(0o755)
    try:
        _root_only(daemons, nobody, str(shared / "control.sock"))
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _root_only(daemons: Callable[..., Daemon], nobody: pwd.struct_passwd, control: str) -> None:
    d = daemons(vrrp=False, control_socket=control).start()
    d.control = control
    d.wait_ready()

    def as_nobody() -> str:
        """Connect from a forked child that became nobody (no exec: the venv is root's)."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                try:
                    request_sync(d.control, "status")
                    answer = "answered"
                except ControlError as exc:
                    answer = str(exc)
                os.write(w, answer.encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as fh:
            answer = fh.read().decode()
        os.waitpid(pid, 0)
        return answer

    assert "Permission denied" in as_nobody()  # mode 0600
    os.chmod(d.control, 0o666)  # a mistaken chmod: SO_PEERCRED still says no
    assert "permission denied: root only" in as_nobody()
    assert d.stop() == 0


def fastha(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "fastha"), *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_status_reload_dump_commands(daemons: Callable[..., Daemon]) -> None:
    d = daemons().start()
    d.wait_ready()
    pids = d.child_pids()
    sock = ["--socket", d.control]

    out = fastha("status", "--json", *sock)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert set(status) == {"parent", "vrrp", "check"}
    assert status["parent"]["children"]["vrrp"]["pid"] == pids["vrrp"]
    assert status["check"]["pid"] == pids["check"]

    out = fastha("status", *sock)
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[1].split()
    assert header == ["CHILD", "PID", "RUNNING", "RESTARTS", "LAST", "EXIT"]
    assert f"vrrp   {pids['vrrp']}" in out.stdout

    d.conf.write_text(BAD)
    out = fastha("reload", *sock)
    assert out.returncode == 1
    assert f"{d.conf}:5: error: virtual_router_id: 300 is out of range" in out.stderr
    assert "reload refused" in out.stderr
    d.conf.write_text(GOOD.replace("test", "again"))
    out = fastha("reload", *sock)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(d.signals()) == 2, "both children to get SIGHUP")

    out = fastha("dump", *sock)
    assert out.returncode == 0, out.stderr
    dump = json.loads(out.stdout)
    assert dump["config"]["global_defs"]["router_id"] == "again"
    assert dump["vrrp"]["role"] == "vrrp"
    assert d.stop() == 0

    out = fastha("status", *sock)
    assert out.returncode == 1
    assert "No such file or directory" in out.stderr


def test_metrics_through_the_parent(daemons: Callable[..., Daemon]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    d = daemons(metrics_listen=f"127.0.0.1:{port}").start()
    d.wait_ready()
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    up = {
        s.labels["child"]: s.value
        for f in text_string_to_metric_families(body.decode())
        if f.name == "fastha_child_up"
        for s in f.samples
    }
    assert up == {"vrrp": 1.0, "check": 1.0}
    assert d.stop() == 0
