"""One VRRP daemon process in a test namespace: Debian's keepalived or `fastha daemon -P`.

A thin fixture over the lab's :class:`fastha.bench.daemons.Daemon` (log markers, state
parsing, stop and kill -9 of the process group: see there). What is the tests' own: the
fastha under test is the repository venv's ``fastha`` console script, run without pid or
status file arguments (its defaults), and a daemon that ignores SIGTERM fails the test.

keepalived 2.2.7 is run as ``keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID -c CHK_PID``:
pid files of its own (never /run/keepalived*.pid of a real daemon).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fastha.bench import daemons
from fastha.bench.daemons import MARKER, STATE_RE, Daemon, keepalived_binary
from fastha.bench.topology import LabError

if TYPE_CHECKING:
    from tests.support.netns import Node, Topology

__all__ = [
    "FASTHA",
    "IMPLS",
    "MARKER",
    "STATE_RE",
    "Impl",
    "Peer",
    "command",
    "fastha_binary",
    "keepalived_binary",
]

Impl = Literal["keepalived", "fastha"]
IMPLS: tuple[Impl, ...] = ("keepalived", "fastha")

REPO = Path(__file__).resolve().parents[2]
FASTHA = REPO / ".venv" / "bin" / "fastha"


def fastha_binary() -> str | None:
    return str(FASTHA) if os.access(FASTHA, os.X_OK) else shutil.which("fastha")


def command(impl: Impl, conf: Path, rundir: Path) -> list[str]:
    """The foreground, VRRP-only command line of ``impl`` for ``conf``."""
    if impl == "keepalived":
        try:
            return daemons.keepalived_command(conf, rundir)
        except LabError as e:
            raise FileNotFoundError(str(e)) from None
    if impl == "fastha":
        exe = fastha_binary()
        if exe is None:
            raise FileNotFoundError(f"{FASTHA} is missing: pip install -e . in the venv")
        return [exe, "daemon", "-P", "-n", "-l", "-f", str(conf)]
    raise ValueError(f"unknown implementation {impl!r}")


class Peer(Daemon):
    """A VRRP daemon (keepalived or fastha) bound to one namespace node."""

    def __init__(self, topo: Topology, node: Node, impl: Impl, conf: Path, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / f"{node.name}-{impl}.log"
        super().__init__(topo, node.ns, log_path, workdir, label=f"<{impl} on {node.name}>")
        self.topo, self.node, self.impl, self.conf = topo, node, impl, conf
        self.workdir = workdir
        self.extra_args: tuple[str, ...] = ()  # appended to the command line (e.g. "-D")
        # Extra environment (TMPDIR: where keepalived writes its signal dumps).
        self.env: dict[str, str] | None = None
        # False: the BFD child runs too (no -P, which runs the VRRP child alone), with
        # keepalived's BFD pid file in the work directory (not a shared /run/bfd.pid).
        self.vrrp_only = True

    def start(self) -> Peer:
        if self.running:
            raise RuntimeError(f"{self} is already running")
        cmd = command(self.impl, self.conf, self.workdir)
        if not self.vrrp_only:
            cmd = [c for c in cmd if c != "-P"]
            if self.impl == "keepalived":
                cmd += ["-b", str(self.workdir / "bfd.pid")]
        cmd += self.extra_args
        self.launch(cmd, env=None if self.env is None else {**os.environ, **self.env})
        return self

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM (a clean stop: the master sends priority 0) and wait for the exit;
        a daemon that ignores it is killed and fails the test."""
        assert self.proc is not None, "never started"
        if not self.terminate(timeout):
            raise AssertionError(f"{self} ignored SIGTERM for {timeout} s\n{self.tail()}")
        return self.proc.returncode

    def wait(
        self,
        what: str,
        cond: Callable[[], object],
        timeout: float = 20,
        seen: Callable[[], object] | None = None,
    ) -> None:
        """Poll ``cond`` until true; fail naming ``what`` (and ``seen()``) with the log's
        tail, at once if the daemon exits meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            assert self.running, f"{self.impl} exited while {what}:\n{self.log()[-3000:]}"
            time.sleep(0.1)
        extra = f" (seen: {seen()})" if seen is not None else ""
        raise AssertionError(
            f"{self.impl}: not {what} after {timeout}s{extra}:\n{self.log()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL the whole process group (parent and children): a crash, no goodbye."""
        assert self.proc is not None, "never started"
        super().kill()
