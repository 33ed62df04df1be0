"""The parent process: spawn the children, keep them running, relay signals.

    fastha daemon (parent, this module)
      |- python -m fastha.runtime.child vrrp  -f FILE ...   (the VRRP child)
      |- python -m fastha.runtime.child check -f FILE ...   (the checker child)

What the parent does, in keepalived's order:

- at start: umask; enter `--namespace` (setns on /run/netns/NAME, so the children are
  born in it); refuse to start when the pid file names a live daemon; write the pid
  file; run startup_script (with its timeout); spawn the children, each with its pid
  file; control socket and (opt-in) metrics; sd_notify READY=1.
- a child that dies is respawned after a delay that doubles from `backoff_initial` to
  `backoff_max` (reset when it had run `stable_after` seconds), with one log line:
  "VRRP child (pid N) died with status X, restarting in Y s". With -R the daemon stops
  instead; a child exiting with EXIT_FATAL (bad config) stops it too.
- SIGHUP (or `fastha reload`): the new file is parsed and validated off to the side; with
  errors, every error is logged with file:line and the children are not told (they keep
  the old config); else the validated model is written to the snapshot in the run dir
  (child_status.write_snapshot) and each child gets SIGHUP, loads that snapshot -- never
  the file, which may have changed again -- and applies the difference itself. A
  respawned child starts from the snapshot too.
- SIGUSR1 is passed on to both children (each writes its data file), SIGUSR2, the
  JSON signal (SIGRTMIN+2) and STATS_CLEAR (SIGRTMAX-1) to the VRRP child (the stats and
  JSON files are VRRP's).
- SIGTERM/SIGINT: STOPPING=1, SIGTERM to each child, wait `stop_timeout` seconds, then
  SIGKILL; shutdown_script; pid files and sockets removed; exit 0.

The parent owns nothing timing-critical: it never touches VRRP or IPVS itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from fastha.daemon.paths import DEFAULT_CONTROL_SOCKET
from fastha.daemon.sdnotify import Notifier
from fastha.drivers import netns
from fastha.drivers.files import write_atomic
from fastha.drivers.signals import SIGJSON, SIGSTATS_CLEAR
from fastha.runtime import child_status
from fastha.runtime.child import ENV_PARENT_PID, EXIT_FATAL
from fastha.runtime.control import ControlError, JsonServer, request

log = logging.getLogger("fastha.daemon")

DEFAULT_RUN_DIR = "/run/fastha"
# keepalived's default pid files.
DEFAULT_PID_FILE = "/run/keepalived.pid"
DEFAULT_VRRP_PID_FILE = "/run/vrrp.pid"
DEFAULT_CHECKERS_PID_FILE = "/run/checkers.pid"

TITLES = {"vrrp": "VRRP child", "check": "Checker child"}
# keepalived's parent passes these on: SIGUSR1 (data file), SIGUSR2 (stats file), and
# the JSON signal (SIGRTMIN+2); each child writes its own part. Which child gets which:
# a real-time signal nobody handles would terminate the checker.
# keepalived's SIGSTATS_CLEAR (SIGRTMAX-1) goes to the VRRP child like SIGUSR2; unhandled,
# a real-time signal's default action would terminate the parent.
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, SIGJSON, SIGSTATS_CLEAR)
FORWARD_TO: dict[int, tuple[str, ...]] = {
    signal.SIGUSR1: ("vrrp", "check"),
    signal.SIGUSR2: ("vrrp",),
    SIGJSON: ("vrrp",),
    SIGSTATS_CLEAR: ("vrrp",),
}

_PATH_OPTIONS = ("config_file", "pid_file", "vrrp_pid_file", "checkers_pid_file",
                 "control_socket", "run_dir", "data_file", "stats_file", "json_file")  # fmt: skip


@dataclass(slots=True)
class SupervisorOptions:
    config_file: str
    config_id: str | None = None
    vrrp: bool = True  # -C alone turns it off
    check: bool = True  # -P alone turns it off
    respawn: bool = True  # -R turns it off
    pid_file: str | None = None  # -p
    vrrp_pid_file: str | None = None  # -r
    checkers_pid_file: str | None = None  # -c
    control_socket: str | None = DEFAULT_CONTROL_SOCKET
    run_dir: str = DEFAULT_RUN_DIR  # the children's status sockets
    namespace: str | None = None  # -s
    umask: int | None = 0o022
    metrics_listen: str | None = None  # "HOST:PORT", opt-in
    log_console: bool = False  # -l, passed on to the children
    log_detail: bool = False  # -D
    no_syslog: bool = False  # -G
    log_facility: str | None = None  # -S
    data_file: str | None = None  # SIGUSR1 (the checker's gets _check)
    stats_file: str | None = None  # SIGUSR2
    release_vrrp: bool = True  # -V turns it off
    release_ipvs: bool = True  # -I turns it off
    json_file: str | None = None
    all_config: bool = False  # -e: every include must be there (at reload too)
    stop_timeout: float = 10.0  # seconds between SIGTERM and SIGKILL of a child
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0
    child_query_timeout: float = 2.0
    # Tests only: spawn `fastha.runtime.child sleep` (obeys signals, nothing else).
    stub_children: bool = False
    stub_args: tuple[str, ...] = ()


@dataclass(slots=True)
class ChildSlot:
    kind: str  # "vrrp" | "check"
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


def enter_namespace(name: str) -> None:
    """setns(2) into /run/netns/NAME."""
    netns.setns(f"/run/netns/{name}")


def write_pid_file(path: str, pid: int) -> None:
    """keepalived's format: the pid and a newline, mode 0644, replaced atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # As the dump files: no predictable temporary a planted symlink could redirect.
    write_atomic(path, f"{pid}\n".encode(), 0o644)


def remove_pid_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def running_pid(path: str | None) -> int | None:
    """The live process a pid file names (not us), as keepalived's keepalived_running()."""
    if not path:
        return None
    try:
        with open(path) as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class Supervisor:
    def __init__(self, options: SupervisorOptions, config: Any) -> None:
        self.options = options
        self.config = config  # the validated model now running
        self.notify = Notifier.from_env()
        self.slots: dict[str, ChildSlot] = {}
        self.stopping = False
        self.stop_event: asyncio.Event | None = None
        self.exit_code = 0
        self.reloads = 0
        self.refused_reloads = 0
        self.last_reload: dict[str, Any] | None = None
        self.started_at = time.time()
        self.control: JsonServer | None = None
        self.metrics: Any = None
        self._reload_lock: asyncio.Lock | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        o = options
        # run() moves to "/": what the command line named relative to where we were
        # started is anchored first.
        for name in _PATH_OPTIONS:
            if getattr(o, name):
                setattr(o, name, os.path.abspath(getattr(o, name)))
        if o.vrrp:
            self.slots["vrrp"] = ChildSlot("vrrp", o.vrrp_pid_file, f"{o.run_dir}/vrrp.sock")
        if o.check:
            self.slots["check"] = ChildSlot("check", o.checkers_pid_file, f"{o.run_dir}/check.sock")

    @property
    def snapshot_path(self) -> str:
        """The validated config the children load, at start and on SIGHUP."""
        return os.path.join(self.options.run_dir, child_status.SNAPSHOT_NAME)

    def _write_snapshot(self, config: Any) -> None:
        child_status.write_snapshot(self.snapshot_path, config)

    # ---- process-wide setup, before the loop

    def run(self) -> int:
        """Set up the process, run until stopped; the exit code."""
        import uvloop

        o = self.options
        # As daemons do (keepalived's xdaemon): the directory we were started from may
        # belong to anyone, and nothing of ours may be looked up in it.
        os.chdir("/")
        if o.umask is not None:
            os.umask(o.umask)
        if o.namespace:
            enter_namespace(o.namespace)
        other = running_pid(o.pid_file)
        if other is not None:
            log.error("daemon is already running (pid %d in %s)", other, o.pid_file)
            return 1
        if o.pid_file:
            write_pid_file(o.pid_file, os.getpid())
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(self.main())
        finally:
            remove_pid_file(o.pid_file)
            with contextlib.suppress(OSError):
                os.unlink(self.snapshot_path)
            self.notify.close()
            # The per-namespace directories (fastha.daemon.paths) go when left empty.
            for directory in {o.run_dir, *(os.path.dirname(p) for p in (
                    o.pid_file, o.vrrp_pid_file, o.checkers_pid_file) if p)}:  # fmt: skip
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

    # ---- the loop

    async def main(self) -> int:
        from fastha.daemon import script_security
        from fastha.drivers.scripts import ScriptRunner

        loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        for signum in FORWARDED:
            loop.add_signal_handler(signum, self._signal_children, signum, FORWARD_TO[signum])
        scripts = ScriptRunner(max_running=2)
        try:
            await script_security.run_logged(scripts, script_security.startup_script(self.config))
            await self._start_servers()
            if self.slots:
                try:
                    self._write_snapshot(self.config)
                except OSError as exc:
                    log.error("Cannot write %s: %s; not starting", self.snapshot_path, exc)
                    self.exit_code = 1
                    return 1
            for slot in self.slots.values():
                slot.backoff = self.options.backoff_initial
                await self._spawn(slot)
                slot.task = loop.create_task(self._watch(slot), name=f"watch-{slot.kind}")
            self.notify.ready(f"running: {', '.join(self.slots) or 'no children'}")
            log.info("Startup complete")
            await self.stop_event.wait()
            self.notify.stopping()
            await self._stop_children()
            await script_security.run_logged(scripts, script_security.shutdown_script(self.config))
        finally:
            await scripts.close()
            await self._close_servers()
            for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, *FORWARDED):
                loop.remove_signal_handler(signum)
        log.info("Stopped")
        return self.exit_code

    def stop(self, code: int | None = None) -> None:
        if code is not None and self.exit_code == 0:
            self.exit_code = code
        if not self.stopping:
            log.info("Stopping")
            self.stopping = True
            if self.stop_event is not None:
                self.stop_event.set()

    # ---- children

    def _argv(self, slot: ChildSlot) -> list[str]:
        o = self.options
        # -I: isolated (no script/working directory, PYTHON* or user site on sys.path): a
        # module planted where the daemon was started never runs as root in a child.
        argv = [sys.executable, "-I", "-m", "fastha.runtime.child"]
        if o.stub_children:
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

    def _env(self, slot: ChildSlot) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)  # systemd talks to the parent only
        env[child_status.ENV_SOCKET] = slot.socket_path
        env[child_status.ENV_CONFIG] = self.options.config_file
        env[child_status.ENV_SNAPSHOT] = self.snapshot_path
        if self.options.config_id is not None:
            env[child_status.ENV_CONFIG_ID] = self.options.config_id
        env[ENV_PARENT_PID] = str(os.getpid())
        return env

    async def _spawn(self, slot: ChildSlot) -> None:
        os.makedirs(self.options.run_dir, mode=0o755, exist_ok=True)
        # Its own session: a Ctrl-C on the terminal reaches the parent only, which
        # decides; the child must not race it by exiting first.
        slot.proc = await asyncio.create_subprocess_exec(
            *self._argv(slot),
            stdin=asyncio.subprocess.DEVNULL,
            env=self._env(slot),
            start_new_session=True,
        )
        slot.started_at = time.monotonic()
        if slot.pid_file:
            write_pid_file(slot.pid_file, slot.proc.pid)
        log.info("Starting %s, pid %d", slot.title, slot.proc.pid)

    async def _watch(self, slot: ChildSlot) -> None:
        assert self.stop_event is not None
        o = self.options
        while True:
            proc = slot.proc
            assert proc is not None
            rc = await proc.wait()
            remove_pid_file(slot.pid_file)
            slot.last_status = describe_status(rc)
            if self.stopping:
                return
            if rc == EXIT_FATAL:
                log.error(
                    "%s (pid %d) exited with permanent error FATAL. Terminating",
                    slot.title,
                    proc.pid,
                )
                self.stop(1)
                return
            if not o.respawn:
                log.error(
                    "%s (pid %d) died with status %s, not respawning (-R): stopping",
                    slot.title,
                    proc.pid,
                    slot.last_status,
                )
                self.stop(1)
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
                await asyncio.wait_for(self.stop_event.wait(), delay)
            if self.stopping:
                return
            slot.restarts += 1
            await self._spawn(slot)

    def _signal_children(
        self, signum: int, kinds: tuple[str, ...] = ("vrrp", "check")
    ) -> dict[str, int]:
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

    async def _stop_children(self) -> None:
        self._signal_children(signal.SIGTERM)
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

    # ---- reload

    def _on_hup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._pending.add(task)  # referenced until done
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> dict[str, Any]:
        """Validate the file off to the side; only a clean one reaches the children."""
        from fastha.config.diagnostics import Severity
        from fastha.config.loader import load
        from fastha.config.preprocess import default_config_id

        assert self._reload_lock is not None
        async with self._reload_lock:
            if self.stopping:
                return {"accepted": False, "errors": ["stopping"]}
            path = self.options.config_file
            self.notify.reloading()
            log.info("Reloading: validating %s", path)
            # In a thread: a big (or hostile, bounded) file must not stop the loop that
            # answers status and respawns children.
            result = await asyncio.to_thread(
                load, path, self.options.config_id or default_config_id(),
                all_config=self.options.all_config,
            )  # fmt: skip
            errors = [str(d) if d.where else f"{path}: {d}" for d in result.errors]
            warnings = [
                str(d) if d.where else f"{path}: {d}"
                for d in result.diagnostics
                if d.severity is Severity.WARNING
            ]
            for text in warnings:
                log.warning("%s", text)
            if not result.ok:
                for text in errors:
                    log.error("%s", text)
                # The children's wording for the same outcome (operators grep for it).
                log.error(
                    "Reload failed: configuration has errors; keeping the running one "
                    "(%s: %d error(s); the children were not signalled)",
                    path,
                    len(errors),
                )
                self.refused_reloads += 1
                outcome: dict[str, Any] = {"accepted": False, "errors": errors}
                self.notify.ready(f"running; reload refused ({len(errors)} errors)")
            else:
                try:
                    # The children load this, never the file: it may change again.
                    self._write_snapshot(result.config)
                except (OSError, pickle.PicklingError) as exc:
                    log.error("Reload failed: cannot write %s: %s; keeping the running "
                              "configuration (the children were not signalled)",
                              self.snapshot_path, exc)  # fmt: skip
                    self.refused_reloads += 1
                    outcome = {"accepted": False, "errors": [str(exc)]}
                    self.last_reload = {"at": time.time(), **outcome}
                    self.notify.ready("running; reload refused (snapshot not written)")
                    return outcome
                self.config = result.config
                signalled = self._signal_children(signal.SIGHUP)
                self.reloads += 1
                log.info("Reload: %s accepted, children signalled: %s", path, signalled)
                outcome = {"accepted": True, "warnings": warnings, "signalled": signalled}
                self.notify.ready("running; reloaded")
            self.last_reload = {"at": time.time(), **outcome}
            return outcome

    # ---- status for the control socket and metrics

    def parent_status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "config_file": self.options.config_file,
            "started_at": self.started_at,
            "uptime_s": time.time() - self.started_at,
            "reloads": self.reloads,
            "refused_reloads": self.refused_reloads,
            "last_reload": self.last_reload,
            "children": {
                kind: {
                    "pid": slot.pid,
                    "running": slot.pid is not None,
                    "restarts": slot.restarts,
                    "last_exit_status": slot.last_status,
                }
                for kind, slot in self.slots.items()
            },
        }

    async def _ask(self, slot: ChildSlot, cmd: str) -> Any:
        if slot.pid is None:
            return {"error": "not running"}
        try:
            return await request(slot.socket_path, cmd, self.options.child_query_timeout)
        except ControlError as exc:
            return {"error": str(exc)}

    async def gather(self, cmd: str) -> dict[str, Any]:
        """Each child's answer to `cmd`, asked concurrently, by child name."""
        slots = list(self.slots.values())
        answers = await asyncio.gather(*(self._ask(s, cmd) for s in slots))
        return {s.kind: a for s, a in zip(slots, answers, strict=True)}

    async def status(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"parent": self.parent_status(), **(await self.gather("status"))}

    async def metrics_status(self) -> dict[str, Any]:
        """`status` with the children's metrics-only parts (fastha.daemon.metrics); a
        child that has no `metrics` command (a stub) is asked for its `status`."""
        answers = await self.gather("metrics")
        for kind, answer in answers.items():
            if isinstance(answer, dict) and "unknown command" in str(answer.get("error", "")):
                answers[kind] = await self._ask(self.slots[kind], "status")
        return {"parent": self.parent_status(), **answers}

    async def dump(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        import orjson

        from fastha.config.dump import dumps

        return {"config": orjson.loads(dumps(self.config)), **(await self.gather("dump"))}

    async def _reload_cmd(self, _request: dict[str, Any]) -> dict[str, Any]:
        return await self.reload()

    async def _start_servers(self) -> None:
        o = self.options
        if o.control_socket:
            handlers = {"status": self.status, "dump": self.dump, "reload": self._reload_cmd}
            self.control = await JsonServer(o.control_socket, handlers).start()
        if o.metrics_listen:
            from fastha.daemon.metrics import MetricsServer

            host, _, port = o.metrics_listen.rpartition(":")
            self.metrics = await MetricsServer(
                host.strip("[]") or "127.0.0.1", int(port), self.metrics_status
            ).start()

    async def _close_servers(self) -> None:
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            await self.metrics.close()


def run_supervisor(options: SupervisorOptions, config: Any) -> int:
    """Run the parent (the caller has loaded and validated `config`); the exit code."""
    return Supervisor(options, config).run()
