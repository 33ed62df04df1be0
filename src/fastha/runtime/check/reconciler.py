"""IPVS reconciliation: make the kernel hold what the health model wants, for the virtual
servers that changed, each operation logged once in keepalived's words.

Health changes mark virtual servers dirty (``mark``); one task (``loop``) reconciles
them in passes, so a burst of probe results costs one kernel dump and one batch. One
lock serialises those passes with a reload's (``reload_table``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from fastha.check.desired import DesiredTable
from fastha.config.model import LvsTimeouts
from fastha.drivers.ipvs import IPVS
from fastha.ipvs.model import Service, ServiceKey, Timeouts
from fastha.ipvs.planner import Op, plan
from fastha.runtime.check.oplog import describe
from fastha.runtime.check.state import Counters, Running

log = logging.getLogger("fastha.check")

_FIELDS = tuple(f for f in Service.__slots__ if f != "dests")


class Reconciler:
    def __init__(self, running: Running, counters: Counters) -> None:
        self.running = running
        self.counters = counters
        self.ipvs: IPVS | None = None
        self.dirty: set[int] = set()  # virtual servers to reconcile
        self.wake: asyncio.Event | None = None
        self.logged: set[str] = set()  # health log lines not yet covered by a pass
        self.lock: asyncio.Lock | None = None  # one reconciliation or reload at a time
        self.prev_table: DesiredTable | None = None  # names for removals during a reload
        self._task: asyncio.Task[None] | None = None

    def open(self, ipvs: IPVS) -> None:
        self.ipvs = ipvs
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()

    def mark(self, vis: Iterable[int]) -> None:
        """Virtual servers whose desired state changed: the next pass reconciles them."""
        self.dirty.update(vis)
        if self.dirty and self.wake is not None:
            self.wake.set()

    def take_dirty(self) -> set[int]:
        """The virtual servers marked so far, forgotten here (the caller reconciles them)."""
        vis, self.dirty = self.dirty, set()
        return vis

    def heard(self, text: str) -> None:
        """A line the health model logged: the operation it announces is not logged again."""
        self.logged.add(text)

    def start_loop(self) -> None:
        assert self.wake is not None
        self._task = asyncio.get_running_loop().create_task(self.loop())
        if self.dirty:
            self.wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def set_timeouts(self, t: LvsTimeouts) -> None:
        """``lvs_timeouts`` into the kernel (0: unset), and its log line."""
        assert self.ipvs is not None
        await self.ipvs.set_timeouts(Timeouts(tcp=t.tcp or 0, tcpfin=t.tcpfin or 0, udp=t.udp or 0))
        log.info("Setting IPVS timeouts tcp %s tcpfin %s udp %s", t.tcp, t.tcpfin, t.udp)

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
        run = self.running
        logged = set(self.logged)  # what health said up to the state planned for here
        want = [s for vi in vis for s in run.table.services(vi, run.health.desired(vi))]
        kernel = await self.kernel({s.key for s in want})
        ops = plan(want, kernel, previous=run.table.owned(vis))
        await self.apply(ops, kernel, logged, quiet=quiet)
        return ops

    async def apply(
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
        logged = set(self.logged) if logged is None else logged
        self.counters.reconciles += 1
        if not ops:
            self.logged -= logged
            return
        if not quiet and log.isEnabledFor(logging.INFO):  # 11,000 lines: ~0.2 s to format
            have = {s.key: s.dest_map() for s in kernel}
            said = set(logged)
            for op in ops:
                text = describe(op, have, self.running.table, self.prev_table)
                if text not in said:
                    log.info("%s", text)
                said.add(text)
        self.logged -= logged
        res = await self.ipvs.apply(ops)
        self.counters.ops += res.done + len(res.already)
        self.counters.failed_ops += len(res.failed)

    async def loop(self) -> None:
        assert self.wake is not None and self.lock is not None
        while True:
            await self.wake.wait()
            self.wake.clear()
            async with self.lock:
                while self.dirty:
                    vis, self.dirty = self.dirty, set()
                    try:
                        await self.reconcile(vis)
                    except (OSError, ConnectionError) as exc:
                        # The next change retries these virtual servers; do not spin.
                        log.error("IPVS reconciliation failed: %s", exc)
                        self.counters.errors.append(str(exc))

    async def reload_table(
        self, vis: set[int], unchanged: set[int], old_table: DesiredTable
    ) -> list[Op]:
        """Reconcile virtual servers ``vis`` and remove what only the old config owned.
        One service-only dump; real servers are dumped only for services reconciled.
        An unchanged virtual server whose service is missing or altered in the kernel
        is reconciled too (someone ran ipvsadm). The caller holds ``lock``. When the
        kernel fails, ``vis`` is left dirty for the next change to retry: no ops."""
        self.prev_table = old_table
        try:
            return await self._reload_table(vis, unchanged, old_table)
        except (OSError, ConnectionError) as exc:
            log.error("IPVS reconciliation failed during reload: %s", exc)
            self.counters.errors.append(str(exc))
            self.dirty |= vis  # retried with the next change
            return []
        finally:
            self.prev_table = None

    async def _reload_table(
        self, vis: set[int], unchanged: set[int], old_table: DesiredTable
    ) -> list[Op]:
        assert self.ipvs is not None
        table, health = self.running.table, self.running.health
        kernel_svcs = {s.key: s for s in await self.ipvs.services(dests=False)}
        for vi in unchanged:
            for s in table.vss[vi].services:
                k = kernel_svcs.get(s.key)
                if k is None or k.attrs() != s.attrs():
                    vis.add(vi)
                    break
        logged = set(self.logged)
        want = [s for vi in sorted(vis) for s in table.services(vi, health.desired(vi))]
        want_keys = {s.key for s in want}
        ours_now = set(table.by_key)
        old_owned = old_table.owned()
        kernel: list[Service] = []
        for key, svc in kernel_svcs.items():
            if key in want_keys:
                dests = tuple(await self.ipvs.dests(svc))
                kernel.append(Service(**{f: getattr(svc, f) for f in _FIELDS}, dests=dests))
            elif key in old_table.by_key and key not in ours_now:
                kernel.append(svc)  # only the old config had it: removed whole
        ops = plan(want, kernel, previous=[*old_owned, *table.owned(sorted(vis))])
        await self.apply(ops, kernel, logged)
        return ops

    async def release(self) -> None:
        """Stop: remove the services this config owns (the kernel drops their real
        servers). Nothing is desired, so their real servers need not be dumped."""
        assert self.ipvs is not None
        owned = self.running.table.owned()
        keys = {s.key for s in owned}
        kernel = [s for s in await self.ipvs.services(dests=False) if s.key in keys]
        await self.apply(plan([], kernel, previous=owned), kernel)
