"""VIPs deleted by hand: keepalived (keepalived_netlink.c) sends a master whose tracked
VIP was removed from the interface back to BACKUP."""

from __future__ import annotations

import logging

from fastha.drivers.addrwatch import Address, AddressWatcher
from fastha.runtime.vrrp.context import Context
from fastha.vrrp.events import VipDeleted
from fastha.vrrp.states import State

log = logging.getLogger("fastha.vrrp")


class VipWatch:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.watcher: AddressWatcher | None = None

    async def open(self) -> None:
        watcher = AddressWatcher(self._on_address)
        try:
            await watcher.open()
        except OSError as exc:
            log.warning("cannot watch addresses: %s", exc.strerror or exc)
            return
        self.watcher = watcher

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()

    def _on_address(self, address: Address, present: bool) -> None:
        if not present:
            # Checked on the next loop pass: our own re-add of the same address (a
            # reload) may be right behind the deletion on the netlink socket.
            self.ctx.loop.call_soon(self._address_gone, address)

    def _address_gone(self, address: Address) -> None:
        """keepalived_netlink.c: one of our VIPs deleted while MASTER -> BACKUP."""
        if self.watcher is None or self.watcher.is_local(address):
            return
        text = str(address)
        for inst in list(self.ctx.instances.values()):
            if inst.machine.state != State.MASTER or not inst.vips.installed:
                continue
            dev = inst.spec.tracked_vip(text)
            # An interface taken down drops its IPv6 addresses: that is a link event
            # (FAULT), which may reach us after the deletions on another socket.
            if dev is not None and _admin_up(dev):
                log.info("Netlink reflector reports IP %s removed from %s", text, dev)
                inst.feed(VipDeleted(text))


def _admin_up(ifname: str) -> bool:
    """IFF_UP of an interface, read now (False when it is gone)."""
    try:
        with open(f"/sys/class/net/{ifname}/flags") as fh:
            return bool(int(fh.read(), 16) & 1)
    except (OSError, ValueError):
        return False
