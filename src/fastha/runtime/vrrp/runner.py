"""The VRRP child: builds every instance from the config and runs them on one loop.

The runner owns the loop's resources (precise timer, netlink, scripts, notify FIFO,
signals, status socket) and holds the parts that do the work, each in its own module:
sockets, lifecycle, tracking and polling, links, vip_watch, groups, reload, statics,
no_accept, lvs_syncd, vmac, status and dumps. Every fd belongs to this one loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastha.config.model import Config
from fastha.drivers import sched
from fastha.drivers.netlink import Netlink
from fastha.drivers.rtnl_raw import RawRtnl
from fastha.drivers.scripts import ScriptRunner
from fastha.drivers.signals import SIGJSON, SIGSTATS_CLEAR
from fastha.runtime import child_status
from fastha.runtime.alerts import VrrpAlerts
from fastha.runtime.vrrp.bfd_events import BfdEvents
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.dumps import Dumps
from fastha.runtime.vrrp.from_config import vrrp_spec
from fastha.runtime.vrrp.groups import rebuild_groups
from fastha.runtime.vrrp.instance import Instance
from fastha.runtime.vrrp.lifecycle import Lifecycle
from fastha.runtime.vrrp.links import LinkEvents
from fastha.runtime.vrrp.lvs_syncd import SyncDaemonPolicy
from fastha.runtime.vrrp.no_accept import NoAcceptFirewall
from fastha.runtime.vrrp.polling import TrackerPolls
from fastha.runtime.vrrp.reload import Reloader
from fastha.runtime.vrrp.route_watch import RouteReaction
from fastha.runtime.vrrp.sockets import SocketPool
from fastha.runtime.vrrp.statics import add_statics, remove_statics
from fastha.runtime.vrrp.status import StatusOutput
from fastha.runtime.vrrp.timers import PassCollector
from fastha.runtime.vrrp.tracking import Trackers
from fastha.runtime.vrrp.vip_watch import VipWatch
from fastha.runtime.vrrp.vmac import Vmacs
from fastha.vrrp.actions import StateChanged
from fastha.wire.timer import PreciseTimer, set_timer_slack_ns

log = logging.getLogger("fastha.vrrp")

STOP_GRACE_S = 5.0
# Where keepalived's JSON signal (`keepalived --signum=JSON`) writes.
DEFAULT_JSON_FILE = "/tmp/keepalived.json"


@dataclass(slots=True)
class RunOptions:
    release_on_stop: bool = True  # keepalived -V turns it off
    json_file: str = DEFAULT_JSON_FILE
    # SIGHUP re-reads the configuration through this; None means the file has errors
    # (already logged with file:line) and the running configuration stays.
    reload_config: Callable[[], Config | None] | None = None
    # keepalived's SIGUSR1 / SIGUSR2 files (fastha.runtime.dumpfiles).
    data_file: str = "/tmp/keepalived.data"
    stats_file: str = "/tmp/keepalived.stats"


class VrrpRunner:
    def __init__(self, config: Config, options: RunOptions) -> None:
        self.current = Current(config, vrrp_spec(config))
        self.options = options
        self.pool = SocketPool()
        self.vmacs = Vmacs()
        self.firewall = NoAcceptFirewall(self.current.spec)
        self.trackers = Trackers()
        self.syncd = SyncDaemonPolicy(self.current)
        # The SMTP alerts this configuration asks for (fastha.runtime.alerts).
        self.alerts = VrrpAlerts(config)
        self.stopping = asyncio.Event()
        # Held by start, every reload and stop: they never interleave.
        self.reload_lock = asyncio.Lock()
        self.started_at = time.time()
        # The parts that need the loop's resources are made by run(), in _compose.

    def _compose(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lifecycle = Lifecycle(ctx, self.current, self.pool, self.vmacs)
        self.polls = TrackerPolls(ctx.scripts, self.current, self.trackers)
        self.links = LinkEvents(ctx, self.pool, self.trackers)
        self.bfd = BfdEvents(ctx, self.trackers)
        self.vip_watch = VipWatch(ctx)
        self.route_watch = RouteReaction(ctx, self.current, self.reload_lock)
        self.status = StatusOutput(ctx, self.alerts, self.polls.script_runs, self.started_at)
        o = self.options
        self.dumps = Dumps(
            ctx,
            self.current,
            self.status,
            data_file=o.data_file,
            stats_file=o.stats_file,
            json_file=o.json_file,
        )
        self.reloader = Reloader(
            reload_config=o.reload_config,
            lock=self.reload_lock,
            stopping=self.stopping,
            current=self.current,
            alerts=self.alerts,
            ctx=ctx,
            lifecycle=self.lifecycle,
            trackers=self.trackers,
            polls=self.polls,
            firewall=self.firewall,
            syncd=self.syncd,
        )
        ctx.on_state_change = self._on_state_change

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        set_timer_slack_ns(1)  # timerfd expiry may otherwise be deferred by 50 µs
        timer = PreciseTimer(loop)
        timer.start()
        nl = Netlink()
        await nl.open()
        scripts = ScriptRunner()
        fifo = self.current.notify_fifo(None, scripts)
        ctx = Context(loop, timer, nl, scripts, fifo, self.options.release_on_stop)
        try:
            ctx.rtnl = RawRtnl().open(loop)
        except OSError as exc:  # the VIPs go through pyroute2 alone
            log.warning("cannot open a netlink socket for VIPs: %s", exc.strerror or exc)
        self._compose(ctx)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(SIGJSON, self.dumps.write_json)
        loop.add_signal_handler(signal.SIGUSR1, self.dumps.write_data)
        loop.add_signal_handler(signal.SIGUSR2, self.dumps.write_stats)
        loop.add_signal_handler(SIGSTATS_CLEAR, self.dumps.write_stats, True)
        loop.add_signal_handler(signal.SIGHUP, self.reloader.request)
        status_server = None
        try:
            status_server = await child_status.serve_from_env(
                {
                    "status": self.status.status_dict,
                    "dump": self.status.status_dict,
                    "metrics": self.status.metrics_dict,
                }
            )
            async with self.reload_lock:
                await self._start(ctx)
            # Start-up garbage is frozen out of future collections, then the child goes
            # real-time: a long GC pass under SCHED_RR would trip RLIMIT_RTTIME.
            gc.collect()
            gc.freeze()
            collector = PassCollector(timer, loop)  # later ones run between adverts
            collector.start()
            spec = self.current.spec
            sched.apply(spec.sched, "VRRP child")
            if spec.sched.rt_priority is not None:
                ctx.rx_budget.set_rttime(spec.sched.rlimit_rttime_us)
            await self.stopping.wait()
            collector.stop()
            ctx.rx_budget.disable()
            sched.leave_realtime()
            log.info("Stopping")
            self.route_watch.close()  # what _stop deletes is no deletion by hand
            async with self.reload_lock:
                await self._stop(ctx)
            await self.alerts.drain(STOP_GRACE_S)
        finally:
            await child_status.close(status_server)
            self.polls.close()
            self.bfd.pipe.close()
            self.vip_watch.close()
            self.route_watch.close()
            self.pool.close()
            for sender in ctx.senders.values():
                sender.close()
            ctx.close_arp_watches()
            ctx.rx_budget.close()
            timer.close()
            await scripts.close()
            if self.vmacs.names and self.options.release_on_stop:  # a failed start, too
                await self.vmacs.remove_all(nl)
            await nl.close()
            if ctx.rtnl is not None:
                ctx.rtnl.close()
            if ctx.fifo is not None:  # a reload may have swapped it
                ctx.fifo.close()
        return 0

    async def _start(self, ctx: Context) -> None:
        spec = self.current.spec
        await add_statics(ctx.netlink, spec)
        await self.firewall.start(spec)  # before any VIP
        for instance_spec in spec.instances:
            await self.lifecycle.create(instance_spec)
        rebuild_groups(ctx, spec.groups)
        self.trackers.rebuild(ctx, spec, None)
        self.polls.sync_procwatch(set(self.trackers.now.processes))
        self.bfd.pipe.open()
        await ctx.netlink.watch_links(self.links.on_link)
        await self.vip_watch.open()
        self.route_watch.open()
        if spec.startup_delay_s:
            log.info("Delaying startup for %g seconds", spec.startup_delay_s)
            await asyncio.sleep(spec.startup_delay_s)
        for inst in ctx.instances.values():
            self.lifecycle.boot(inst, self.trackers.now.sets[inst.name])
        self.polls.sync_tasks()

    def _on_state_change(self, inst: Instance, change: StateChanged) -> None:
        """Every transition: its time for status, its SMTP alert, the sync daemon."""
        self.status.transition(inst)
        self.alerts.transition(inst, change.new)
        self.syncd.on_state_change(inst, change)

    async def _stop(self, ctx: Context) -> None:
        self.polls.stop()
        await self.lifecycle.stop_all(self.options.release_on_stop)
        await self.syncd.stop()
        if self.options.release_on_stop:  # -V: the VIPs stay, so does the VMAC under them
            await self.vmacs.remove_all(ctx.netlink)
            await remove_statics(ctx.netlink, self.current.spec)
            await self.firewall.remove()  # ... and the rules that guard them


def run_vrrp(
    config: Config,
    options: RunOptions,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run the VRRP side in this process until SIGTERM/SIGINT."""
    import uvloop

    runner = VrrpRunner(config, options)
    with asyncio.Runner(loop_factory=loop_factory or uvloop.new_event_loop) as r:
        return r.run(runner.run())
