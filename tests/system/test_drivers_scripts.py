"""Script spawning and the notify FIFO on a real uvloop loop (root: script_user, the
per-run cgroups that contain setsid escapees and fork bombs)."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from fastha.config.invocation import Script
from fastha.drivers.fifo import NotifyFifo, fifo_line
from fastha.drivers.scripts import ScriptResult, ScriptRunner
from tests.support.prereq import need_root, need_tool
from tests.support.procscan import describe, marked, need_script_cgroups

pytestmark = pytest.mark.system


def _run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run on uvloop; any exception the loop's handler sees fails the test."""
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        return await fn()

    result = uvloop.run(main())
    assert not errors, errors
    return result


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie waiting for a reaper is dead for our purpose


def test_exit_codes_come_back() -> None:
    runner = ScriptRunner()

    async def main() -> list[ScriptResult]:
        return [
            await runner.run(Script(("/bin/sh", "-c", "exit 0"))),
            await runner.run(Script(("/bin/sh", "-c", "exit 3"))),
            await runner.run(Script(("/bin/sh", "-c", "kill -USR1 $$"))),
            await runner.run(Script(("/nonexistent/notify.sh",))),
        ]

    ok, three, signalled, missing = _run(main)
    assert ok.ok and ok.returncode == 0
    assert three.returncode == 3 and not three.ok and not three.timed_out
    assert signalled.returncode == -10  # SIGUSR1
    assert missing.returncode == 127 and missing.error


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The script leaves a background child behind: killing the shell alone would orphan it.
    script = Script(("/bin/sh", "-c", f"sleep 100 & echo $! > {pidfile}; wait"), timeout=0.3)
    stubborn = Script(("/bin/sh", "-c", "trap '' TERM; sleep 100 & wait; sleep 100"), timeout=0.2)
    runner = ScriptRunner(kill_grace=0.3)

    async def main() -> tuple[ScriptResult, ScriptResult]:
        return await runner.run(script), await runner.run(stubborn)

    res, res2 = _run(main)
    assert res.timed_out and res.returncode == -15  # SIGTERM reached the shell
    child = int(pidfile.read_text())
    assert not _alive(child), "the script's background child survived the timeout"
    assert res2.timed_out and res2.returncode == -9  # ignored SIGTERM, got SIGKILL
    assert runner.timeouts == 2 and runner.running == 0


def test_loop_keeps_ticking_while_a_script_runs() -> None:
    events: list[str] = []
    runner = ScriptRunner()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            events.append("tick")
            handle[0] = loop.call_later(0.01, tick)

        handle = [loop.call_soon(tick)]
        events.append("spawn")
        done = asyncio.Event()
        runner.spawn(Script(("/bin/sleep", "0.3")), lambda _s, _r: done.set())
        events.append("spawned")  # spawn() returned at once
        await done.wait()
        events.append("done")
        handle[0].cancel()

    _run(main)
    # Ordering, not timing: the spawn call returns before the timer's next tick, and
    # ticks keep arriving while the child sleeps.
    assert events[:2] == ["spawn", "spawned"]
    assert events.index("done") > events.index("spawned") + 3
    assert events[events.index("spawned") + 1 : events.index("done")].count("tick") >= 3


def test_concurrency_cap() -> None:
    runner = ScriptRunner(max_running=2)
    seen: list[int] = []

    async def main() -> list[ScriptResult]:
        loop = asyncio.get_running_loop()

        def sample() -> None:
            seen.append(runner.running)
            handle[0] = loop.call_later(0.01, sample)

        handle = [loop.call_soon(sample)]
        results = await asyncio.gather(
            *(runner.run(Script(("/bin/sleep", "0.1"))) for _ in range(5))
        )
        handle[0].cancel()
        return list(results)

    results = _run(main)
    assert all(r.ok for r in results)
    assert max(seen) == 2  # the cap was reached and never exceeded
    assert runner.started == 5


def test_script_user() -> None:
    need_root()
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp_path lives under a 0700 root directory that nobody cannot enter.
    with tempfile.TemporaryDirectory(prefix="fastha-script-user-") as d:
        os.chmod(d, 0o777)
        out = Path(d) / "id"

        async def main() -> ScriptResult:
            return await ScriptRunner().run(
                Script(("/bin/sh", "-c", f"id -u > {out}; id -g >> {out}"), user="nobody")
            )

        assert _run(main).ok
        assert out.read_text().split() == [str(nobody.pw_uid), str(nobody.pw_gid)]


def test_fifo_lines_and_reader_coming_back(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    fifo = NotifyFifo(str(path), create=True)
    # No reader yet: dropped, not blocked (the open itself would hang without O_NONBLOCK).
    assert not fifo.notify_instance("VI_1", "BACKUP", 100)
    assert path.exists() and fifo.stats.dropped_no_reader == 1

    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert fifo.notify_instance("VI_1", "MASTER", 100)
        assert fifo.notify_group("G1", "BACKUP")
        assert fifo.write_line(fifo_line("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100))
        data = os.read(reader, 4096)
    finally:
        os.close(reader)
    assert (
        data
        == b'INSTANCE "VI_1" MASTER 100\nGROUP "G1" BACKUP 0\nINSTANCE "VI_1" MASTER_RX_LOWER_PRI 100\n'
    )

    # Reader gone: EPIPE closes our end, nothing raises.
    assert not fifo.notify_instance("VI_1", "FAULT", 0)
    # Reader back: picked up again on the next write.
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert fifo.notify_instance("VI_1", "STOP", 0)
        assert os.read(reader, 4096) == b'INSTANCE "VI_1" STOP 0\n'
    finally:
        os.close(reader)
        fifo.close()


def test_fifo_full_pipe_drops_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    fifo = NotifyFifo(str(path))
    try:
        for _ in range(10_000):  # 64 KiB pipe, ~28 B lines: fills well before the end
            fifo.notify_instance("VI_1", "MASTER", 100)
        assert fifo.stats.dropped_full > 0 and fifo.stats.written > 0
    finally:
        fifo.close()
        os.close(reader)


# -- containment (issue 8, script abuse): cgroup per run --------------------------------


def _token() -> str:
    return f"fastha-test-{os.getpid()}-{os.urandom(4).hex()}"


def test_setsid_escapee_is_killed_on_timeout(tmp_path: Path) -> None:
    """A double fork + setsid leaves the process group; only the cgroup still holds it.
    The same script under a runner without cgroups shows the escape."""
    need_root()
    need_script_cgroups()
    pidfile = tmp_path / "escapee.pid"
    token = _token()
    body = (
        f"export FASTHA_TEST_MARK={token}; "
        f"( setsid sh -c 'echo $$ > {pidfile}; exec sleep 100' & ); "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done; sleep 100"
    )
    script = Script(("/bin/sh", "-c", body), timeout=0.5, name="escape")
    contained = ScriptRunner(kill_grace=0.3)

    async def main(runner: ScriptRunner) -> ScriptResult:
        try:
            return await runner.run(script)
        finally:
            await runner.close()

    res = _run(lambda: main(contained))
    assert res.timed_out
    escapee = int(pidfile.read_text())
    assert not _alive(escapee), "the setsid escapee survived the timeout"
    assert marked(token) == [], describe(marked(token))
    assert contained.escaped_killed >= 1

    pidfile.unlink()
    bare = ScriptRunner(kill_grace=0.3, cgroups=False)
    res = _run(lambda: main(bare))
    escapee = int(pidfile.read_text())
    try:
        assert res.timed_out
        assert _alive(escapee), "without a cgroup the escapee is expected to survive"
        assert os.getsid(escapee) != os.getsid(os.getpid())
    finally:
        for pid in marked(token):
            os.kill(pid, signal.SIGKILL)


def test_fork_limit_and_all_children_die(tmp_path: Path) -> None:
    """200 forks under max_tasks=32: the limit stops them; the timeout kills them all."""
    need_root()
    need_script_cgroups()
    count = tmp_path / "forked"
    token = _token()
    body = (
        "import os, time\n"
        f"os.environ['FASTHA_TEST_MARK'] = '{token}'\n"
        "n = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        os.execv('/bin/sleep', ['sleep', '100'])\n"
        "    n += 1\n"
        f"open('{count}', 'w').write(str(n))\n"
        "time.sleep(100)\n"
    )
    runner = ScriptRunner(kill_grace=0.3, max_tasks=32)

    async def main() -> ScriptResult:
        try:
            return await runner.run(Script((sys.executable, "-c", body), timeout=3.0))
        finally:
            await runner.close()

    res = _run(main)
    assert res.timed_out
    forked = int(count.read_text())
    assert 0 < forked < 32, forked  # the script itself is one of the 32 tasks
    assert marked(token) == [], describe(marked(token))


def test_real_fork_bomb_is_contained() -> None:
    need_root()
    need_script_cgroups()
    token = _token()
    body = f"export FASTHA_TEST_MARK={token}; b() {{ b | b & }}; b; sleep 100"
    runner = ScriptRunner(kill_grace=0.3, max_tasks=24)

    async def main() -> ScriptResult:
        try:
            return await runner.run(Script(("/bin/bash", "-c", body), timeout=1.0))
        finally:
            await runner.close()

    res = _run(main)
    assert res.timed_out
    assert marked(token) == [], describe(marked(token))


def test_huge_output_does_not_block() -> None:
    body = "head -c 64M /dev/zero; head -c 64M /dev/zero >&2; exit 0"

    async def main() -> ScriptResult:
        return await ScriptRunner().run(Script(("/bin/sh", "-c", body), timeout=60))

    res = _run(main)
    assert res.ok and not res.timed_out


def test_background_child_of_a_finished_script_lives_on(tmp_path: Path) -> None:
    """keepalived's behaviour: a notify script may start a daemon; it is not killed when
    the script exits, and it leaves the run's cgroup (no task limit, nothing to remove)."""
    need_root()
    need_script_cgroups()
    pidfile = tmp_path / "daemon.pid"
    runner = ScriptRunner()

    async def main() -> ScriptResult:
        try:
            return await runner.run(
                Script(("/bin/sh", "-c", f"sleep 100 & echo $! > {pidfile}; exit 0"), timeout=5)
            )
        finally:
            await runner.close()

    assert _run(main).ok
    child = int(pidfile.read_text())
    try:
        assert _alive(child)
        assert "fastha-scripts." not in Path(f"/proc/{child}/cgroup").read_text()
    finally:
        os.kill(child, signal.SIGKILL)


# As sched.apply sets it (the kernel resets the child), and plain SCHED_RR (the runner does).
@pytest.mark.parametrize("reset", [True, False], ids=["reset-on-fork", "plain-rr"])
def test_scripts_run_at_normal_priority_from_a_realtime_loop(tmp_path: Path, reset: bool) -> None:
    need_root()
    policy = os.SCHED_RR | (os.SCHED_RESET_ON_FORK if reset else 0)
    out = tmp_path / "policy"
    body = f"import os; open('{out}', 'w').write(str(os.sched_getscheduler(0)))"

    async def main() -> ScriptResult:
        os.sched_setscheduler(0, policy, os.sched_param(1))
        try:
            return await ScriptRunner().run(Script((sys.executable, "-c", body), timeout=10))
        finally:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    assert _run(main).ok
    assert int(out.read_text()) == os.SCHED_OTHER


def test_odd_exits_are_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    runner = ScriptRunner()
    scripts = [
        ("chk", "exit 255"),
        ("chk", "exit 255"),  # unchanged: no second line
        ("chk", "exit 137"),
        ("chk", "kill -KILL $$"),
        ("chk", "exit 0"),
    ]

    async def main() -> list[ScriptResult]:
        return [await runner.run(Script(("/bin/sh", "-c", b), name=n)) for n, b in scripts]

    with caplog.at_level(logging.INFO, logger="fastha.drivers.scripts"):
        results = _run(main)
    assert [r.returncode for r in results] == [255, 255, 137, -9, 0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Script chk")]
    assert lines == [
        "Script chk exited with status 255",
        "Script chk exited with status 137",
        "Script chk killed by signal SIGKILL",
        "Script chk exited with status 0",
    ]


def test_script_starts_inside_its_cgroup_as_itself(tmp_path: Path) -> None:
    """The run's cgroup is joined before the script's own code runs, and the script is
    exec'd in the joining process's place: its first line already sees the cgroup and
    its pid is the one the runner waits for."""
    need_root()
    need_script_cgroups()
    out = tmp_path / "seen"
    body = f"import os; open('{out}', 'w').write(f'{{os.getpid()}}\\n' + open('/proc/self/cgroup').read())"
    runner = ScriptRunner()
    pids: list[int] = []
    real_start = runner._start

    def start(script: Script, cgs: Any) -> Any:
        proc, cg = real_start(script, cgs)
        pids.append(proc.pid)
        return proc, cg

    runner._start = start  # type: ignore[method-assign]

    async def main() -> ScriptResult:
        try:
            return await runner.run(Script((sys.executable, "-c", body), timeout=10))
        finally:
            await runner.close()

    assert _run(main).ok
    pid, *cgroups = out.read_text().splitlines()
    assert int(pid) == pids[0]
    assert any("/fastha-scripts." in line for line in cgroups), cgroups


def test_missing_script_fails_to_start(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> ScriptResult:
        return await ScriptRunner().run(Script(("/nonexistent/fastha-script",), timeout=5))

    with caplog.at_level(logging.WARNING):
        res = _run(main)
    assert (res.returncode, res.ok) == (127, False) and res.error
    assert "failed to start" in caplog.text


def test_script_user_root_under_root_keeps_our_credentials() -> None:
    """No change of user is made (so Popen can vfork) when the script user is us."""
    need_root()
    from fastha.drivers.scripts import _credentials

    assert _credentials(Script(("x",), user="root")) is None
    assert _credentials(Script(("x",), user="nobody")) is not None
    assert _credentials(Script(("x",), uid=0, gid=0)) is None
    assert _credentials(Script(("x",), uid=65534, gid=65534)) == (65534, 65534, [65534])


# -- a non-root script user keeps containment (issue 15 item 5) ---------------------------


def test_non_root_script_is_contained_and_runs_as_its_user() -> None:
    """A script run as nobody starts inside its run's cgroup (joined as root, before the
    drop to nobody), under its pids.max, with nobody's uid and its gid as the only group;
    on a timeout its setsid escapee dies with it."""
    need_root()
    need_script_cgroups()
    nobody = pwd.getpwnam("nobody")
    token = _token()
    with tempfile.TemporaryDirectory(prefix="fastha-script-user-") as d:
        os.chmod(d, 0o777)
        seen, pidfile = Path(d) / "seen", Path(d) / "escapee.pid"
        body = (
            f"export FASTHA_TEST_MARK={token}; "
            f"{{ id -u; id -g; id -G; grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status; "
            f"cat /proc/self/cgroup; }} > {seen}; "
            f"( setsid sh -c 'echo $$ > {pidfile}; exec sleep 100' & ); "
            f"while [ ! -s {pidfile} ]; do sleep 0.01; done; sleep 100"
        )
        runner = ScriptRunner(kill_grace=0.3, max_tasks=16)
        script = Script(("/bin/sh", "-c", body), timeout=1.0, user="nobody")

        async def main() -> ScriptResult:
            try:
                return await runner.run(script)
            finally:
                await runner.close()

        res = _run(main)
        try:
            uid, gid, groups, *caps_cgroups = seen.read_text().splitlines()
            caps, cgroups = caps_cgroups[:3], caps_cgroups[3:]
            assert [c.split()[1] for c in caps] == ["0000000000000000"] * 3, caps
            ids = (nobody.pw_uid, nobody.pw_gid, nobody.pw_gid)
            assert (uid, gid, groups) == tuple(map(str, ids))
            assert any("/fastha-scripts." in line for line in cgroups), cgroups
            assert runner.uncontained == 0
            assert res.timed_out
            assert not _alive(int(pidfile.read_text())), "a nobody script's escapee survived"
            assert marked(token) == [], describe(marked(token))
        finally:
            for pid in marked(token):
                os.kill(pid, signal.SIGKILL)


def test_non_root_script_stops_at_pids_max() -> None:
    """The task limit holds for a nobody script: 200 forks under max_tasks=16."""
    need_root()
    need_script_cgroups()
    token = _token()
    with tempfile.TemporaryDirectory(prefix="fastha-script-user-") as d:
        os.chmod(d, 0o777)
        count = Path(d) / "forked"
        body = (
            "import os, time\n"
            f"os.environ['FASTHA_TEST_MARK'] = '{token}'\n"
            "n = 0\n"
            "for _ in range(200):\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError:\n"
            "        continue\n"
            "    if pid == 0:\n"
            "        os.execv('/bin/sleep', ['sleep', '100'])\n"
            "    n += 1\n"
            f"open('{count}', 'w').write(str(n))\n"
            "time.sleep(100)\n"
        )
        runner = ScriptRunner(kill_grace=0.3, max_tasks=16)
        script = Script((sys.executable, "-c", body), timeout=3.0, user="nobody")

        async def main() -> ScriptResult:
            try:
                return await runner.run(script)
            finally:
                await runner.close()

        res = _run(main)
        try:
            assert res.timed_out
            forked = int(count.read_text())
            assert 0 < forked < 16, forked
            assert marked(token) == [], describe(marked(token))
        finally:
            for pid in marked(token):
                os.kill(pid, signal.SIGKILL)


def test_a_script_that_cannot_join_its_cgroup_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Containment missing is said, not silent: a run whose cgroup.procs cannot be
    written (here a read-only file) still runs, and the runner logs it."""
    need_root()
    need_script_cgroups()
    runner = ScriptRunner()
    cgs = runner.cgroups
    assert cgs is not None
    real_new = cgs.new

    def new() -> Any:
        cg = real_new()
        assert cg is not None
        cg.procs = ["/proc/version", *cg.procs[1:]]
        return cg

    cgs.new = new  # type: ignore[method-assign]
    out = tmp_path / "ran"

    async def main() -> ScriptResult:
        try:
            return await runner.run(Script(("/bin/sh", "-c", f"touch {out}"), name="lost"))
        finally:
            await runner.close()

    with caplog.at_level(logging.WARNING):
        assert _run(main).ok
    assert out.exists()
    assert runner.uncontained == 1
    assert "script lost ran without containment: it could not join /proc/version" in caplog.text


def test_hidden_cgroups_mounted_back_without_running_a_program(tmp_path: Path) -> None:
    """Under `ip netns exec` /sys/fs/cgroup is empty and the runner mounts the
    hierarchies back, on the loop thread, at the first script. That takes a few syscalls
    and starts no program: ctypes.util.find_library("c") ran `ldconfig -p` there, and in
    the UML guest, where ldconfig segfaults, gcc, collect2, ld and objdump (the checker
    stalled up to 14 s at its first script). Counted with strace: no execve but the
    interpreter's own."""
    need_root()
    need_tool("strace")
    need_tool("unshare")
    trace = tmp_path / "execve"
    code = (
        "from fastha.drivers.scripts import ScriptCgroups, _cgroup_mounts\n"
        "assert _cgroup_mounts() == (None, None), _cgroup_mounts()\n"
        "cg = ScriptCgroups.open(64)\n"
        "print('opened' if cg is not None and cg.limits_tasks else 'not opened')\n"
        "cg is None or cg.close()\n"
    )
    # A private mount namespace where /sys is remounted as `ip netns exec` does (its
    # cgroup hierarchies gone: /sys/fs/cgroup empty); gone when the process exits.
    hide = "umount -l /sys && mount -t sysfs sysfs /sys && exec strace -f -qq -e trace=execve -o"
    hide += ' "$@"'
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
         str(trace), sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "opened", (r.stdout, r.stderr)
    execs = [ln for ln in trace.read_text().splitlines() if "execve(" in ln]
    assert len(execs) == 1 and sys.executable in execs[0], execs
