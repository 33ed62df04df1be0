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

SIGHUP: ``CheckOptions.reload_config()`` re-reads the file (None: it has errors, which
it logged with file:line; the running config stays). Checks identical in both configs
keep their state and schedule; a virtual server whose services, real servers and health
verdict are unchanged is not dumped and gets no operation; changed and new ones are
reconciled with ``previous`` = what the old config owned, so entries dropped from the
config go and foreign entries stay (check/reload.py). One line ends every reload:
"Reload finished: ...; N IPVS operations".

ha_suspend: the checkers of such a virtual server run only while its address is local
(drivers/addrwatch.py); a check shared with a virtual server that is not suspended
keeps running.

    run_checker(config, CheckOptions(release_on_stop=True)) -> exit code
    python -m fastha.check.runner -f keepalived.conf -l [-I]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastha.check.desired import DesiredError, DesiredTable
from fastha.check.health import Action, Changed, Health, Log, Notify
from fastha.check.reload import ReloadDiff, carry
from fastha.check.scheduler import Scheduler
from fastha.check.spec import build_plan
from fastha.config.invocation import Script
from fastha.config.model import FlushOnStop, GlobalDefs
from fastha.config.scripts import Resolved, enabled
from fastha.drivers.addrwatch import Address, AddressWatcher
from fastha.drivers.fifo import NotifyFifo, fifo_owner
from fastha.drivers.ipvs import IPVS, IPVSError
from fastha.drivers.scripts import ScriptRunner
from fastha.drivers.signals import SIGJSON
from fastha.ipvs.model import Service, ServiceKey, Timeouts
from fastha.ipvs.planner import Op, OpKind, plan
from fastha.probes import ProbeContext
from fastha.runtime import child_status
from fastha.runtime.alerts import CheckerAlerts
from fastha.runtime.dumpfiles import checker_data_text, write_text

log = logging.getLogger("fastha.check")

STOP_SCRIPTS_WAIT = 5.0  # seconds the omega notifiers get at shutdown
_IGNORED = (signal.SIGUSR2, SIGJSON)


@dataclass(slots=True)
class CheckOptions:
    release_on_stop: bool = True  # keepalived -I (dont_release_ipvs) turns it off
    # SIGHUP: re-read the configuration; None when it has errors (logged with file:line).
    reload_config: Callable[[], Any] | None = None
    # keepalived's SIGUSR1 file for the checker (fastha.runtime.dumpfiles).
    data_file: str = "/tmp/keepalived_check.data"


@dataclass(slots=True)
class Counters:
    reconciles: int = 0
    ops: int = 0
    failed_ops: int = 0
    notifies: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_reload_ops: int = 0
    errors: list[str] = field(default_factory=list)


class CheckerRunner:
    def __init__(
        self,
        config: Any,
        options: CheckOptions | None = None,
        *,
        ipvs_factory: Callable[[], IPVS] = IPVS,
        addr_factory: Callable[[Callable[[Address, bool], None]], AddressWatcher] | None = None,
    ) -> None:
        self.config = config
        self.options = options if options is not None else CheckOptions()
        self.ipvs_factory = ipvs_factory
        self.plan = build_plan(config)
        self.health = Health(self.plan)
        self.table = DesiredTable(config)  # DesiredError: the config cannot be a table
        # notify_up/down, quorum_up/down as keepalived runs them, per config.
        self._notify_scripts: dict[tuple[str, str | None, str | None], Resolved | None] = {}
        self._notify_config: Any = None
        self.counters = Counters()
        self.ipvs: IPVS | None = None
        self.scheduler: Scheduler | None = None
        self.scripts = ScriptRunner()
        self.stopping: asyncio.Event | None = None
        self._dirty: set[int] = set()
        self._wake: asyncio.Event | None = None
        self._logged: set[str] = set()  # health log lines not yet covered by a pass
        self._reconciler: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None  # one reconciliation or reload at a time
        self._prev_table: DesiredTable | None = None  # names for removals during a reload
        self.addr_factory = addr_factory if addr_factory is not None else AddressWatcher
        self.addresses: AddressWatcher | None = None
        self._reload_tasks: set[asyncio.Task[Any]] = set()
        # Held from reading the new config to applying it: two quick SIGHUPs apply in
        # order, the last one read winning (the VRRP runner's reload_lock).
        self._reload_lock = asyncio.Lock()
        self._skipped_logged: set[str] = set()
        self.alerts = CheckerAlerts(config, self.health)
        self.started_at = time.time()
        # keepalived's notify_fifo and lvs_notify_fifo both get the checker's RS / VS
        # lines (ipwrapper.c notify_fifo_rs / notify_fifo_vs).
        gd = getattr(config, "global_defs", None)
        self.fifos = [NotifyFifo(f.name, owner=fifo_owner(f.username))
                      for f in (getattr(gd, "notify_fifo", None),
                                getattr(gd, "lvs_notify_fifo", None))
                      if f is not None]  # fmt: skip

    # ------------------------------------------------------------ actions

    def on_actions(self, actions: list[Action]) -> None:
        """The scheduler's callback (sync, on the loop): never blocks."""
        touched: set[int] = set()
        for a in actions:
            if isinstance(a, Changed):
                self._dirty.add(a.vs)
                touched.add(a.vs)
            elif isinstance(a, Log):
                self._logged.add(a.text)
            elif isinstance(a, Notify):
                self._notify(a)
                touched.add(a.vs)
        if self.alerts.enabled:
            self.alerts.observe(self.health, touched)
        if self._dirty and self._wake is not None:
            self._wake.set()

    def _resolved(self, command: str, user: str | None, group: str | None) -> Resolved | None:
        """The script as keepalived runs it (None: disabled), resolved once per config."""
        if self._notify_config is not self.config:
            self._notify_scripts.clear()
            self._notify_config = self.config
        key = (command, user, group)
        if key not in self._notify_scripts:
            gd = getattr(self.config, "global_defs", None)
            gdefs = gd if isinstance(gd, GlobalDefs) else GlobalDefs()
            self._notify_scripts[key] = enabled(command, user, group, gdefs)
        return self._notify_scripts[key]

    def _notify(self, a: Notify, table: DesiredTable | None = None) -> asyncio.Task[Any] | None:
        vs = (table or self.table).vss[a.vs]
        state = "UP" if a.up else "DOWN"
        if self.fifos:
            line = (f"RS [{a.rs.address}]:{vs.fifo_proto}:{a.rs.port} {vs.fifo_name} {state}\n"
                    if a.rs is not None else f"VS {vs.fifo_name} {state}\n")  # fmt: skip
            for fifo in self.fifos:
                fifo.write_line(line.encode())
        if a.script is None:
            return None
        r = self._resolved(a.script.command, a.script.user, a.script.group)
        if r is None:
            return None
        name = f"{a.event} {vs.name}" + (f" {a.rs}" if a.rs else "")
        self.counters.notifies += 1
        log.info("Executing [%s] for %s", a.script.command, name)
        script = Script(r.argv, uid=r.uid, gid=r.gid, name=name)
        return self.scripts.spawn(script)

    # ------------------------------------------------------------ reconciliation

    async def kernel(self, keys: set[ServiceKey] | None = None) -> list[Service]:
        """The kernel's services (all, or those in ``keys``) with their real servers."""
        assert self.ipvs is not None
        out = []
        for svc in await self.ipvs.services(dests=False):
            if keys is None or svc.key in keys:
                dests = tuple(await self.ipvs.dests(svc))
                out.append(Service(**{f: getattr(svc, f) for f in _FIELDS}, dests=dests))
        return out

    async def reconcile(self, vis: Iterable[int], *, quiet: bool = False) -> list[Op]:
        """Make the kernel hold what virtual servers ``vis`` should; return the ops run.
        ``quiet``: no line per operation (the initial table, which keepalived programs
        without one; `IPVS table initialised` sums it up)."""
        assert self.ipvs is not None
        vis = sorted(set(vis))
        logged = set(self._logged)  # what health said up to the state planned for here
        want = [s for vi in vis for s in self.table.services(vi, self.health.desired(vi))]
        kernel = await self.kernel({s.key for s in want})
        ops = plan(want, kernel, previous=self.table.owned(vis))
        await self._apply(ops, kernel, logged, quiet=quiet)
        return ops

    async def _apply(
        self,
        ops: Sequence[Op],
        kernel: Iterable[Service],
        logged: set[str] | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        """Run ``ops``, logging each in keepalived's words unless health already said it
        (``logged``: the lines seen when the desired state was read). Lines that came
        while the kernel was dumped belong to the next pass: forgetting them here would
        log that pass's operations twice."""
        assert self.ipvs is not None
        logged = set(self._logged) if logged is None else logged
        self.counters.reconciles += 1
        if not ops:
            self._logged -= logged
            return
        if not quiet and log.isEnabledFor(logging.INFO):  # 11,000 lines: ~0.2 s to format
            have = {s.key: s.dest_map() for s in kernel}
            said = set(logged)
            for op in ops:
                text = self.describe(op, have)
                if text not in said:
                    log.info("%s", text)
                said.add(text)
        self._logged -= logged
        res = await self.ipvs.apply(ops)
        self.counters.ops += res.done + len(res.already)
        self.counters.failed_ops += len(res.failed)

    def describe(self, op: Op, have: dict[ServiceKey, dict[tuple[str, int], Any]]) -> str:
        """One log line per kernel operation, in keepalived's words (ipwrapper.c)."""
        vs = self.table.vs_of(op.service.key)
        if vs is None and self._prev_table is not None:
            vs = self._prev_table.vs_of(op.service.key)
        name = vs.name if vs is not None else str(op.service)
        proto = vs.proto if vs is not None else "?"
        if vs is not None and vs.name != str(op.service) and len(vs.services) > 1:
            label = f"{name} ({op.service})"  # one service of a group
        else:
            label = name
        if op.kind is OpKind.ADD_SERVICE:
            return f"Adding VS {label}"
        if op.kind is OpKind.EDIT_SERVICE:
            return f"Updating VS {label}"
        if op.kind is OpKind.DEL_SERVICE:
            return f"Removing VS {label}"
        d = op.dest
        assert d is not None
        rs = f"[{d.addr}]:{proto}:{d.port}"
        if op.kind is OpKind.ADD_DEST:
            tail = " (inhibited, weight 0)" if d.weight == 0 else ""
            return f"Adding service {rs} to VS {name}{tail}"
        if op.kind is OpKind.DEL_DEST:
            return f"Removing service {rs} from VS {name}"
        old = have.get(op.service.key, {}).get(d.key)
        if old is not None and (old.weight == 0) != (d.weight == 0):
            if d.weight == 0:
                return f"Disabling service {rs} from VS {name}"
            return f"Enabling service {rs} to VS {name}"
        if old is not None and old.weight != d.weight:
            return (f"Changing weight from {old.weight} to {d.weight} for active service {rs} "
                    f"of VS {name}")  # fmt: skip
        return f"Updating service {rs} of VS {name}"

    async def _reconcile_loop(self) -> None:
        assert self._wake is not None and self._lock is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._lock:
                while self._dirty:
                    vis, self._dirty = self._dirty, set()
                    try:
                        await self.reconcile(vis)
                    except (OSError, ConnectionError) as exc:
                        # The next change retries these virtual servers; do not spin.
                        log.error("IPVS reconciliation failed: %s", exc)
                        self.counters.errors.append(str(exc))

    # ------------------------------------------------------------ reload

    def _on_hup(self) -> None:
        if self.options.reload_config is None:
            log.warning("Reload requested, but no configuration file to re-read; ignored")
            return
        task = asyncio.get_running_loop().create_task(self.reload_from_file(),
                                                      name="checker-reload")  # fmt: skip
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)

    async def reload_from_file(self) -> ReloadDiff | None:
        """SIGHUP: re-read the file (off the loop's thread) and apply the difference."""
        assert self.options.reload_config is not None
        async with self._reload_lock:
            log.info("Reloading")
            try:
                config = await asyncio.get_running_loop().run_in_executor(
                    None, self.options.reload_config)  # fmt: skip
            except Exception:
                log.exception("Reload failed")
                config = None
            if config is None:
                self.counters.reload_failures += 1
                log.error("Reload failed: configuration has errors; keeping the running one")
                return None
            return await self.reload(config)

    async def reload(self, config: Any) -> ReloadDiff | None:
        """Run ``config`` from now on, changing only what changed (module docstring)."""
        assert self.ipvs is not None and self.scheduler is not None and self._lock is not None
        try:
            plan_ = build_plan(config)
            table = DesiredTable(config)
        except DesiredError as exc:
            self.counters.reload_failures += 1
            log.error("Reload failed: configuration cannot be programmed into IPVS: %s; "
                      "keeping the running one", exc)  # fmt: skip
            return None
        async with self._lock:
            if self.stopping is not None and self.stopping.is_set():
                return None
            old_health, old_table, old_config = self.health, self.table, self.config
            health, actions, diff = carry(old_health, old_table, plan_, table)
            # Health changes not reconciled yet, renumbered into the new config.
            new_of = {oi: vi for vi, oi in diff.old_index.items()}
            pending = {new_of[oi] for oi in self._dirty if oi in new_of}
            self._dirty = set()
            # The down notifiers of virtual servers that go (keepalived clear_service_vs).
            omega = [a for vi in diff.removed for a in old_health.removed(vi)
                     if isinstance(a, Notify)]  # fmt: skip
            # The swap: nothing awaits between here and the scheduler's rebind, so every
            # probe result from now on lands in the new health model.
            self.config, self.plan, self.health, self.table = config, plan_, health, table
            self.scheduler.rebind(health)
            self.alerts.configure(config, health)
            for text in plan_.skipped:
                if text not in self._skipped_logged:
                    log.warning("Not checking %s", text)
            self._skipped_logged = set(plan_.skipped)
            for a in actions:
                if isinstance(a, Log):
                    log.info("%s", a.text)
            self.on_actions([a for a in actions if not isinstance(a, Changed)])
            for a in omega:
                self._notify(a, old_table)
            self._apply_suspension()
            await self._reload_globals(old_config)
            reconcile = set(diff.changed) | set(diff.added) | pending | self._dirty
            self._dirty = set()
            self._prev_table = old_table
            try:
                ops = await self._reload_table(reconcile, set(diff.unchanged), old_table)
            except (OSError, ConnectionError) as exc:
                log.error("IPVS reconciliation failed during reload: %s", exc)
                self.counters.errors.append(str(exc))
                self._dirty |= reconcile  # retried with the next change
                ops = []
            finally:
                self._prev_table = None
            self.counters.reloads += 1
            self.counters.last_reload_ops = len(ops)
            log.info("Reload finished: %s; %d IPVS operations", diff.summary(), len(ops))
            return diff

    async def _reload_globals(self, old_config: Any) -> None:
        assert self.ipvs is not None
        old = getattr(getattr(old_config, "global_defs", None), "lvs_timeouts", None)
        new = getattr(getattr(self.config, "global_defs", None), "lvs_timeouts", None)
        if new is not None and new != old:
            await self.ipvs.set_timeouts(Timeouts(tcp=new.tcp or 0, tcpfin=new.tcpfin or 0,
                                                  udp=new.udp or 0))  # fmt: skip
            log.info("Setting IPVS timeouts tcp %s tcpfin %s udp %s", new.tcp, new.tcpfin,
                     new.udp)  # fmt: skip

    async def _reload_table(
        self, vis: set[int], unchanged: set[int], old_table: DesiredTable
    ) -> list[Op]:
        """Reconcile virtual servers ``vis`` and remove what only the old config owned.
        One service-only dump; real servers are dumped only for services reconciled.
        An unchanged virtual server whose service is missing or altered in the kernel
        is reconciled too (someone ran ipvsadm)."""
        assert self.ipvs is not None
        kernel_svcs = {s.key: s for s in await self.ipvs.services(dests=False)}
        for vi in unchanged:
            for s in self.table.vss[vi].services:
                k = kernel_svcs.get(s.key)
                if k is None or k.attrs() != s.attrs():
                    vis.add(vi)
                    break
        logged = set(self._logged)
        want = [s for vi in sorted(vis) for s in self.table.services(vi, self.health.desired(vi))]
        want_keys = {s.key for s in want}
        ours_now = set(self.table.by_key)
        old_owned = old_table.owned()
        kernel: list[Service] = []
        for key, svc in kernel_svcs.items():
            if key in want_keys:
                kernel.append(Service(**{f: getattr(svc, f) for f in _FIELDS},
                                      dests=tuple(await self.ipvs.dests(svc))))  # fmt: skip
            elif key in old_table.by_key and key not in ours_now:
                kernel.append(svc)  # only the old config had it: removed whole
        ops = plan(want, kernel, previous=[*old_owned, *self.table.owned(sorted(vis))])
        await self._apply(ops, kernel, logged)
        return ops

    # ------------------------------------------------------------ ha_suspend

    def _on_address(self, addr: Address, present: bool) -> None:
        self._apply_suspension()

    def _suspended_vss(self) -> set[int]:
        w = self.addresses
        return {vi for vi, v in enumerate(self.plan.virtual_servers)
                if v.ha_suspend and v.vip is not None
                and w is not None and not w.is_local(v.vip)}  # fmt: skip

    def _apply_suspension(self) -> None:
        """Suspend the checks whose every user is a suspended virtual server; resume the
        others (keepalived: "Suspending/Activating healthchecker for service ...")."""
        sched = self.scheduler
        if sched is None:
            return
        off = self._suspended_vss()
        now = sched.suspended
        for cid, users in enumerate(self.health.users):
            want = bool(users) and all(vi in off for vi, _ in users)
            if want == (cid in now):
                continue
            (sched.suspend if want else sched.resume)(cid)
            word = "Suspending" if want else "Activating"
            for vi, ri in users:
                v = self.plan.virtual_servers[vi]
                r = v.real_servers[ri]
                log.info("%s healthchecker for service [%s]:%s:%d for VS %s", word,
                         r.key.address, v.protocol, r.key.port, v.name)  # fmt: skip

    # ------------------------------------------------------------ status

    def status_dict(self, _request: object = None) -> dict[str, Any]:
        """The checker child's `status` answer (shape: fastha.daemon.metrics): every
        virtual server with its real servers' health, weight and last check result."""
        from fastha.runtime.child_status import timer_status

        sched = self.scheduler
        suspended = sched.suspended if sched is not None else set()
        vss: list[dict[str, Any]] = []
        for vh in self.health.vss:
            p = vh.plan
            rss: list[dict[str, Any]] = []
            for r in vh.servers:
                checks = [self._check_status(cid, cid in suspended) for cid in r.plan.checks]
                rss.append({
                    "rs": f"[{r.key.address}]:{p.protocol}:{r.key.port}",
                    "address": str(r.key.address),
                    "port": r.key.port,
                    "alive": r.alive,
                    "weight": r.weight,
                    "configured_weight": r.plan.weight,
                    "inhibit_on_failure": r.plan.inhibit_on_failure,
                    "last_check": _summary(checks),
                    "checks": checks,
                })  # fmt: skip
            vss.append({
                "vs": p.name,
                "protocol": p.protocol,
                "quorum": p.quorum,
                "hysteresis": p.hysteresis,
                "quorum_up": vh.quorum_up,
                "sorry_server_active": vh.sorry_active,
                "alive_weight": vh.weight_sum(),
                "real_servers": rss,
            })  # fmt: skip
        timer = getattr(sched, "_timer", None) if sched is not None else None
        c = self.counters
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "virtual_servers": vss,
            "counters": {
                "reconciles": c.reconciles,
                "ipvs_ops": c.ops,
                "failed_ipvs_ops": c.failed_ops,
                "notifies": c.notifies,
                "reloads": c.reloads,
                "reload_failures": c.reload_failures,
                "last_reload_ops": c.last_reload_ops,
                "probes_started": sched.started if sched else 0,
                "probes_completed": sched.completed if sched else 0,
                "probes_failed": sched.failed if sched else 0,
            },
            "smtp": {"sent": self.alerts.sent, "failed": self.alerts.failed},
            "timer": timer_status(timer) if timer is not None else None,
        }

    async def metrics_dict(self, _request: object = None) -> dict[str, Any]:
        """`status` plus what only metrics use: probe durations and the kernel's IPVS
        counters per virtual and real server (one netlink dump per service)."""
        out = self.status_dict()
        sched = self.scheduler
        out["probe_durations"] = sched.durations.as_dict() if sched is not None else []
        ipvs: list[dict[str, Any]] = []
        if self.ipvs is not None:
            try:
                for svc, stats, dests in await self.ipvs.stats():
                    ipvs.append({"vs": ipvs_vs_name(svc), "stats": stats,
                                 "real_servers": [{"rs": f"[{d.addr}]:{d.port}", "stats": ds}
                                                  for d, ds in dests]})  # fmt: skip
            except (OSError, IPVSError) as exc:
                out["ipvs_error"] = str(exc)
        out["ipvs"] = ipvs
        return out

    def _check_status(self, cid: int, suspended: bool) -> dict[str, Any]:
        c = self.health.checkers[cid]
        return {
            "check": self.plan.checks[cid].describe(),
            "state": c.state.name,
            "retry": c.retry_it,
            "successes": c.successes,
            "failures": c.failures,
            "suspended": suspended,
        }

    def write_data(self) -> None:
        """keepalived's SIGUSR1 in the checker: its part of the data (virtual servers)."""
        write_text(self.options.data_file, checker_data_text(self.config, self.status_dict()))

    # ------------------------------------------------------------ lifecycle

    async def start(self, ipvs: IPVS) -> None:
        self.ipvs = ipvs
        self._lock = asyncio.Lock()
        gd = getattr(self.config, "global_defs", None)
        t = getattr(gd, "lvs_timeouts", None)
        if t is not None:
            await ipvs.set_timeouts(Timeouts(tcp=t.tcp or 0, tcpfin=t.tcpfin or 0,
                                             udp=t.udp or 0))  # fmt: skip
            log.info("Setting IPVS timeouts tcp %s tcpfin %s udp %s", t.tcp, t.tcpfin, t.udp)
        if getattr(gd, "lvs_flush", False):
            log.info("Flushing IPVS table (lvs_flush)")
            await ipvs.flush()
        sd = getattr(gd, "lvs_sync_daemon", None)
        if sd is not None:
            log.warning(
                "lvs_sync_daemon on %s follows VRRP instance %s: started by the daemon "
                "parent, not by the checker child alone", sd.interface, sd.instance)  # fmt: skip
        for text in self.plan.skipped:
            log.warning("Not checking %s", text)
        self._skipped_logged = set(self.plan.skipped)
        self._wake = asyncio.Event()
        self.scheduler = Scheduler(self.health, ProbeContext(scripts=self.scripts),
                                   on_actions=self.on_actions)  # fmt: skip
        # ha_suspend: the watcher is always on (a reload may add ha_suspend); checks of
        # a virtual server whose address is not here are suspended before the first probe.
        try:
            self.addresses = await self.addr_factory(self._on_address).open()
        except OSError as exc:
            log.error("Cannot watch local addresses (%s): ha_suspend not applied", exc)
            self.addresses = None
        self._apply_suspension()
        # Health.start(): Changed for every virtual server. No probe yet: the initial
        # table first, before any probe result can change it and without probes in
        # flight while it is written (a busy loop would time them out).
        self.scheduler.start(probe=False)
        vis, self._dirty = self._dirty | set(range(len(self.table))), set()
        await self.reconcile(vis, quiet=True)
        log.info("IPVS table initialised: %d virtual services", sum(
            len(v.services) for v in self.table.vss))  # fmt: skip
        for text in self.health.activation_lines(self.scheduler.suspended):
            log.info("%s", text)
        self.scheduler.probe_all()
        self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_loop())
        if self._dirty:
            self._wake.set()

    async def stop(self) -> None:
        for task in list(self._reload_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.addresses is not None:
            self.addresses.close()
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        if self.scheduler is not None:
            # Probes stop; the runner stays open for omega's notifiers (keepalived runs
            # them at shutdown), then self.scripts.close() below ends what is left.
            await self.scheduler.close(keep_scripts=True)
            tasks = [t for a in self.scheduler.stop_actions() if isinstance(a, Notify)
                     and (t := self._notify(a)) is not None]  # fmt: skip
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_SCRIPTS_WAIT)
        await self.scripts.close()
        if self.ipvs is None:
            return
        if not self.options.release_on_stop:
            log.info("Leaving IPVS table in place (dont_release_ipvs)")
            return
        for text in self.health.shutdown_lines():
            log.info("%s", text)
        gd = getattr(self.config, "global_defs", None)
        if getattr(gd, "lvs_flush_on_stop", None) is FlushOnStop.ALL:
            log.info("Flushing IPVS table (lvs_flush_on_stop)")
            await self.ipvs.flush()
            return
        owned = self.table.owned()
        keys = {s.key for s in owned}
        # Nothing is desired: only whole services go (the kernel drops their real
        # servers), so their real servers need not be dumped.
        kernel = [s for s in await self.ipvs.services(dests=False) if s.key in keys]
        await self._apply(plan([], kernel, previous=owned), kernel)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.stopping = stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        loop.add_signal_handler(signal.SIGUSR1, self.write_data)
        # keepalived's stats and JSON signals are the VRRP child's; here they must not
        # terminate the process (a real-time signal's default action).
        for sig in _IGNORED:
            loop.add_signal_handler(sig, log.debug, "Signal %s ignored by the checker", sig)
        status_server = await child_status.serve_from_env(
            {"status": self.status_dict, "dump": self.status_dict,
             "metrics": self.metrics_dict})  # fmt: skip
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
            log.info("Checker started: %d checks, %d virtual servers", len(self.plan.checks),
                     len(self.table))  # fmt: skip
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
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                            *_IGNORED):  # fmt: skip
                    loop.remove_signal_handler(sig)
        log.info("Stopped")
        return code


_FIELDS = tuple(f for f in Service.__slots__ if f != "dests")


def _summary(checks: list[dict[str, Any]]) -> str:
    """One word for a real server's checks: the worst of them."""
    if not checks:
        return "no checker"
    states = {c["state"] for c in checks}
    if "DOWN" in states:
        return "failed"
    if any(c["retry"] for c in checks):
        return "failing (retrying)"
    if states <= {"UP"}:
        return "ok"
    return "pending"


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastha.check.runner``: the checker child alone (keepalived -C flags)."""
    import argparse

    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id
    from fastha.runtime import logs

    ap = argparse.ArgumentParser(prog="python -m fastha.check.runner")
    ap.add_argument("-f", "--use-file", default="/etc/keepalived/keepalived.conf")
    ap.add_argument("-n", "--dont-fork", action="store_true",
                    help="accepted: this entry point always stays in the foreground")  # fmt: skip
    ap.add_argument("-l", "--log-console", action="store_true")
    ap.add_argument("-D", "--log-detail", action="store_true")
    ap.add_argument("-I", "--dont-release-ipvs", action="store_true")
    ap.add_argument("-i", "--config-id", default=None)
    args = ap.parse_args(argv)
    result = load(args.use_file,
                  args.config_id if args.config_id is not None else default_config_id())  # fmt: skip
    for diag in result.diagnostics:
        print(diag, file=sys.stderr)
    if not result.ok:
        print(f"{args.use_file}: configuration has errors; not starting", file=sys.stderr)
        return 1
    logs.configure("fastha_checker", console=args.log_console, detail=args.log_detail)

    def reload_config() -> Any:
        again = load(args.use_file, args.config_id if args.config_id is not None
                     else default_config_id())  # fmt: skip
        for diag in again.diagnostics:
            log.log(logging.ERROR if diag in again.errors else logging.WARNING, "%s", diag)
        return again.config if again.ok else None

    return run_checker(result.config, CheckOptions(release_on_stop=not args.dont_release_ipvs,
                                                   reload_config=reload_config))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())


def ipvs_vs_name(svc: Any) -> str:
    """A kernel service as keepalived's exporters label it: `[ADDR]:PROTO:PORT`, or
    `FWM N` for a firewall-mark service."""
    if svc.fwmark:
        return f"FWM {svc.fwmark}"
    proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(svc.protocol, str(svc.protocol))
    return f"[{svc.addr}]:{proto}:{svc.port}"
