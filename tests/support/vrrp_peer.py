"""One VRRP daemon process in a namespace: Debian's keepalived or `fastha daemon -P`.

Both are started from the same keepalived.conf, in the foreground, logging to the
console; the console goes to one log file per node. Every (re)start appends a marker
line first, so the state of the *current* run is parsed from the lines after the last
marker only.

keepalived 2.2.7 is run as ``keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID -c CHK_PID``:
pid files of its own (never /run/keepalived*.pid of a real daemon). Facts seen with it:
- it logs ``(VI_1) Entering MASTER STATE``, as fastha does (keepalived 1.x's
  ``VRRP_Instance(VI_1) Entering MASTER STATE`` is accepted too);
- on SIGTERM it logs ``(VI_1) sent 0 priority`` and ``removing VIPs`` and exits;
- SIGKILL of the process group (parent + VRRP child) leaves its VIPs on the interface,
  as a crashed host would, until the next start removes them (``removing VIPs`` at init).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tests.support.netns import Node, Topology

Impl = Literal["keepalived", "fastha"]
IMPLS: tuple[Impl, ...] = ("keepalived", "fastha")

REPO = Path(__file__).resolve().parents[2]
FASTHA = REPO / ".venv" / "bin" / "fastha"
MARKER = "=== vrrp_peer: start"

# keepalived 2.x and fastha: "(VI_1) Entering MASTER STATE"; 1.x:
# "VRRP_Instance(VI_1) Entering MASTER STATE". Both may add " (init)".
STATE_RE = re.compile(
    r"(?:VRRP_Instance)?\((?P<instance>[^)\s]+)\) Entering (?P<state>MASTER|BACKUP|FAULT) STATE"
)


def keepalived_binary() -> str | None:
    return shutil.which("keepalived") or (
        "/usr/sbin/keepalived" if os.access("/usr/sbin/keepalived", os.X_OK) else None
    )


def fastha_binary() -> str | None:
    return str(FASTHA) if os.access(FASTHA, os.X_OK) else shutil.which("fastha")


def command(impl: Impl, conf: Path, rundir: Path) -> list[str]:
    """The foreground, VRRP-only command line of ``impl`` for ``conf``."""
    if impl == "keepalived":
        exe = keepalived_binary()
        if exe is None:
            raise FileNotFoundError("keepalived is not installed (Debian package keepalived)")
        return [
            exe, "-n", "-l", "-D", "-P", "-f", str(conf),
            "-p", str(rundir / "keepalived.pid"),
            "-r", str(rundir / "vrrp.pid"),
            "-c", str(rundir / "checkers.pid"),
        ]  # fmt: skip
    if impl == "fastha":
        exe = fastha_binary()
        if exe is None:
            raise FileNotFoundError(f"{FASTHA} is missing: pip install -e . in the venv")
        return [exe, "daemon", "-P", "-n", "-l", "-f", str(conf)]
    raise ValueError(f"unknown implementation {impl!r}")


class Peer:
    """A VRRP daemon (keepalived or fastha) bound to one namespace node."""

    def __init__(self, topo: Topology, node: Node, impl: Impl, conf: Path, workdir: Path) -> None:
        self.topo, self.node, self.impl, self.conf = topo, node, impl, conf
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{node.name}-{impl}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.stopped = False  # set by stop()/kill(): an exit the test asked for
        self.extra_args: tuple[str, ...] = ()  # appended to the command line (e.g. "-D")
        # Extra environment (TMPDIR: where keepalived writes its signal dumps).
        self.env: dict[str, str] | None = None

    # -- process control ----------------------------------------------------------

    def start(self) -> Peer:
        if self.running:
            raise RuntimeError(f"{self} is already running")
        self.starts += 1
        self.stopped = False
        # A killed run leaves its pid files; keepalived refuses to start ("daemon is
        # already running") while a pid in them still exists, e.g. an unreaped zombie.
        for pidfile in self.workdir.glob("*.pid"):
            pidfile.unlink(missing_ok=True)
        cmd = [*command(self.impl, self.conf, self.workdir), *self.extra_args]
        with self.log_path.open("a") as log:
            log.write(f"{MARKER} #{self.starts}: {' '.join(cmd)}\n")
            log.flush()
            env = None if self.env is None else {**os.environ, **self.env}
            self.proc = self.topo.popen(
                self.node, *cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def crashed(self) -> bool:
        """It exited although the test did not stop it (a config error, a crash)."""
        return self.proc is not None and not self.stopped and self.proc.poll() is not None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM (a clean stop: the master sends priority 0) and wait for the exit."""
        assert self.proc is not None, "never started"
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"{self} ignored SIGTERM for {timeout} s\n{self.tail()}"
                ) from None
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (parent and children): a crash, no goodbye."""
        assert self.proc is not None, "never started"
        self.stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        # keepalived's children share the group; wait until none is left in the netns.
        deadline = time.monotonic() + 5
        while self._namespace_pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _namespace_pids(self) -> list[str]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.node.ns], capture_output=True, text=True, check=False
        )
        return out.stdout.split()

    # -- observing ----------------------------------------------------------------

    def log(self, *, all_runs: bool = False) -> str:
        """The log of the current run (or of every run)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        if all_runs:
            return text
        i = text.rfind(MARKER)
        return text[i:] if i >= 0 else text

    def tail(self, lines: int = 40) -> str:
        body = "\n".join(self.log().splitlines()[-lines:])
        return f"--- {self} log tail ({self.log_path}) ---\n{body}"

    def states(self, instance: str = "VI_1") -> list[str]:
        """Every state the current run entered, in order."""
        return [m["state"] for m in STATE_RE.finditer(self.log()) if m["instance"] == instance]

    def state(self, instance: str = "VI_1") -> str:
        """MASTER / BACKUP / FAULT as last logged; INIT before the first transition;
        STOPPED once the process has exited."""
        if not self.running:
            return "STOPPED"
        seen = self.states(instance)
        return seen[-1] if seen else "INIT"

    def __repr__(self) -> str:
        return f"<{self.impl} on {self.node.name}>"
