"""A master's addresses in the kernel: VIPs, excluded VIPs, virtual routes and rules,
added and removed as a whole, or swapped address by address on reload."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastha.runtime.vrrp.context import Context
    from fastha.runtime.vrrp.from_config import InstanceSpec

log = logging.getLogger("fastha.vrrp")


class Vips:
    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.installed = False

    async def add(self, spec: InstanceSpec) -> None:
        nl = self.ctx.netlink
        for vip in (*spec.vips, *spec.excluded):
            await nl.add_address(vip)
        for route in spec.routes:
            await nl.add_route(route)
        for rule in spec.rules:
            await nl.add_rule(rule)
        self.installed = True
        log.info("(%s) setting VIPs.", self.name)
        self.ctx.update_arp_watches()  # after the VIPs: nothing delays them

    async def remove(self, spec: InstanceSpec) -> None:
        nl = self.ctx.netlink
        for rule in spec.rules:
            await nl.delete_rule(rule)
        for route in spec.routes:
            await nl.delete_route(route)
        for vip in (*spec.vips, *spec.excluded):
            await nl.delete_address(vip)
        self.installed = False
        log.info("(%s) removing VIPs.", self.name)
        self.ctx.update_arp_watches()

    async def swap(self, old: InstanceSpec, new: InstanceSpec) -> list[Any]:
        """Reload while master: remove what left the config, add what joined it.
        Returns the addresses added (they want a gratuitous ARP burst)."""
        nl = self.ctx.netlink
        # Our own delete-then-add is no VIP deleted by hand (the runner's address watch).
        installed, self.installed = self.installed, False

        def missing(items: tuple[Any, ...], other: tuple[Any, ...]) -> list[Any]:
            return [x for x in items if x not in other]

        for rule in missing(old.rules, new.rules):
            await nl.delete_rule(rule)
        for route in missing(old.routes, new.routes):
            await nl.delete_route(route)
        old_addrs, new_addrs = (*old.vips, *old.excluded), (*new.vips, *new.excluded)
        for verb, change, vips in (
            ("removing", nl.delete_address, missing(old_addrs, new_addrs)),
            ("adding", nl.add_address, missing(new_addrs, old_addrs)),
        ):
            for vip in vips:
                await change(vip)
                log.info(
                    "(%s) %s VIP %s/%d dev %s (reload)",
                    self.name,
                    verb,
                    vip.address,
                    vip.prefixlen,
                    vip.dev,
                )
        for route in missing(new.routes, old.routes):
            await nl.add_route(route)
        for rule in missing(new.rules, old.rules):
            await nl.add_rule(rule)
        self.installed = installed
        return missing(new_addrs, old_addrs)
