"""The parent's children: how each is started (command line, environment, session, pid
file), watched and respawned, signalled and stopped.

A child that dies is respawned after a delay that doubles from `backoff_initial` to
`backoff_max` (reset when it had run `stable_after` seconds), with one log line:
"VRRP child (pid N) died with status X, restarting in Y s". With -R the daemon stops
instead; a child exiting with EXIT_FATAL (bad config) stops it too.

The BFD child (a `bfd_instance` in the config, no -B) tells the VRRP and checker
children of its sessions' Up/Down through one pipe each (drivers/bfd_channel). The
parent creates the pipes before any child and keeps both ends for its whole life, so
a respawned child finds its end again; before a consumer is respawned the parent
empties what its predecessor left unread, and asks the BFD child to send every
session's state again (its `replay` command), as a started BFD child does. The pipes
exist unless -B, so a reload that adds the first `bfd_instance` starts the BFD child
(keepalived's propagate_signal) and the running consumers already hold their ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastha.daemon.options import SupervisorOptions
from fastha.daemon.pidfile import remove_pid_file, write_pid_file
from fastha.drivers import bfd_channel
from fastha.runtime import child_status
from fastha.runtime.child import ENV_PARENT_PID, EXIT_FATAL
from fastha.runtime.control import ControlError, request

log = logging.getLogger("fastha.daemon")

TITLES = {"vrrp": "VRRP child", "check": "Checker child", "bfd": "BFD child"}
KINDS = ("vrrp", "check", "bfd")


@dataclass(slots=True)
class ChildSlot:
    kind: str  # "vrrp" | "check" | "bfd"
    pid_file: str | None
    socket_path: str
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    backoff: float = 0.0
    restarts: int = 0
    last_status: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


def describe_status(returncode: int) -> str:
    """asyncio's returncode (negative: killed by that signal) as a log word."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-returncode).name
        return f"signal {-returncode}"
    return str(returncode)


class Children:
    def __init__(
        self,
        options: SupervisorOptions,
        snapshot_path: str,
        *,
        stopping: Callable[[], bool],
        stop: Callable[[int], None],
    ) -> None:
        """``stopping()``: the daemon is stopping (no respawn); ``stop(code)`` stops it
        (a child failed for good)."""
        self.options = o = options
        self.snapshot_path = snapshot_path
        self._stopping = stopping
        self._stop = stop
        self.slots: dict[str, ChildSlot] = {}
        if o.vrrp:
            self.slots["vrrp"] = ChildSlot("vrrp", o.vrrp_pid_file, f"{o.run_dir}/vrrp.sock")
        if o.check:
            self.slots["check"] = ChildSlot("check", o.checkers_pid_file, f"{o.run_dir}/check.sock")
        # The BFD event pipes, by consumer: (read end, write end). keepalived opens them
        # before it starts any child (bfd_daemon.c open_bfd_pipes).
        self.pipes: dict[str, tuple[int, int]] = {}
        if not o.no_bfd:
            for kind in ("vrrp", "check"):
                if kind in self.slots:
                    # Non-blocking: a full pipe (a consumer gone) never stalls the BFD child.
                    self.pipes[kind] = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        if o.bfd and not o.no_bfd:
            self.slots["bfd"] = self._bfd_slot()
        self._replays: set[asyncio.Task[None]] = set()
        self._stop_event: asyncio.Event | None = None

    def _bfd_slot(self) -> ChildSlot:
        return ChildSlot("bfd", self.options.bfd_pid_file, f"{self.options.run_dir}/bfd.sock")

    def argv(self, slot: ChildSlot) -> list[str]:
        o = self.options
        # -I: isolated (no script/working directory, PYTHON* or user site on sys.path): a
        # module planted where the daemon was started never runs as root in a child.
        argv = [sys.executable, "-I", "-m", "fastha.runtime.child"]
        if o.stub_children and slot.kind != "bfd":
            return [*argv, "sleep", "--role", slot.kind, *o.stub_args]
        argv += [slot.kind, "-f", o.config_file]
        if o.config_id is not None:
            argv += ["-i", o.config_id]
        if o.log_console:
            argv.append("-l")
        if o.log_detail:
            argv.append("-D")
        if o.no_syslog:
            argv.append("-G")
        if o.log_facility is not None:
            argv += ["-S", o.log_facility]
        if slot.kind == "bfd":
            return argv
        if o.data_file:
            argv += ["--data-file", o.data_file]
        if slot.kind == "vrrp" and o.stats_file:
            argv += ["--stats-file", o.stats_file]
        if (slot.kind == "vrrp" and not o.release_vrrp) or (
            slot.kind == "check" and not o.release_ipvs
        ):
            argv.append("--dont-release")
        if slot.kind == "vrrp" and o.json_file:
            argv += ["--json-file", o.json_file]
        return argv

    def env(self, slot: ChildSlot) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)  # systemd talks to the parent only
        env[child_status.ENV_SOCKET] = slot.socket_path
        env[child_status.ENV_CONFIG] = self.options.config_file
        env[child_status.ENV_SNAPSHOT] = child_status.snapshot_for(self.snapshot_path, slot.kind)
        if self.options.config_id is not None:
            env[child_status.ENV_CONFIG_ID] = self.options.config_id
        env[ENV_PARENT_PID] = str(os.getpid())
        for name in (bfd_channel.ENV_READ, bfd_channel.ENV_VRRP_WRITE, bfd_channel.ENV_CHECK_WRITE):
            env.pop(name, None)
        for name, fd in self.pipe_fds(slot).items():
            env[name] = str(fd)
        return env

    def pipe_fds(self, slot: ChildSlot) -> dict[str, int]:
        """The pipe ends ``slot``'s child gets, by the environment name it finds them."""
        if slot.kind == "bfd":
            names = {"vrrp": bfd_channel.ENV_VRRP_WRITE, "check": bfd_channel.ENV_CHECK_WRITE}
            return {names[kind]: ends[1] for kind, ends in self.pipes.items()}
        ends = self.pipes.get(slot.kind)
        return {bfd_channel.ENV_READ: ends[0]} if ends else {}

    async def start(self, stop_event: asyncio.Event) -> None:
        """Spawn every child and watch it until ``stop_event``."""
        self._stop_event = stop_event
        for slot in self.slots.values():
            await self._launch(slot)

    async def _launch(self, slot: ChildSlot) -> None:
        assert self._stop_event is not None
        slot.backoff = self.options.backoff_initial
        await self.spawn(slot)
        slot.task = asyncio.get_running_loop().create_task(
            self.watch(slot, self._stop_event), name=f"watch-{slot.kind}"
        )

    async def start_bfd(self) -> bool:
        """A reload added the first `bfd_instance`: start the BFD child (not with -B, not
        when one runs, not while stopping). True when started."""
        if self.options.no_bfd or "bfd" in self.slots or self._stopping():
            return False
        if self._stop_event is None:
            return False
        slot = self.slots["bfd"] = self._bfd_slot()
        await self._launch(slot)
        return True

    async def spawn(self, slot: ChildSlot) -> None:
        os.makedirs(self.options.run_dir, mode=0o755, exist_ok=True)
        ends = self.pipes.get(slot.kind)
        if ends is not None and slot.restarts:
            _drain(ends[0])  # what the dead consumer left unread is stale
        # Its own session: a Ctrl-C on the terminal reaches the parent only, which
        # decides; the child must not race it by exiting first.
        slot.proc = await asyncio.create_subprocess_exec(
            *self.argv(slot),
            stdin=asyncio.subprocess.DEVNULL,
            env=self.env(slot),
            start_new_session=True,
            pass_fds=tuple(self.pipe_fds(slot).values()),
        )
        slot.started_at = time.monotonic()
        if slot.pid_file:
            write_pid_file(slot.pid_file, slot.proc.pid)
        log.info("Starting %s, pid %d", slot.title, slot.proc.pid)
        if ends is not None and slot.restarts:
            task = asyncio.get_running_loop().create_task(self._replay(), name="bfd-replay")
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    async def _replay(self) -> None:
        """Ask the BFD child to send every session's state again (a consumer was
        respawned); a BFD child not running sends them itself when it starts."""
        bfd = self.slots.get("bfd")
        if bfd is None or bfd.pid is None:
            return
        try:
            await request(bfd.socket_path, "replay", self.options.child_query_timeout)
        except ControlError as exc:
            log.warning("BFD child: cannot replay the session states: %s", exc)

    async def watch(self, slot: ChildSlot, stop_event: asyncio.Event) -> None:
        """Respawn ``slot``'s child each time it dies, until the daemon stops."""
        o = self.options
        while True:
            proc = slot.proc
            assert proc is not None
            rc = await proc.wait()
            remove_pid_file(slot.pid_file)
            slot.last_status = describe_status(rc)
            if self._stopping():
                return
            if rc == EXIT_FATAL:
                log.error(
                    "%s (pid %d) exited with permanent error FATAL. Terminating",
                    slot.title,
                    proc.pid,
                )
                self._stop(1)
                return
            if not o.respawn:
                log.error(
                    "%s (pid %d) died with status %s, not respawning (-R): stopping",
                    slot.title,
                    proc.pid,
                    slot.last_status,
                )
                self._stop(1)
                return
            if time.monotonic() - slot.started_at >= o.stable_after:
                slot.backoff = o.backoff_initial
            delay = slot.backoff
            slot.backoff = min(delay * 2, o.backoff_max)
            log.warning(
                "%s (pid %d) died with status %s, restarting in %g s",
                slot.title,
                proc.pid,
                slot.last_status,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), delay)
            if self._stopping():
                return
            slot.restarts += 1
            await self.spawn(slot)

    def signal(self, signum: int, kinds: tuple[str, ...] = KINDS) -> dict[str, int]:
        """Send ``signum`` to the running children of ``kinds``; their pids by kind."""
        sent: dict[str, int] = {}
        for slot in self.slots.values():
            if slot.kind not in kinds:
                continue
            pid = slot.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
                    sent[slot.kind] = pid
        return sent

    async def stop(self) -> None:
        """SIGTERM to each child; SIGKILL to one still running `stop_timeout` s later."""
        self.signal(signal.SIGTERM)
        for slot in self.slots.values():
            proc = slot.proc
            if proc is None or proc.returncode is not None:
                continue
            try:
                await asyncio.wait_for(proc.wait(), self.options.stop_timeout)
            except TimeoutError:
                log.warning(
                    "%s (pid %d) still running %g s after SIGTERM, killing it",
                    slot.title,
                    proc.pid,
                    self.options.stop_timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for slot in self.slots.values():
            if slot.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await slot.task
            remove_pid_file(slot.pid_file)
        for task in list(self._replays):
            task.cancel()
        for ends in self.pipes.values():
            for fd in ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pipes.clear()


def _drain(fd: int) -> None:
    """Read and drop whatever is queued on the non-blocking pipe end ``fd``."""
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass
