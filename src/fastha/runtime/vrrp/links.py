"""Link events from netlink: an instance's own interface going down or up (FAULT),
track_interface, and dynamic_interfaces' instances adopting an interface that appears."""

from __future__ import annotations

import logging

from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.sockets import SocketPool
from fastha.runtime.vrrp.tracking import Trackers
from fastha.vrrp.events import LinkChanged

log = logging.getLogger("fastha.vrrp")


class LinkEvents:
    def __init__(self, ctx: Context, pool: SocketPool, trackers: Trackers) -> None:
        self.ctx = ctx
        self.pool = pool
        self.trackers = trackers

    def on_link(self, ifname: str, ifindex: int, up: bool) -> None:
        log.info("Netlink reports %s %s", ifname, "up" if up else "down")
        waiting = self.pool.waiting.get(ifname, ())
        if up and waiting:
            self._adopt_interface(ifname)
        for inst in self.ctx.instances.values():
            if inst in waiting:
                continue  # stays in FAULT until it has a socket
            if inst.spec.ifname == ifname and not inst.spec.params.dont_track_primary:
                inst.feed(LinkChanged(up))
        iface = self.trackers.now.interfaces.get(ifname)
        if iface is not None and iface.set(up):
            self.trackers.changed(f"if:{ifname}")

    def _adopt_interface(self, ifname: str) -> None:
        """An interface instances were waiting for exists now: give them their socket and
        let them leave FAULT (keepalived's dynamic_interfaces)."""
        for inst in self.pool.waiting.pop(ifname, []):
            if self.ctx.instances.get(inst.name) is not inst:
                continue  # removed by a reload meanwhile
            self.pool.attach(inst)
            if inst.sock is None:
                continue  # gone again (put back on the list)
            log.info("(%s) interface %s now exists - using it", inst.name, ifname)
            inst.feed(LinkChanged(True))
