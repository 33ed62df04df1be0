"""Instances come and go: created with their source address, VMAC and socket, booted
(tracking first, as keepalived), removed for good on reload, and stopped at exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import replace

from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.from_config import InstanceSpec
from fastha.runtime.vrrp.instance import Instance
from fastha.runtime.vrrp.sockets import SocketPool
from fastha.runtime.vrrp.vmac import Vmacs
from fastha.vrrp.events import LeaveSyncGroup, LinkChanged, Shutdown, Startup
from fastha.vrrp.states import State
from fastha.vrrp.trackers import TrackerSet

log = logging.getLogger("fastha.vrrp")

# Scope values of rtnetlink addresses.
_SCOPE_LINK = 253
STOP_GRACE_S = 5.0
NOTIFY_STOP_GRACE_S = 1.0  # keepalived: system_call_script(..., TIMER_HZ, notify_stop)


class Lifecycle:
    def __init__(self, ctx: Context, current: Current, pool: SocketPool, vmacs: Vmacs) -> None:
        self.ctx = ctx
        self.current = current
        self.pool = pool
        self.vmacs = vmacs

    async def create(self, spec: InstanceSpec) -> Instance:
        """An instance with its socket (and VMAC), not started yet."""
        ctx = self.ctx
        primary = await self._primary_address(spec)
        if spec.params.primary_address is None:
            spec = replace(spec, params=replace(spec.params, primary_address=spec.src or primary))
        inst = Instance(spec, ctx, primary)
        ctx.instances[inst.name] = inst
        if spec.vmac:
            try:
                socket.if_nametoindex(spec.ifname)
            except OSError:
                # dynamic_interfaces with a VMAC whose base interface is missing: not
                # waited for (check-config says so); the instance stays in FAULT rather
                # than the VRRP child failing.
                log.error("(%s) interface %s for the VMAC doesn't exist", spec.name, spec.ifname)
            else:
                await self.vmacs.create(ctx.netlink, inst)
        self.pool.attach(inst)
        return inst

    async def _primary_address(self, spec: InstanceSpec) -> str:
        # keepalived takes the first address it learns of the interface that is none of
        # its instances' VIPs or excluded VIPs, and learns them before it adds the
        # static_ipaddress ones: those are never the source either (a link-scope static
        # address sorts first in the kernel's list).
        vip_addrs = {v.address for v in (*spec.vips, *spec.excluded)}
        vip_addrs |= {a.address for a in self.current.spec.static_addresses}
        try:
            present = await self.ctx.netlink.list_addresses(spec.ifname, spec.family)
        except Exception as exc:
            log.error("(%s) cannot read addresses of %s: %s", spec.name, spec.ifname, exc)
            present = []
        for a in present:
            if a.address in vip_addrs:
                continue
            if spec.family == socket.AF_INET6 and a.scope != _SCOPE_LINK:
                continue  # RFC 5798 5.1.2.1: IPv6 adverts come from the link-local address
            return a.address
        log.warning("(%s) no usable source address on %s", spec.name, spec.ifname)
        return "::" if spec.family == socket.AF_INET6 else "0.0.0.0"

    def boot(self, inst: Instance, tracking: TrackerSet) -> None:
        if self.pool.is_waiting(inst):
            inst.feed(LinkChanged(False))  # keepalived: FAULT (interface ... down)
        # Tracking first, as keepalived: an instance whose track script has not run yet
        # starts in FAULT (silently) and leaves it with the script's first success,
        # instead of BACKUP -> FAULT -> BACKUP.
        for event in tracking.events():
            inst.feed(event)
        inst.feed(Startup())  # not MASTER: the VIPs are removed (Instance.execute)

    async def remove(self, inst: Instance) -> None:
        """Stop one instance for good (reload): priority 0 if master, VIPs removed."""
        inst.group = None
        inst.machine.handle(LeaveSyncGroup())
        inst.feed(Shutdown())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inst.drain(), STOP_GRACE_S)
        inst.timers.cancel_all()
        self.pool.detach(inst)
        if inst.vmac is not None:
            await self.vmacs.delete(self.ctx.netlink, inst.vmac)
        del self.ctx.instances[inst.name]
        log.info("(%s) stats: %s", inst.name, inst.status()["stats"])

    async def stop_all(self, release_on_stop: bool) -> None:
        """Exit: every instance's STOP (priority 0 if master, VIPs removed unless -V),
        then every sync group's, and the STOP notifies given time to run."""
        ctx = self.ctx
        for inst in ctx.instances.values():
            if not release_on_stop:
                inst.spec = _no_release(inst.spec)
            inst.feed(Shutdown())
        # keepalived's notify_shutdown: after every instance's STOP, every sync group's
        # (its notify_stop, its generic notify "GROUP name STOP 0", the FIFO line).
        for name, group in ctx.groups.items():
            member = next((ctx.instances[m] for m in group.members if m in ctx.instances), None)
            if member is None:
                continue
            group.state = State.STOP
            member.notify_group_stop(name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.drain() for i in ctx.instances.values())), STOP_GRACE_S
            )
        # The STOP notifies (notify_stop, the generic notify's STOP) have just started:
        # keepalived waits for notify_stop (system_call_script, 1 s) rather than killing
        # it with the process.
        await ctx.scripts.drain(NOTIFY_STOP_GRACE_S)
        for inst in ctx.instances.values():
            log.info("(%s) stats: %s", inst.name, inst.status()["stats"])


def _no_release(spec: InstanceSpec) -> InstanceSpec:
    """-V: leave VIPs, routes and rules in place on stop."""
    return replace(spec, vips=(), excluded=(), routes=(), rules=())
