"""The lab's directors' daemons: start, stop, kill -9, their logged states, and waiting
for a master (orchestration before a trial; never a measurement). Part of
:class:`fastha.bench.lab.Lab`; the processes are bench/daemons'."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastha.bench.daemons import Daemon, Impl, daemon_command
from fastha.bench.topology import LabError, Topology

if TYPE_CHECKING:
    from fastha.bench.lab import LabSpec, Node


class Directors:
    """What a lab does with its directors (mixed into Lab, which builds them)."""

    topo: Topology
    spec: LabSpec
    nodes: dict[str, Node]
    daemons: dict[str, Daemon]

    def save(self) -> None:
        """Record the lab's state (Lab writes its state file)."""

    def directors(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.impl]

    def daemon(self, name: str) -> Daemon:
        """The daemon of a director (known by its pid alone when another invocation
        started it)."""
        d = self.daemons.get(name)
        if d is None:
            n = self.nodes[name]
            d = Daemon(
                self.topo, n.ns, Path(n.log), Path(n.rundir), label=f"{name} ({n.impl})", pid=n.pid
            )
            self.daemons[name] = d
        return d

    def start(self, name: str) -> Node:
        n = self.nodes[name]
        d = self.daemon(name)
        if d.running:
            raise LabError(f"{name} is already running (pid {d.pid})")
        d.launch(
            daemon_command(
                cast(Impl, n.impl), Path(n.conf), Path(n.rundir), vrrp=self.spec.instances > 0
            )
        )
        n.pid = d.pid
        self.save()
        return n

    def stop(self, name: str, timeout: float = 10) -> None:
        """SIGTERM (a master sends priority 0 and removes its VIPs) and wait."""
        if self.nodes[name].pid:
            self.daemon(name).terminate(timeout)

    def kill(self, name: str) -> None:
        """kill -9 of the daemon's whole process group: a crash, no goodbye."""
        if self.nodes[name].pid:
            self.daemon(name).kill()

    def running(self, name: str) -> bool:
        return bool(self.nodes[name].pid) and self.daemon(name).running

    # -- states (orchestration only) ---------------------------------------------------

    def log(self, name: str) -> str:
        return self.daemon(name).log()

    def states(self, name: str) -> dict[str, str]:
        """Instance -> last logged state of the current run ({} before any, or when the
        daemon is not running)."""
        return self.daemon(name).last_states() if self.running(name) else {}

    def state(self, name: str, instance: str = "VI_1") -> str:
        return self.daemon(name).state(instance) if self.running(name) else "STOPPED"

    def wait(self, what: str, cond: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            for n in self.directors():
                rc = self.daemon(n.name).returncode
                if rc is not None and rc not in (0, -signal.SIGKILL, -signal.SIGTERM):
                    raise LabError(f"{n.name} ({n.impl}) exited with {rc}\n{self.tail(n.name)}")
            if time.monotonic() > deadline:
                raise LabError(
                    f"timed out after {timeout:g} s waiting for {what}\n"
                    + "\n".join(self.tail(n.name) for n in self.directors())
                )
            time.sleep(0.01)

    def wait_state(self, name: str, state: str, timeout: float = 10) -> None:
        self.wait(f"{name} {state}", lambda: self.state(name) == state, timeout)

    def wait_master(self, name: str, timeout: float = 20) -> None:
        """``name`` MASTER on every instance, every other running director BACKUP."""
        k = self.spec.instances

        def settled() -> bool:
            mine = self.states(name)
            if len(mine) < k or any(s != "MASTER" for s in mine.values()):
                return False
            for other in self.directors():
                if other.name != name and self.running(other.name):
                    st = self.states(other.name)
                    if any(s == "MASTER" for s in st.values()):
                        return False
            return True

        self.wait(f"{name} MASTER of {k} instance(s)", settled, timeout)

    def tail(self, name: str, lines: int = 15) -> str:
        return self.daemon(name).tail(lines)
