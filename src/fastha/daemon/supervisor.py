"""The parent process: spawn the children, keep them running, relay signals.

    fastha daemon (parent, this module)
      |- python -m fastha.runtime.child vrrp  -f FILE ...   (the VRRP child)
      |- python -m fastha.runtime.child check -f FILE ...   (the checker child)

What the parent does, in keepalived's order:

- at start: umask; enter `--namespace` (setns on /run/netns/NAME, so the children are
  born in it); refuse to start when the pid file names a live daemon; write the pid
  file; run startup_script (with its timeout); spawn the children, each with its pid
  file; control socket and (opt-in) metrics; sd_notify READY=1.
- a child that dies is respawned (daemon/children.py).
- SIGHUP (or `fastha reload`): validated off to the side, then the children are told
  (daemon/reload.py).
- SIGUSR1, SIGUSR2, the JSON signal and STATS_CLEAR are relayed to the children that
  write those files (daemon/signal_relay.py).
- SIGTERM/SIGINT: STOPPING=1, SIGTERM to each child, wait `stop_timeout` seconds, then
  SIGKILL; shutdown_script; pid files and sockets removed; exit 0.

The parent owns nothing timing-critical: it never touches VRRP or IPVS itself. Its jobs
each have a module: children (spawn, respawn, signal, stop), reload, signal_relay,
status (control socket and metrics answers), pidfile, options, sdnotify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from fastha.daemon import signal_relay
from fastha.daemon.children import Children
from fastha.daemon.options import SupervisorOptions
from fastha.daemon.pidfile import remove_pid_file, running_pid, write_pid_file
from fastha.daemon.reload import ParentReload
from fastha.daemon.sdnotify import Notifier
from fastha.daemon.status import ParentStatus
from fastha.drivers import netns
from fastha.runtime import child_status

log = logging.getLogger("fastha.daemon")


def enter_namespace(name: str) -> None:
    """setns(2) into /run/netns/NAME."""
    netns.setns(f"/run/netns/{name}")


class Supervisor:
    def __init__(self, options: SupervisorOptions, config: Any) -> None:
        self.options = options
        self.config = config  # the validated model now running
        self.notify = Notifier.from_env()
        self.stopping = False
        self.stop_event: asyncio.Event | None = None
        self.exit_code = 0
        self.started_at = time.time()
        # run() moves to "/": what the command line named relative to where we were
        # started is anchored first.
        options.anchor_paths()
        self.children = Children(
            options, self.snapshot_path, stopping=lambda: self.stopping, stop=self.stop
        )
        self.reloader = ParentReload(self)
        self.servers = ParentStatus(self)

    @property
    def snapshot_path(self) -> str:
        """The validated config the children load, at start and on SIGHUP."""
        return os.path.join(self.options.run_dir, child_status.SNAPSHOT_NAME)

    def write_snapshot(self, config: Any) -> None:
        child_status.write_snapshots(self.snapshot_path, config)

    # ---- process-wide setup, before the loop

    def run(self) -> int:
        """Set up the process, run until stopped; the exit code."""
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
            # keepalived main.c: logged at LOG_INFO, and the exit code is 0 (a second
            # start is no failure: the daemon asked for runs).
            log.info("daemon is already running")
            log.debug("pid %d in %s", other, o.pid_file)
            return 0
        if o.pid_file:
            write_pid_file(o.pid_file, os.getpid())
        try:
            # The stdlib loop: the parent waits for children and answers a few requests;
            # uvloop would cost it ~2 MB of RSS for speed it never needs.
            with asyncio.Runner() as runner:
                return runner.run(self.main())
        finally:
            remove_pid_file(o.pid_file)
            with contextlib.suppress(OSError):
                os.unlink(self.snapshot_path)
            self.notify.close()
            # The per-namespace directories (fastha.daemon.paths) go when left empty.
            pid_files = (o.pid_file, o.vrrp_pid_file, o.checkers_pid_file)
            for directory in {o.run_dir, *(os.path.dirname(p) for p in pid_files if p)}:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

    # ---- the loop

    async def main(self) -> int:
        from fastha.daemon import script_security
        from fastha.drivers.scripts import ScriptRunner

        loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self.reloader.open()
        signal_relay.install(
            loop, reload=self.reloader.on_hup, stop=self.stop, relay=self.children.signal
        )
        scripts = ScriptRunner(max_running=2)
        try:
            await script_security.run_logged(scripts, script_security.startup_script(self.config))
            await self.servers.start()
            if self.children.slots:
                try:
                    self.write_snapshot(self.config)
                except OSError as exc:
                    log.error("Cannot write %s: %s; not starting", self.snapshot_path, exc)
                    self.exit_code = 1
                    return 1
            await self.children.start(self.stop_event)
            self.notify.ready(f"running: {', '.join(self.children.slots) or 'no children'}")
            log.info("Startup complete")
            await self.stop_event.wait()
            self.notify.stopping()
            await self.children.stop()
            await script_security.run_logged(scripts, script_security.shutdown_script(self.config))
        finally:
            await scripts.close()
            await self.servers.close()
            signal_relay.remove(loop)
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


def run_supervisor(options: SupervisorOptions, config: Any) -> int:
    """Run the parent (the caller has loaded and validated `config`); the exit code."""
    return Supervisor(options, config).run()
