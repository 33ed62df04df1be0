"""Notify and track scripts spawned without blocking the loop.

Each script runs in its own session (so a timeout can kill the whole process group a
shell script leaves behind), with stdin/stdout/stderr on /dev/null, optionally as
another user/group (keepalived's ``script_user``). The loop reaps it asynchronously
(uvloop watches children with libuv's SIGCHLD handling). A semaphore caps how many run
at once: a flapping link must not fork-bomb the VRRP child.

    runner = ScriptRunner(max_running=32)
    result = await runner.run(Script(("/etc/ka/notify.sh", "INSTANCE", "VI_1", "MASTER"),
                                     timeout=5.0, user="nobody"))
    runner.spawn(script, callback=on_done)   # fire and forget, result to a callback
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Script:
    argv: tuple[str, ...]
    timeout: float | None = None  # seconds; None = wait for ever
    user: str | None = None  # script_user <user> [<group>]
    group: str | None = None
    name: str = ""  # for logs: "VI_1 notify_master", "chk_haproxy"
    env: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """``returncode`` as from ``Popen``: negative for a signal. ``timed_out`` when we
    killed it; ``error`` when it could not start (returncode is then 127/126)."""

    returncode: int
    timed_out: bool = False
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _credentials(user: str | None, group: str | None) -> tuple[int, int, list[int]] | None:
    """Resolved in the parent: the child only makes three syscalls before exec."""
    if user is None and group is None:
        return None
    pw = pwd.getpwnam(user) if user is not None else pwd.getpwuid(os.getuid())
    gid = grp.getgrnam(group).gr_gid if group is not None else pw.pw_gid
    groups = os.getgrouplist(pw.pw_name, gid)
    return pw.pw_uid, gid, groups


class ScriptRunner:
    def __init__(self, *, max_running: int = 32, kill_grace: float = 2.0) -> None:
        self._sem = asyncio.Semaphore(max_running)
        self.kill_grace = kill_grace  # seconds between SIGTERM and SIGKILL
        self._tasks: set[asyncio.Task[ScriptResult]] = set()
        self.running = 0
        self.started = 0
        self.timeouts = 0

    async def run(self, script: Script) -> ScriptResult:
        """Run one script to completion (waiting for a free slot first)."""
        async with self._sem:
            return await self._run(script)

    def spawn(
        self, script: Script, callback: Callable[[Script, ScriptResult], None] | None = None
    ) -> asyncio.Task[ScriptResult]:
        """Start a script in the background; ``callback(script, result)`` when it ends.
        The task is kept referenced until it finishes, so it is never collected early."""
        task = asyncio.get_running_loop().create_task(self.run(script))
        self._tasks.add(task)

        def done(t: asyncio.Task[ScriptResult]) -> None:
            self._tasks.discard(t)
            if callback is not None and not t.cancelled() and t.exception() is None:
                callback(script, t.result())

        task.add_done_callback(done)
        return task

    async def _run(self, script: Script) -> ScriptResult:
        name = script.name or script.argv[0]
        creds = _credentials(script.user, script.group)
        preexec = None
        if creds is not None:
            uid, gid, groups = creds

            def preexec() -> None:  # in the child, between fork and exec
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)

        t0 = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *script.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as one
                preexec_fn=preexec,
                env=script.env,
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            rc = 126 if isinstance(exc, PermissionError) else 127
            log.warning("script %s failed to start: %s", name, exc)
            return ScriptResult(rc, error=str(exc))
        self.started += 1
        self.running += 1
        try:
            try:
                rc = await asyncio.wait_for(proc.wait(), script.timeout)
            except TimeoutError:
                self.timeouts += 1
                log.warning(
                    "script %s timed out after %ss, killing its process group", name, script.timeout
                )
                rc = await self._kill(proc)
                return ScriptResult(rc, timed_out=True, duration=time.monotonic() - t0)
            except asyncio.CancelledError:
                await self._kill(proc)
                raise
        finally:
            self.running -= 1
        log.debug("script %s exited rc=%d", name, rc)
        return ScriptResult(rc, duration=time.monotonic() - t0)

    async def _kill(self, proc: asyncio.subprocess.Process) -> int:
        # The session leader's pid is the process group id (start_new_session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), self.kill_grace)
        except TimeoutError:
            pass
        finally:
            # Whatever the group left behind (children that ignore SIGTERM) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return await proc.wait()

    async def close(self) -> None:
        """Cancel (and kill) every script still running."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
