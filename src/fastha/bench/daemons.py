"""One VRRP daemon process in a lab namespace: Debian's keepalived or ``fastha daemon
-P``, started from the same keepalived.conf, in the foreground, logging to the console;
the console goes to one log file. The one implementation under ``fastha lab``,
``fastha bench`` and the tests' peers (tests/support/vrrp_peer.py).

Every (re)start appends a marker line first, so the state of the *current* run is
parsed from the lines after the last marker only. States are read from the log for
orchestration (wait for a master before a trial); measurements never are.

keepalived 2.2.7 is run as ``keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID -c CHK_PID``:
pid files of its own (never /run/keepalived*.pid of a real daemon). Facts seen with it:
- it logs ``(VI_1) Entering MASTER STATE``, as fastha does (keepalived 1.x's
  ``VRRP_Instance(VI_1) Entering MASTER STATE`` is accepted too);
- on SIGTERM it logs ``(VI_1) sent 0 priority`` and ``removing VIPs`` and exits;
- SIGKILL of the process group (parent + VRRP child) leaves its VIPs on the interface,
  as a crashed host would, until the next start removes them (``removing VIPs`` at init).

A daemon started by another invocation (``fastha lab`` reading its state file) is
known by its pid alone; it is its own session leader, so the pid is its group's too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from fastha.bench.topology import LabError, Topology, alive, ns_pids

Impl = Literal["fastha", "keepalived"]
KEEPALIVED = "/usr/sbin/keepalived"
MARKER = "=== fastha lab: start"

# keepalived 2.x and fastha log "(VI_1) Entering MASTER STATE"; keepalived 1.x
# "VRRP_Instance(VI_1) Entering MASTER STATE" (still accepted). Both may add " (init)".
STATE_RE = re.compile(
    r"(?:VRRP_Instance)?\((?P<instance>[^)\s]+)\) Entering (?P<state>MASTER|BACKUP|FAULT) STATE"
)


# keepalived 2.2.7's BFD child and fastha's log "(B1) Entering Up state", "(B1) Entering
# Down state (Local diagnostic - ...)", "(B1) Entering AdminDown state" (lower-case
# "state": VRRP's lines say "STATE").
# ... and both log the session's parameters when they change, ending with
# "     Detection time is 3000 us (was 3000000 us)".
BFD_DETECT_RE = re.compile(r"Detection time is (\d+) us")
BFD_STATE_RE = re.compile(
    r"\((?P<instance>[^)\s]+)\) Entering (?P<state>Up|Down|AdminDown|Init) state"
)


def keepalived_binary() -> str | None:
    return shutil.which("keepalived") or (KEEPALIVED if os.access(KEEPALIVED, os.X_OK) else None)


def keepalived_command(conf: Path, rundir: Path) -> list[str]:
    """keepalived in the foreground, no checker (-P: VRRP, and BFD when the config has a
    bfd_instance), console log, pid files in ``rundir``."""
    exe = keepalived_binary()
    if exe is None:
        raise LabError("keepalived is not installed (Debian: apt-get install keepalived)")
    return [
        exe, "-n", "-l", "-D", "-P", "-f", str(conf),
        "-p", str(rundir / "keepalived.pid"),
        "-r", str(rundir / "vrrp.pid"),
        "-c", str(rundir / "checkers.pid"),
        "-b", str(rundir / "bfd.pid"),
    ]  # fmt: skip  # option and value on one line, as keepalived(8) lists them


def daemon_command(impl: Impl, conf: Path, rundir: Path, *, vrrp: bool = True) -> list[str]:
    """The lab's foreground command line of ``impl`` for ``conf``, no checker (VRRP,
    and BFD when the config has a bfd_instance): this interpreter (-I: isolated)
    running fastha, with its status and pid files in ``rundir``. Without ``vrrp`` (a
    BFD-only lab) fastha gets no -P, so it starts no idle VRRP child (keepalived
    starts none for a config without VRRP instances either way)."""
    if impl == "keepalived":
        return keepalived_command(conf, rundir)
    return [
        sys.executable, "-I", "-m", "fastha.cli.main", "daemon", *(["-P"] if vrrp else []),
        "-n", "-l",
        "-f", str(conf),
        "--json-file", str(rundir / "fastha.json"),
        "-p", str(rundir / "fastha.pid"),
        "-r", str(rundir / "vrrp.pid"),
        "-b", str(rundir / "bfd.pid"),
    ]  # fmt: skip  # option and value on one line, as `fastha daemon --help` lists them


class Daemon:
    """A daemon bound to one namespace of a topology, its log and its run directory."""

    def __init__(
        self,
        topo: Topology,
        ns: str,
        log_path: Path,
        rundir: Path,
        *,
        label: str = "daemon",
        pid: int = 0,
    ) -> None:
        self.topo, self.ns = topo, ns
        self.log_path, self.rundir, self.label = log_path, rundir, label
        self.proc: subprocess.Popen[Any] | None = None
        self._pid = pid  # a daemon started by another invocation
        self.starts = 0
        self.stopped = False  # set by terminate()/kill(): an exit the caller asked for

    # -- process control ----------------------------------------------------------

    def launch(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` in the namespace, console appended to the log after a marker.
        Stale pid files in the run directory go first: keepalived refuses to start
        ("daemon is already running") while a pid in them still exists, e.g. an
        unreaped zombie."""
        if self.running:
            raise LabError(f"{self.label} is already running (pid {self.pid})")
        self.starts += 1
        self.stopped = False
        for pidfile in self.rundir.glob("*.pid"):
            pidfile.unlink(missing_ok=True)
        with self.log_path.open("a") as log:
            log.write(f"{MARKER} #{self.starts}: {' '.join(cmd)}\n")
            log.flush()
            kw.setdefault("stdin", subprocess.DEVNULL)
            self.proc = self.topo.popen(self.ns, *cmd, stdout=log, stderr=subprocess.STDOUT, **kw)
        return self.proc

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else self._pid

    @property
    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(self._pid) and alive(self._pid)

    @property
    def crashed(self) -> bool:
        """It exited although nobody stopped it (a config error, a crash)."""
        return self.proc is not None and not self.stopped and self.proc.poll() is not None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return True
            time.sleep(0.005)
        return not self.running

    def terminate(self, timeout: float = 10) -> bool:
        """SIGTERM (a master sends priority 0 and removes its VIPs) and wait; a daemon
        that ignores it is killed. False then."""
        self.stopped = True
        if not self.pid or not self.running:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self.wait_exit(timeout):
            return True
        self.kill()
        return False

    def kill(self) -> None:
        """kill -9 of the daemon's whole process group: a crash, no goodbye."""
        self.stopped = True
        if not self.pid:
            return
        if self.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self.wait_exit(10)
        # keepalived's VRRP child shares the group; wait until none is left in the netns.
        deadline = time.monotonic() + 5
        while ns_pids(self.ns) and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- observing ----------------------------------------------------------------

    def log(self, *, all_runs: bool = False) -> str:
        """The log of the current run (or of every run)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        if all_runs:
            return text
        i = text.rfind(MARKER)
        return text[i:] if i >= 0 else text

    def tail(self, lines: int = 40) -> str:
        body = "\n".join(self.log().splitlines()[-lines:])
        return f"--- {self.label} log tail ({self.log_path}) ---\n{body}"

    def states(self, instance: str = "VI_1") -> list[str]:
        """Every state the current run of ``instance`` entered, in order."""
        return [m["state"] for m in STATE_RE.finditer(self.log()) if m["instance"] == instance]

    def last_states(self) -> dict[str, str]:
        """Instance -> last logged state of the current run ({} before any, or when the
        daemon is not running)."""
        if not self.running:
            return {}
        return {m["instance"]: m["state"] for m in STATE_RE.finditer(self.log())}

    def state(self, instance: str = "VI_1") -> str:
        """MASTER / BACKUP / FAULT as last logged; INIT before the first transition;
        STOPPED once the process has exited."""
        if not self.running:
            return "STOPPED"
        seen = self.states(instance)
        return seen[-1] if seen else "INIT"

    def bfd_session(self) -> tuple[int, str, int]:
        """The BFD session of a one-session config as logged in the current run: how
        many state lines, the last state ("" before any) and the last Detection Time
        logged (µs, 0 before any; fastha logs it just before "Entering Up" when Up
        brings it, keepalived after; either logs the change back on the way Down)."""
        text = self.log()
        states = list(BFD_STATE_RE.finditer(text))
        detect = BFD_DETECT_RE.findall(text)
        return (
            len(states),
            states[-1]["state"] if states else "",
            int(detect[-1]) if detect else 0,
        )

    def __repr__(self) -> str:
        return self.label
