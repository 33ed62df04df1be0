"""Find processes by a marker, wherever they went: a test's scripts export a token in
their environment (inherited by every descendant, a ``setsid`` escapee's too) or carry
it on their command line; anything still alive with it afterwards is a leftover."""

from __future__ import annotations

import os

import pytest

from fastha.drivers.scripts import ScriptCgroups


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def state(pid: int) -> str:
    """The one-letter state in /proc/PID/stat ("" when gone)."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(b")", 1)[1].split()[0].decode() if stat else ""


def alive(pid: int) -> bool:
    return state(pid) not in ("", "Z")  # a zombie waiting for its reaper is dead


def marked(token: str) -> list[int]:
    """Live processes (zombies excluded) with ``token`` in their cmdline or environ."""
    needle = token.encode()
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        if (
            needle in _read(f"/proc/{pid}/cmdline") or needle in _read(f"/proc/{pid}/environ")
        ) and alive(pid):
            found.append(pid)
    return found


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")


def describe(pids: list[int]) -> list[str]:
    return [f"{p} [{state(p)}] {cmdline(p)[:80]}" for p in pids]


def need_script_cgroups() -> ScriptCgroups:
    """The runner's containment needs a writable cgroup hierarchy with the pids
    controller (CI runs as root with /sys/fs/cgroup writable); fail, never skip."""
    cg = ScriptCgroups.open(64)
    if cg is None or not cg.limits_tasks:
        pytest.fail(
            "no writable cgroup hierarchy with the pids controller under /sys/fs/cgroup: "
            "script containment cannot be tested (run as root, cgroup2 or v1 pids mounted rw)"
        )
    cg.close()
    return cg
