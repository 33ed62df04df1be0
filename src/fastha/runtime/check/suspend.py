"""ha_suspend: the checkers of a virtual server run only while its address is local
(drivers/addrwatch.py); a check shared with a virtual server that is not suspended
keeps running."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastha.drivers.addrwatch import Address, AddressWatcher
from fastha.runtime.check.scheduler import Scheduler
from fastha.runtime.check.state import Running

log = logging.getLogger("fastha.check")

AddressFactory = Callable[[Callable[[Address, bool], None]], AddressWatcher]


class HaSuspend:
    def __init__(self, running: Running, addr_factory: AddressFactory | None = None) -> None:
        self.running = running
        self.addr_factory = addr_factory if addr_factory is not None else AddressWatcher
        self.addresses: AddressWatcher | None = None
        self.scheduler: Scheduler | None = None

    async def open(self, scheduler: Scheduler) -> None:
        """Watch local addresses (always: a reload may add ha_suspend), then suspend the
        checks of virtual servers whose address is not here, before the first probe."""
        self.scheduler = scheduler
        try:
            self.addresses = await self.addr_factory(self._on_address).open()
        except OSError as exc:
            log.error("Cannot watch local addresses (%s): ha_suspend not applied", exc)
            self.addresses = None
        self.apply()

    def close(self) -> None:
        if self.addresses is not None:
            self.addresses.close()

    def _on_address(self, addr: Address, present: bool) -> None:
        self.apply()

    def suspended_vss(self) -> set[int]:
        w = self.addresses
        return {
            vi
            for vi, v in enumerate(self.running.plan.virtual_servers)
            if v.ha_suspend and v.vip is not None and w is not None and not w.is_local(v.vip)
        }

    def apply(self) -> None:
        """Suspend the checks whose every user is a suspended virtual server; resume the
        others (keepalived: "Suspending/Activating healthchecker for service ...")."""
        sched = self.scheduler
        if sched is None:
            return
        off = self.suspended_vss()
        now = sched.suspended
        plan = self.running.plan
        for cid, users in enumerate(self.running.health.users):
            want = bool(users) and all(vi in off for vi, _ in users)
            if want == (cid in now):
                continue
            (sched.suspend if want else sched.resume)(cid)
            word = "Suspending" if want else "Activating"
            for vi, ri in users:
                v = plan.virtual_servers[vi]
                r = v.real_servers[ri]
                log.info(
                    "%s healthchecker for service [%s]:%s:%d for VS %s",
                    word,
                    r.key.address,
                    v.protocol,
                    r.key.port,
                    v.name,
                )
