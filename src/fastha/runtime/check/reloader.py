"""SIGHUP in the checker child: re-read the configuration and apply the difference.

``CheckOptions.reload_config()`` re-reads the file (None: it has errors, which it logged
with file:line; the running config stays). Checks identical in both configs keep their
state and schedule; a virtual server whose services, real servers and health verdict
are unchanged is not dumped and gets no operation; changed and new ones are reconciled
with ``previous`` = what the old config owned, so entries dropped from the config go and
foreign entries stay (check/reload.py). One line ends every reload:
"Reload finished: ...; N IPVS operations".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from fastha.check.desired import DesiredError, DesiredTable
from fastha.check.health import Changed, Log, Notify
from fastha.check.reload import ReloadDiff, carry
from fastha.check.spec import build_plan

if TYPE_CHECKING:
    from fastha.runtime.check.runner import CheckerRunner

log = logging.getLogger("fastha.check")


class Reloader:
    def __init__(self, runner: CheckerRunner) -> None:
        self.runner = runner
        self._tasks: set[asyncio.Task[Any]] = set()
        # Held from reading the new config to applying it: two quick SIGHUPs apply in
        # order, the last one read winning (the VRRP runner's reload_lock).
        self._lock = asyncio.Lock()

    def on_hup(self) -> None:
        if self.runner.options.reload_config is None:
            log.warning("Reload requested, but no configuration file to re-read; ignored")
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(self.reload_from_file(), name="checker-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reload_from_file(self) -> ReloadDiff | None:
        """Re-read the file (off the loop's thread) and apply the difference."""
        reload_config = self.runner.options.reload_config
        assert reload_config is not None
        async with self._lock:
            log.info("Reloading")
            try:
                config = await asyncio.get_running_loop().run_in_executor(None, reload_config)
            except Exception:
                log.exception("Reload failed")
                config = None
            if config is None:
                self.runner.counters.reload_failures += 1
                log.error("Reload failed: configuration has errors; keeping the running one")
                return None
            return await self.reload(config)

    async def reload(self, config: Any) -> ReloadDiff | None:
        """Run ``config`` from now on, changing only what changed (module docstring)."""
        r = self.runner
        rec = r.reconciler
        assert rec.ipvs is not None and r.scheduler is not None and rec.lock is not None
        try:
            plan_ = build_plan(config)
            table = DesiredTable(config)
        except DesiredError as exc:
            r.counters.reload_failures += 1
            log.error(
                "Reload failed: configuration cannot be programmed into IPVS: %s; "
                "keeping the running one",
                exc,
            )
            return None
        async with rec.lock:
            if r.stopping is not None and r.stopping.is_set():
                return None
            run = r.running
            old_health, old_table, old_config = run.health, run.table, run.config
            health, actions, diff = carry(old_health, old_table, plan_, table)
            # Health changes not reconciled yet, renumbered into the new config.
            new_of = {oi: vi for vi, oi in diff.old_index.items()}
            pending = {new_of[oi] for oi in rec.take_dirty() if oi in new_of}
            # The down notifiers of virtual servers that go (keepalived clear_service_vs).
            omega = [
                a for vi in diff.removed for a in old_health.removed(vi) if isinstance(a, Notify)
            ]
            # The swap: nothing awaits between here and the scheduler's rebind, so every
            # probe result from now on lands in the new health model.
            run.config, run.plan, run.health, run.table = config, plan_, health, table
            r.scheduler.rebind(health)
            r.alerts.configure(config, health)
            r.log_skipped()
            for a in actions:
                if isinstance(a, Log):
                    log.info("%s", a.text)
            r.on_actions([a for a in actions if not isinstance(a, Changed)])
            for a in omega:
                r.notifications.notify(a, old_table)
            r.suspension.apply()
            await self._reload_globals(old_config)
            reconcile = set(diff.changed) | set(diff.added) | pending | rec.take_dirty()
            ops = await rec.reload_table(reconcile, set(diff.unchanged), old_table)
            r.counters.reloads += 1
            r.counters.last_reload_ops = len(ops)
            log.info("Reload finished: %s; %d IPVS operations", diff.summary(), len(ops))
            return diff

    async def _reload_globals(self, old_config: Any) -> None:
        old = getattr(getattr(old_config, "global_defs", None), "lvs_timeouts", None)
        new = getattr(getattr(self.runner.config, "global_defs", None), "lvs_timeouts", None)
        if new is not None and new != old:
            await self.runner.reconciler.set_timeouts(new)
