"""drivers/procwatch against real processes: the kernel's process events in the test's
own (initial) network namespace, and the /proc scan a daemon falls back to inside a
namespace the connector does not serve. Each test makes its own copy of `sleep` under a
name nothing else on the machine has."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from fastha.drivers.procwatch import (
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcWatch,
    listen_request,
    parse_events,
)
from fastha.vrrp.proctrack import ProcessMatch, ProcessTracker
from tests.support.prereq import need_root

pytestmark = pytest.mark.system
TIMEOUT = 10.0


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    """A `sleep` named fhtp<pid> (comm holds 15 characters) and the processes started
    from it, all killed at the end."""
    exe = tmp_path / f"fhtp{os.getpid() % 10**6}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    procs: list[subprocess.Popen[bytes]] = []
    yield exe, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


async def _until(what: str, cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_kernel_events_follow_forks_execs_and_exits(
    sleeper: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    need_root()  # the proc connector wants CAP_NET_ADMIN
    exe, procs = sleeper
    by_comm = ProcessMatch.from_words("by_comm", (exe.name,), None, False)
    by_args = ProcessMatch.from_words("by_args", (str(exe), "1000"), None, False)
    pair = ProcessTracker("by_comm", quorum=2)
    one = ProcessTracker("by_args", quorum_max=1)
    changed: list[tuple[str, bool]] = []

    async def go() -> None:
        w = ProcWatch({"by_comm": (by_comm, pair), "by_args": (by_args, one)},
                      lambda n: changed.append((n, w.tracked[n][1].ok)))  # fmt: skip
        w.start(asyncio.get_running_loop(), fresh=("by_comm", "by_args"))
        try:
            assert w.mode == "events"  # the test runs in the initial namespace
            assert (pair.count, pair.ok, one.count, one.ok) == (0, False, 0, False)
            procs.append(subprocess.Popen([exe, "1000"]))
            await _until("the first process", lambda: pair.count == 1 and one.ok)
            procs.append(subprocess.Popen([exe, "999"]))  # same name, other parameters
            await _until("the second process", lambda: pair.count == 2)
            assert pair.ok and one.count == 1
            procs.append(subprocess.Popen([exe, "1000"]))
            await _until("a third, past by_args' quorum_max", lambda: not one.ok)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            await _until("the exit", lambda: one.ok and pair.count == 2)
            for p in procs[1:]:
                p.kill()
                p.wait()
            await _until("every exit", lambda: pair.count == 0 and not pair.ok)
        finally:
            w.close()

    uvloop.run(go())
    assert changed == [
        ("by_args", True), ("by_comm", True), ("by_args", False), ("by_args", True),
        ("by_comm", False), ("by_args", False),
    ]  # fmt: skip


def test_a_namespaced_daemon_still_counts(
    sleeper: tuple[Path, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    """Under `ip netns exec` the connector refuses; the watch joins the initial
    namespace for it when it may, and scans /proc otherwise: either way it counts."""
    need_root()
    exe, procs = sleeper
    ns = f"fhtp{os.getpid()}"
    script = tmp_path / "watch.py"
    script.write_text(
        "import asyncio, sys, uvloop\n"
        "from fastha.drivers.procwatch import ProcWatch\n"
        "from fastha.vrrp.proctrack import ProcessMatch, ProcessTracker\n"
        "m = ProcessMatch.from_words('tp', (sys.argv[1],), None, False)\n"
        "t = ProcessTracker('tp')\n"
        "async def go():\n"
        "    w = ProcWatch({'tp': (m, t)}, lambda n: print('ok' if t.ok else 'lost', flush=True),"
        " poll_s=0.1)\n"
        "    w.start(asyncio.get_running_loop(), fresh=('tp',))\n"
        "    print(w.mode, t.count, flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "uvloop.run(go())\n"
    )
    subprocess.run(["ip", "netns", "add", ns], check=True)
    watcher = None
    try:
        procs.append(subprocess.Popen([exe, "1000"]))
        time.sleep(0.05)  # exec'd, so /proc shows its name
        watcher = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(script), exe.name],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watcher.stdout is not None
        mode, count = watcher.stdout.readline().split()
        assert mode in ("events", "polling") and count == "1", (mode, count)
        procs[0].kill()
        procs[0].wait()
        assert watcher.stdout.readline().strip() == "lost"
        procs.append(subprocess.Popen([exe, "1000"]))
        assert watcher.stdout.readline().strip() == "ok"
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_event_parsing_skips_what_is_not_a_process_event() -> None:
    req = listen_request()
    assert len(req) == 16 + 20 + 4

    # A fork and an exit, as the kernel lays them out, in one datagram; then garbage.
    def msg(what: int, data: bytes) -> bytes:
        body = struct.pack("=IIIIHH", 1, 1, 0, 0, 16 + len(data), 0)
        body += struct.pack("=IIQ", what, 0, 0) + data
        return struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body

    fork = msg(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11))
    exit_ = msg(PROC_EVENT_EXIT, struct.pack("=iiIIii", 11, 11, 0, 9, 10, 10))
    assert parse_events(fork + exit_) == [
        (PROC_EVENT_FORK, (10, 11, 11), b""),
        (PROC_EVENT_EXIT, (11, 11), b""),
    ]
    foreign = bytearray(fork)
    foreign[16] = 7  # another connector index
    assert parse_events(bytes(foreign)) == []
    assert parse_events(fork[:30]) == []
    assert parse_events(b"\xff" * 3) == []
