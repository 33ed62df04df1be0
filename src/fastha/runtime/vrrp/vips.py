"""A master's addresses in the kernel: VIPs, excluded VIPs, virtual routes and rules,
added and removed as a whole, or swapped address by address on reload.

A new master's addresses take the fast path when they can: the instance's RTM_NEWADDR
requests, prebuilt at config load and reload (drivers/rtnl_raw), leave in one send
right behind its first advert (``add_now``), and the kernel's acks are read and logged
afterwards (``added``), as the slow path logs them. The slow path (``add``: pyroute2,
a request awaited at a time) remains for an interface whose index is not known yet and
for a send that failed."""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING, Any

from fastha.drivers.netlink import log_change
from fastha.drivers.rtnl_raw import Acks, AddressRequests, describe_error

if TYPE_CHECKING:
    from fastha.runtime.vrrp.context import Context
    from fastha.runtime.vrrp.from_config import InstanceSpec

log = logging.getLogger("fastha.vrrp")


def _listed(spec: InstanceSpec, setting: bool) -> list[str]:
    """What keepalived names in its lines for adding (`setting`) or removing `spec`'s
    addresses, routes and rules (vrrp.c vrrp_handle_ipaddress / _iproutes / _iprules),
    in its order, each list only when it is not empty."""
    lists = [
        ("VIPs.", spec.vips),
        ("E-VIPs.", spec.excluded),
        ("Virtual Routes", spec.routes),
        ("Virtual Rules", spec.rules),
    ]
    if not setting:  # rules first, then routes, then the addresses
        lists = [lists[3], lists[2], lists[0], lists[1]]
    return [what for what, items in lists if items]


class Vips:
    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.installed = False
        self.requests = AddressRequests(())

    def prepare(self, spec: InstanceSpec) -> None:
        """Build the fast path's requests for `spec` (at config load and on reload)."""
        addrs = (*spec.vips, *spec.excluded)
        if addrs != self.requests.vips:
            self.requests = AddressRequests(addrs)
        if self.ctx.rtnl is not None:  # encoded now if every interface's index is known
            self.requests.ready(self.ctx.netlink.cached_ifindex)

    def add_now(self, spec: InstanceSpec) -> Acks | None:
        """The fast path: send the prebuilt adds of `spec`'s addresses now; when this
        returns they are in the kernel (or refused: ``added`` logs it). None when the
        fast path cannot be taken (the caller queues ``add``)."""
        rtnl = self.ctx.rtnl
        if rtnl is None or not (spec.vips or spec.excluded):
            return None
        reqs = self.requests
        if reqs.vips != (*spec.vips, *spec.excluded):  # not prepared for this spec
            return None
        if not reqs.ready(self.ctx.netlink.cached_ifindex):
            return None
        return rtnl.send(reqs)

    async def added(self, spec: InstanceSpec, acks: Acks) -> None:
        """After ``add_now``: each address's answer logged, then the routes and rules
        (slow path), as ``add`` ends."""
        errors = await acks.wait()
        for i, (vip, code) in enumerate(zip(acks.vips, errors, strict=True)):
            if code is None:
                log.error("netlink address %s: no answer from the kernel", vip)
            elif code in (0, errno.EEXIST):
                log_change("address", vip, True, code == 0)
            else:
                log.error("%s", describe_error(code, acks.first_seq + i))
                log.error("netlink address %s not added: %s", vip, os.strerror(code))
        await self._routes_rules(spec)

    async def add(self, spec: InstanceSpec) -> None:
        nl = self.ctx.netlink
        for vip in (*spec.vips, *spec.excluded):
            await nl.add_address(vip)
        await self._routes_rules(spec)

    async def _routes_rules(self, spec: InstanceSpec) -> None:
        nl = self.ctx.netlink
        for route in spec.routes:
            await nl.add_route(route)
        for rule in spec.rules:
            await nl.add_rule(rule)
        self.installed = True
        for what in _listed(spec, setting=True):
            log.info("(%s) setting %s", self.name, what)
        self.ctx.update_arp_watches()  # after the VIPs: nothing delays them

    def log_removal(self, spec: InstanceSpec) -> None:
        """keepalived's lines for a removal (vrrp.c vrrp_restore_interface). A removal
        leaving MASTER writes them when it runs, after the state's line, as keepalived;
        the one at startup when it is queued, before the init state's line: keepalived
        removes the VIPs then (vrrp_scheduler.c vrrp_init_state), as a crashed run
        (kill -9) left them configured and a backup holding them would answer ARP."""
        for what in _listed(spec, setting=False):
            log.info("(%s) removing %s", self.name, what)

    async def remove(self, spec: InstanceSpec, logged: bool = False) -> None:
        """``logged``: its line was written when it was queued (``log_removal``)."""
        nl = self.ctx.netlink
        # Our own deletions are no VIP deleted by hand (runtime/vrrp/vip_watch), also
        # when the instance is master again before the last ack is in.
        self.installed = False
        # Before the deletions, as keepalived's vrrp_handle_ipaddress logs it: a line
        # written after them could follow the next advert's (a slow rtnl lock).
        if not logged:
            self.log_removal(spec)
        for rule in spec.rules:
            await nl.delete_rule(rule)
        for route in spec.routes:
            await nl.delete_route(route)
        for vip in (*spec.vips, *spec.excluded):
            await nl.delete_address(vip)
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
