"""The checker child: health checks and IPVS reconciliation on one uvloop loop.

    config -> Plan (spec) -> Health -> Scheduler (probes on the precise timer)
                                     \\-> Changed(vs) -> desired table -> kernel dump
                                                      -> planner ops -> IPVS driver

At start: ``lvs_timeouts``, ``lvs_flush``, then the initial table (every virtual server
with its real servers presumed up, or down with ``alpha``) before the first probe ends.
On a health change only the virtual servers that changed are dumped and reconciled; the
changes are coalesced, so a burst of probe results costs one pass. Every kernel
operation is logged once, in keepalived's words where it has them ("Adding service
[192.168.1.1]:tcp:80 to VS [10.0.0.1]:tcp:80"); a line the health model already logged
for the same change is not repeated.

Ownership: fastha touches only the services and real servers its config names (a
foreign entry made with ipvsadm survives, even inside one of our services), unless
``lvs_flush``. On SIGTERM it removes the services it owns (the kernel drops their real
servers), or flushes the whole table with ``lvs_flush_on_stop``; ``-I``
(dont_release_ipvs) leaves everything in place. ``lvs_sync_daemon`` follows a VRRP
instance's state, which the VRRP child drives; the checker child does not start it.

This module starts and stops the child and routes health actions; each other job has
its module in this package: reconciler (IPVS passes), oplog (their log lines), notify
(scripts and FIFOs), reloader (SIGHUP), suspend (ha_suspend), status (status, metrics,
data file), signals, state (what runs now, counters).

    run_checker(config, CheckOptions(release_on_stop=True)) -> exit code
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastha.check.desired import DesiredError, DesiredTable
from fastha.check.health import Action, Changed, Health, Log, Notify
from fastha.check.spec import Plan
from fastha.config.model import FlushOnStop
from fastha.drivers.ipvs import IPVS
from fastha.drivers.scripts import ScriptRunner
from fastha.probes import ProbeContext
from fastha.runtime import child_status
from fastha.runtime.alerts import CheckerAlerts
from fastha.runtime.check import signals, status
from fastha.runtime.check.bfd_events import BfdChecks
from fastha.runtime.check.notify import Notifications
from fastha.runtime.check.reconciler import Reconciler
from fastha.runtime.check.reloader import Reloader
from fastha.runtime.check.scheduler import Scheduler
from fastha.runtime.check.state import Counters, Running
from fastha.runtime.check.suspend import AddressFactory, HaSuspend

log = logging.getLogger("fastha.check")

STOP_SCRIPTS_WAIT = 5.0  # seconds the omega notifiers get at shutdown


@dataclass(slots=True)
class CheckOptions:
    release_on_stop: bool = True  # keepalived -I (dont_release_ipvs) turns it off
    # SIGHUP: re-read the configuration; None when it has errors (logged with file:line).
    reload_config: Callable[[], Any] | None = None
    # keepalived's SIGUSR1 file for the checker (fastha.runtime.dumpfiles).
    data_file: str = "/tmp/keepalived_check.data"


class CheckerRunner:
    def __init__(
        self,
        config: Any,
        options: CheckOptions | None = None,
        *,
        ipvs_factory: Callable[[], IPVS] = IPVS,
        addr_factory: AddressFactory | None = None,
    ) -> None:
        self.options = options if options is not None else CheckOptions()
        self.ipvs_factory = ipvs_factory
        self.running = Running.build(config)  # DesiredError: the config cannot be a table
        self.counters = Counters()
        self.scheduler: Scheduler | None = None
        self.scripts = ScriptRunner()
        self.stopping: asyncio.Event | None = None
        self.reconciler = Reconciler(self.running, self.counters)
        self.notifications = Notifications(self.running, self.counters, self.scripts)
        self.suspension = HaSuspend(self.running, addr_factory)
        self.reloader = Reloader(self)
        self.bfd = BfdChecks(lambda: self.scheduler)
        self._skipped_logged: set[str] = set()
        self.alerts = CheckerAlerts(config, self.health)
        self.started_at = time.time()

    # What runs now (a reload replaces all four together).
    @property
    def config(self) -> Any:
        return self.running.config

    @property
    def plan(self) -> Plan:
        return self.running.plan

    @property
    def health(self) -> Health:
        return self.running.health

    @property
    def table(self) -> DesiredTable:
        return self.running.table

    def on_actions(self, actions: list[Action]) -> None:
        """The scheduler's callback (sync, on the loop): never blocks."""
        touched: set[int] = set()
        changed: set[int] = set()
        for a in actions:
            if isinstance(a, Changed):
                changed.add(a.vs)
                touched.add(a.vs)
            elif isinstance(a, Log):
                self.reconciler.heard(a.text)
            elif isinstance(a, Notify):
                self.notifications.notify(a)
                touched.add(a.vs)
        if self.alerts.enabled:
            self.alerts.observe(self.health, touched)
        self.reconciler.mark(changed)

    def log_skipped(self) -> None:
        """Log "Not checking ..." for each check the plan leaves out, on reload only for
        those the previous config did not leave out."""
        for text in self.plan.skipped:
            if text not in self._skipped_logged:
                log.warning("Not checking %s", text)
        self._skipped_logged = set(self.plan.skipped)

    def status_dict(self, _request: object = None) -> dict[str, Any]:
        return status.status_dict(self)

    async def metrics_dict(self, _request: object = None) -> dict[str, Any]:
        return await status.metrics_dict(self)

    def write_data(self) -> None:
        status.write_data(self)

    # ------------------------------------------------------------ lifecycle

    async def start(self, ipvs: IPVS) -> None:
        rec = self.reconciler
        rec.open(ipvs)
        gd = getattr(self.config, "global_defs", None)
        t = getattr(gd, "lvs_timeouts", None)
        if t is not None:
            await rec.set_timeouts(t)
        if getattr(gd, "lvs_flush", False):
            log.info("Flushing IPVS table (lvs_flush)")
            await ipvs.flush()
        sd = getattr(gd, "lvs_sync_daemon", None)
        if sd is not None:
            log.warning(
                "lvs_sync_daemon on %s follows VRRP instance %s: started by the daemon "
                "parent, not by the checker child alone",
                sd.interface,
                sd.instance,
            )
        self.log_skipped()
        self.scheduler = Scheduler(
            self.health, ProbeContext(scripts=self.scripts), on_actions=self.on_actions
        )
        await self.suspension.open(self.scheduler)
        # Health.start(): Changed for every virtual server. No probe yet: the initial
        # table first, before any probe result can change it and without probes in
        # flight while it is written (a busy loop would time them out).
        self.scheduler.start(probe=False)
        vis = rec.take_dirty() | set(range(len(self.table)))
        await rec.reconcile(vis, quiet=True)
        services = sum(len(v.services) for v in self.table.vss)
        log.info("IPVS table initialised: %d virtual services", services)
        for text in self.health.activation_lines(self.scheduler.suspended):
            log.info("%s", text)
        log.info("Activating BFD healthchecker")  # keepalived: always (check_api.c)
        self.scheduler.probe_all()
        self.bfd.open()
        rec.start_loop()

    async def stop(self) -> None:
        await self.reloader.cancel()
        self.bfd.close()
        self.suspension.close()
        await self.reconciler.close()
        if self.scheduler is not None:
            # Probes stop; the runner stays open for omega's notifiers (keepalived runs
            # them at shutdown), then self.scripts.close() below ends what is left.
            await self.scheduler.close(keep_scripts=True)
            stops = [a for a in self.scheduler.stop_actions() if isinstance(a, Notify)]
            tasks = [t for a in stops if (t := self.notifications.notify(a)) is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_SCRIPTS_WAIT)
        await self.scripts.close()
        if self.reconciler.ipvs is None:
            return
        if not self.options.release_on_stop:
            log.info("Leaving IPVS table in place (dont_release_ipvs)")
            return
        for text in self.health.shutdown_lines():
            log.info("%s", text)
        gd = getattr(self.config, "global_defs", None)
        if getattr(gd, "lvs_flush_on_stop", None) is FlushOnStop.ALL:
            log.info("Flushing IPVS table (lvs_flush_on_stop)")
            await self.reconciler.ipvs.flush()
            return
        await self.reconciler.release()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.stopping = stopping = asyncio.Event()
        signals.install(
            loop, stop=stopping.set, reload=self.reloader.on_hup, write_data=self.write_data
        )
        status_server = await child_status.serve_from_env(
            {"status": self.status_dict, "dump": self.status_dict, "metrics": self.metrics_dict}
        )
        ipvs = self.ipvs_factory()
        try:
            await ipvs.open()
        except OSError as exc:
            log.error("IPVS: %s (is ip_vs loaded?)", exc)
            ipvs.close()
            await child_status.close(status_server)
            return 1
        code = 0
        try:
            await self.start(ipvs)
            checks, vss = len(self.plan.checks), len(self.table)
            log.info("Checker started: %d checks, %d virtual servers", checks, vss)
            await stopping.wait()
            log.info("Stopping")
        except (OSError, ConnectionError) as exc:
            log.error("IPVS: %s", exc)
            code = 1
        finally:
            try:
                await self.stop()
            finally:
                ipvs.close()
                await self.alerts.drain(STOP_SCRIPTS_WAIT)
                await child_status.close(status_server)
                signals.remove(loop)
        log.info("Stopped")
        return code


def run_checker(
    config: Any,
    options: CheckOptions | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run the checker side in this process until SIGTERM/SIGINT; the exit code."""
    import uvloop

    try:
        runner = CheckerRunner(config, options)
    except DesiredError as exc:
        log.error("Configuration cannot be programmed into IPVS: %s", exc)
        return 1
    with asyncio.Runner(loop_factory=loop_factory or uvloop.new_event_loop) as r:
        return r.run(runner.run())
