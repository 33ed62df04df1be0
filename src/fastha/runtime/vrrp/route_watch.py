"""Routes and rules deleted by hand (keepalived_netlink.c netlink_route_filter /
netlink_rule_filter): a MASTER's virtual route or rule -> the instance leaves MASTER as
for a deleted VIP; a static route or rule -> put back."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastha.drivers.routewatch import Gone, RouteWatch, link_usable, route_matches, rule_matches
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.current import Current
from fastha.vrrp.events import VipDeleted
from fastha.vrrp.states import State

log = logging.getLogger("fastha.vrrp")


class RouteReaction:
    def __init__(self, ctx: Context, current: Current, reload_lock: asyncio.Lock) -> None:
        self.ctx, self.current, self.reload_lock = ctx, current, reload_lock
        self.watch = RouteWatch(self._gone)
        self._tasks: set[asyncio.Task[Any]] = set()

    def open(self) -> None:
        self.watch.open()

    def close(self) -> None:
        """Before the stop: what the stop deletes is no deletion by hand."""
        self.watch.close()

    def _gone(self, gone: Gone) -> None:
        # A reload's own deletions happen under its lock, the spec being swapped.
        if not self.watch.watching or self.reload_lock.locked():
            return
        if not link_usable(gone.oif):
            return  # lost with its link: the link event's job
        for inst in list(self.ctx.instances.values()):
            spec = inst.spec
            if gone.rule:
                hit: object = next((r for r in spec.rules if rule_matches(gone, r)), None)
            else:
                hit = next((r for r in spec.routes if route_matches(gone, r, virtual=True)), None)
            if hit is None:
                continue
            if inst.machine.state == State.MASTER and inst.vips.installed:
                inst.feed(VipDeleted(str(hit)))
            return
        self._restore_static(gone)

    def _restore_static(self, gone: Gone) -> None:
        spec = self.current.spec
        netlink = self.ctx.netlink
        if gone.rule:
            rule = next((r for r in spec.static_rules if rule_matches(gone, r)), None)
            if rule is not None:
                log.info("Restoring deleted static rule %s", rule)
                self._spawn(netlink.add_rule(rule))
            return
        route = next((r for r in spec.static_routes if route_matches(gone, r, virtual=False)), None)
        if route is not None:
            log.info("Restoring deleted static route %s", route)
            self._spawn(netlink.add_route(route))

    def _spawn(self, coro: Any) -> None:
        task = self.ctx.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
