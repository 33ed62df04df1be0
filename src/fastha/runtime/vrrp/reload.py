"""SIGHUP: re-read the configuration and apply only what changed (the plan is
from_config.diff_specs); the running configuration stays when the new one has errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from fastha.config.model import Config
from fastha.runtime.alerts import VrrpAlerts
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.from_config import SpecDiff, VrrpSpec, diff_specs, vrrp_spec
from fastha.runtime.vrrp.groups import rebuild_groups
from fastha.runtime.vrrp.instance import Instance
from fastha.runtime.vrrp.lifecycle import Lifecycle
from fastha.runtime.vrrp.lvs_syncd import SyncDaemonPolicy
from fastha.runtime.vrrp.no_accept import NoAcceptFirewall
from fastha.runtime.vrrp.polling import TrackerPolls
from fastha.runtime.vrrp.statics import swap_statics
from fastha.runtime.vrrp.tracking import Trackers, retrack

log = logging.getLogger("fastha.vrrp")


class Reloader:
    def __init__(
        self,
        *,
        reload_config: Callable[[], Config | None] | None,
        lock: asyncio.Lock,
        stopping: asyncio.Event,
        current: Current,
        alerts: VrrpAlerts,
        ctx: Context,
        lifecycle: Lifecycle,
        trackers: Trackers,
        polls: TrackerPolls,
        firewall: NoAcceptFirewall,
        syncd: SyncDaemonPolicy,
    ) -> None:
        self.reload_config = reload_config
        # Held by start, every reload and stop: they never interleave.
        self.lock = lock
        self.stopping = stopping
        self.current = current
        self.alerts = alerts
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.trackers = trackers
        self.polls = polls
        self.firewall = firewall
        self.syncd = syncd
        self.tasks: set[asyncio.Task[SpecDiff | None]] = set()

    def request(self) -> None:
        """SIGHUP: a reload, after whatever holds the lock."""
        if self.reload_config is None:
            log.warning("Reload requested, but no configuration file to re-read; ignored")
            return
        task = asyncio.get_running_loop().create_task(self.reload(), name="vrrp-reload")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reload(self) -> SpecDiff | None:
        """Re-read the configuration and apply only what changed. Returns the plan
        applied, or None when the new file has errors (the old one keeps running)."""
        assert self.reload_config is not None
        async with self.lock:
            if self.stopping.is_set():
                return None
            log.info("Reloading")
            try:
                # Parsed off the loop's thread: the GIL still switches every few ms, so
                # adverts stay on time while a large file is read.
                loop = asyncio.get_running_loop()
                config = await loop.run_in_executor(None, self.reload_config)
            except Exception:
                log.exception("Reload failed")
                config = None
            if config is None:
                log.error("Reload failed: configuration has errors; keeping the running one")
                return None
            new = vrrp_spec(config)
            diff = diff_specs(self.current.spec, new)
            self.current.config = config
            self.alerts.configure(config)
            try:
                await self._apply(diff, new)
            except Exception:
                # Half applied: what ran stays; log loudly rather than lose the child.
                log.exception("Reload failed while applying the new configuration")
                return None
            self.ctx.fifo = self.current.notify_fifo(self.ctx.fifo, self.ctx.scripts)
            log.info("Reload finished: %s", diff.summary())
            return diff

    async def _apply(self, diff: SpecDiff, new: VrrpSpec) -> None:
        ctx = self.ctx
        for label in diff.restart_only:
            log.warning("Reload: %s changed; it takes effect at the next restart", label)
        for name in diff.unchanged:
            log.debug("(%s) unchanged", name)
        for spec in diff.removed:
            log.info("(%s) removed from the configuration: stopping", spec.name)
            await self.lifecycle.remove(ctx.instances[spec.name])
        for ch in diff.restarted:
            log.info(
                "(%s) %s changed: restarting the instance",
                ch.name,
                ", ".join(ch.changes),
            )
            await self.lifecycle.remove(ctx.instances[ch.name])
        old_spec, self.current.spec = self.current.spec, new
        await self.firewall.follow(old_spec, new)
        for ch in diff.changed:
            inst = ctx.instances[ch.name]
            log.info("(%s) reloading in place: %s", ch.name, ", ".join(ch.changes))
            spec = ch.new
            if spec.params.primary_address is None:
                spec = replace(spec, params=replace(spec.params, primary_address=inst.src))
            inst.reconfigure(spec)
        fresh: list[Instance] = []
        for spec in (*(ch.new for ch in diff.restarted), *diff.added):
            if spec in diff.added:
                log.info("(%s) added to the configuration: starting", spec.name)
            fresh.append(await self.lifecycle.create(spec))
        # Trackers and groups are rebuilt for everyone; an instance whose evaluation did
        # not change receives no event, so nothing moves.
        before = {
            n: ts.evaluate() for n, ts in self.trackers.now.sets.items() if n in ctx.instances
        }
        rebuild_groups(ctx, new.groups)
        old_tracking = self.trackers.rebuild(ctx, new, old_spec)
        tracking = self.trackers.now
        self.polls.sync_procwatch(
            {n for n, p in tracking.processes.items() if old_tracking.processes.get(n) is not p}
        )
        for inst in ctx.instances.values():
            if inst not in fresh:
                ts = tracking.sets[inst.name]
                ts.events()  # later events are relative to this evaluation
                retrack(inst, before.get(inst.name), ts.evaluate())
        self.polls.sync_tasks()
        for inst in fresh:
            self.lifecycle.boot(inst, tracking.sets[inst.name])
        if diff.statics:
            await swap_statics(ctx.netlink, old_spec, new)
        if diff.lvs_syncd:
            self.syncd.follow(ctx.instances)
        ctx.update_arp_watches()  # a master's VIPs may now sit on another interface
