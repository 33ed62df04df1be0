"""Helpers shared by the reload-storm and crash-recovery drills (issue 8).

They judge the daemon from outside: the log lines operators grep for, `fastha status
--json` over the control socket of the node's namespace, `ip netns pids` for the process
table, `ping -D -O` output for the VIP's reachability.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastha.bench.topology import alive, ns_pids
from tests.support.netns import Topology
from tests.support.vrrp_nodes import VrrpNode
from tests.support.vrrp_peer import fastha_binary

# The parent's verdicts (supervisor.reload) and the VRRP child's outcomes (runner.reload).
PARENT_ACCEPTED = re.compile(r"Reload: \S+ accepted, children signalled")
PARENT_REFUSED = re.compile(r"the children were not signalled\)")
CHILD_FINISHED = re.compile(r"Reload finished: ")
CHILD_FAILED = re.compile(
    r"Reload failed: configuration has errors; keeping the running one$", re.M
)  # fmt: skip (the parent's line goes on with " (PATH: ...")
RESTARTED = re.compile(r"child \(pid \d+\) died with status")


def count(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text))


def wait_until(cond: Callable[[], Any], what: str, timeout: float,
               log: Callable[[], str] | None = None) -> Any:  # fmt: skip
    """Poll until `cond()` is truthy (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                                 f"{log() if log else ''}")  # fmt: skip
        time.sleep(0.02)


def status(topo: Topology, n: VrrpNode, timeout: float = 10) -> dict[str, Any]:
    """`fastha status --json` in the node's namespace (its default control socket)."""
    exe = fastha_binary()
    assert exe is not None, "fastha is not installed in .venv"
    r = topo.run(n.node, exe, "status", "--json", check=False, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"fastha status failed on {n}: {r.stderr.strip()}")
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def try_status(topo: Topology, n: VrrpNode) -> dict[str, Any] | None:
    with contextlib.suppress(AssertionError, ValueError, subprocess.TimeoutExpired):
        return status(topo, n)
    return None


def instance_view(st: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """instance name -> (state, effective priority) from a status document."""
    vrrp = st.get("vrrp") or {}
    return {i["name"]: (i["state"], i["effective_priority"]) for i in vrrp.get("instances") or ()}


def namespace_pids(topo: Topology, n: VrrpNode) -> set[int]:
    """Every live (non-zombie) process in the node's namespace."""
    return {p for p in ns_pids(n.node.ns) if alive(p)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


class Pinger:
    """`ping -D -O -i 0.01` from the observer to the VIP for the life of the block."""

    def __init__(self, topo: Topology, where: Any, vip: str, path: Path, interval_ms: int = 10):
        self.path, self.interval_ms = path, interval_ms
        self.fh = path.open("w")
        self.proc = topo.popen(where, "ping", "-n", "-D", "-O", "-i", f"{interval_ms / 1000}",
                               "-W", "1", vip, stdout=self.fh, stderr=subprocess.STDOUT)  # fmt: skip

    def stop(self) -> tuple[int, int]:
        """(sent, unanswered), the probe in flight at the stop not counted."""
        time.sleep(0.1)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self.fh.close()
        sent = unanswered = 0
        for ln in self.path.read_text().splitlines():
            if not ln.startswith("["):
                continue
            if "bytes from" in ln:
                sent += 1
            elif "no answer yet" in ln:
                sent += 1
                unanswered += 1
        return sent, unanswered

    def __enter__(self) -> Pinger:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.fh.close()
