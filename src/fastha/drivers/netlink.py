"""rtnetlink through pyroute2's async API: VIPs, virtual routes and rules, link events,
and VMAC macvlan interfaces. The one module that imports pyroute2's iproute.

Requests are idempotent the way keepalived treats them: adding what is already there
(EEXIST) or deleting what is gone (EADDRNOTAVAIL / ESRCH / ENOENT) is logged and
reported as ``False``, never raised — after a crash or a reload the kernel may already
hold the state we are about to ask for.

Build ``Netlink`` inside the running loop (pyroute2 binds its transport to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.core import CoreDatagramProtocol
from pyroute2.netlink.exceptions import NetlinkError

from fastha.drivers import vmac
from fastha.drivers.pyroute2_lean import deferred
from fastha.drivers.rtnl_raw import INFINITY_LIFE_TIME, ifa_flags
from fastha.drivers.vmac import vmac_address as vmac_address  # re-exported
from fastha.vrrp.addresses import VirtualAddress, VirtualRoute, VirtualRule, scope_number

with deferred():  # its ssl and unittest.mock, never used here: see pyroute2_lean
    from pyroute2.iproute.linux import AsyncIPRoute as _PyrouteAsyncIPRoute

log = logging.getLogger(__name__)

# <linux/if.h>
IFF_UP = 0x1
IFF_RUNNING = 0x40
RTMGRP_LINK = 0x1

_GONE = (errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENOENT, errno.ENODEV)


class _ReaderTransport:
    """Feeds pyroute2's datagram protocol from ``loop.add_reader``.

    uvloop cannot wrap an AF_NETLINK socket in a datagram endpoint ("cannot open a UDP
    handle, invalid family 16": uvloop#676, pyroute2#1335), and fastha runs one uvloop
    loop per process. pyroute2 sends on the socket itself; only receiving goes through
    the transport, so a reader that drains with MSG_DONTWAIT is all it needs.
    """

    _BUFSIZE = 1 << 16  # one netlink datagram; dumps come a page or two at a time

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: Any, protocol: Any) -> None:
        self._loop, self._sock, self._protocol = loop, sock, protocol
        self._fd: int | None = sock.fileno()
        loop.add_reader(self._fd, self._read)

    def _read(self) -> None:
        for _ in range(64):  # bounded: a netlink storm must not starve the advert timer
            try:
                data = self._sock.recv(self._BUFSIZE, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENOBUFS: the kernel dropped events for us
                self._protocol.error_received(exc)
                return
            if not data:
                return
            self._protocol.datagram_received(data, None)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)

    abort = close


class AsyncIPRoute(_PyrouteAsyncIPRoute):  # type: ignore[misc]  # pyroute2 has no annotations: its classes are Any to mypy
    """pyroute2's AsyncIPRoute with a reader-based receive path that works on uvloop."""

    async def setup_endpoint(self) -> None:
        if getattr(self.local, "transport", None) is not None:
            return
        protocol = CoreDatagramProtocol(
            self.connection_lost, self.enqueue, self._error_event, self.status
        )
        transport = _ReaderTransport(self.event_loop, self.socket, protocol)
        protocol.connection_made(transport)
        self.local.transport, self.local.protocol = transport, protocol


@dataclass(frozen=True, slots=True)
class PresentAddress:
    """An address as the kernel lists it."""

    address: str
    prefixlen: int
    ifindex: int
    label: str | None
    scope: int
    flags: int
    peer: str | None = None


@dataclass(slots=True)
class LinkState:
    ifindex: int
    ifname: str
    up: bool


LinkCallback = Callable[[str, int, bool], None]


def log_change(what: str, item: object, add: bool, changed: bool) -> None:
    """The line for one request the kernel took (``changed``) or found already done."""
    if changed:
        log.info("netlink %s %s %s", what, "added" if add else "deleted", item)
    else:
        log.info("netlink %s already %s %s", what, "present" if add else "absent", item)


def _nla(msg: Any, name: str) -> Any:
    return msg.get_attr(name) if hasattr(msg, "get_attr") else msg.get(name)


class Netlink:
    """Requests over one rtnetlink socket; link events over a second one, so replies
    and notifications never interleave."""

    def __init__(self) -> None:
        self._ipr: AsyncIPRoute | None = None
        self._events: AsyncIPRoute | None = None
        self._watch: asyncio.Task[None] | None = None
        self._index: dict[str, int] = {}
        self.links: dict[int, LinkState] = {}

    async def open(self) -> Netlink:
        if self._ipr is None:
            self._ipr = AsyncIPRoute()
        return self

    async def __aenter__(self) -> Netlink:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def ipr(self) -> AsyncIPRoute:
        if self._ipr is None:
            raise RuntimeError("Netlink.open() was not awaited")
        return self._ipr

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        for ipr in (self._events, self._ipr):
            if ipr is not None:
                ipr.close()
        self._events = self._ipr = None

    # -- interfaces -------------------------------------------------------------------

    async def ifindex(self, ifname: str) -> int:
        idx = self._index.get(ifname)
        if idx is None:
            found = await self.ipr.link_lookup(ifname=ifname)
            if not found:
                raise LookupError(f"no interface {ifname!r}")
            idx = self._index[ifname] = found[0]
        return idx

    def cached_ifindex(self, ifname: str) -> int | None:
        """The index last seen for ``ifname`` (the link dump and events, lookups), or
        None: no syscall, for the paths that cannot wait (drivers/rtnl_raw)."""
        return self._index.get(ifname)

    def _index_of(self, ifname: str) -> int:
        idx = self._index.get(ifname)
        if idx is None:
            raise LookupError(f"interface {ifname!r} not resolved; await ifindex() first")
        return idx

    # -- addresses ----------------------------------------------------------------------

    async def _addr_request(self, vip: VirtualAddress) -> dict[str, Any]:
        req: dict[str, Any] = {
            "index": await self.ifindex(vip.dev),
            "family": vip.family,
            "prefixlen": vip.plen,
        }
        if vip.peer:  # IFA_LOCAL is ours, IFA_ADDRESS the far end (as `ip addr ... peer`)
            req["local"] = vip.address
            req["address"] = vip.peer
        else:
            req["address"] = vip.address
        if vip.broadcast:
            req["broadcast"] = vip.broadcast
        if vip.scope is not None:
            req["scope"] = scope_number(vip.scope)
        if vip.label:
            req["label"] = vip.label
        flags = ifa_flags(vip)
        if flags:
            req["flags"] = flags
        if vip.preferred_lft is not None:
            req["preferred_lft"] = vip.preferred_lft
            req["valid_lft"] = INFINITY_LIFE_TIME
        return req

    @staticmethod
    async def _change(call: Awaitable[Any], what: str, item: object, add: bool) -> bool:
        """Run one add/del request idempotently: ``False`` (logged) when the kernel says
        it was already present (add) or already gone (delete)."""
        try:
            await call
        except NetlinkError as exc:
            if exc.code == errno.EEXIST if add else exc.code in _GONE:
                log_change(what, item, add, False)
                return False
            raise
        log_change(what, item, add, True)
        return True

    async def add_address(self, vip: VirtualAddress) -> bool:
        """Add a VIP; ``False`` if it was already there."""
        req = await self._addr_request(vip)
        return await self._change(self.ipr.addr("add", **req), "address", vip, True)

    async def delete_address(self, vip: VirtualAddress) -> bool:
        """Remove a VIP; ``False`` if it was already gone (its interface too)."""
        try:
            req = await self._addr_request(vip)
        except LookupError:
            return False  # no interface, no address (dynamic_interfaces: not there yet)
        for key in ("broadcast", "flags", "preferred_lft", "valid_lft", "scope", "label"):
            req.pop(key, None)  # the kernel matches on address/prefix only
        return await self._change(self.ipr.addr("del", **req), "address", vip, False)

    async def list_addresses(
        self, ifname: str | None = None, family: int = 0
    ) -> list[PresentAddress]:
        kw: dict[str, Any] = {}
        if ifname is not None:
            kw["index"] = await self.ifindex(ifname)
        if family:
            kw["family"] = family
        out: list[PresentAddress] = []
        async for msg in await self.ipr.addr("dump", **kw):
            local = _nla(msg, "IFA_LOCAL")
            addr = _nla(msg, "IFA_ADDRESS")
            peer = addr if local and addr and local != addr else None
            out.append(
                PresentAddress(
                    address=local or addr,
                    prefixlen=msg["prefixlen"],
                    ifindex=msg["index"],
                    label=_nla(msg, "IFA_LABEL"),
                    scope=msg["scope"],
                    flags=_nla(msg, "IFA_FLAGS") or msg["flags"],
                    peer=peer,
                )
            )
        return out

    # -- routes and rules ---------------------------------------------------------------

    async def _route(self, route: VirtualRoute, add: bool) -> bool:
        if route.dev:
            await self.ifindex(route.dev)  # resolves the name _index_of then reads
        req = route.request(self._index_of)
        return await self._change(
            self.ipr.route("add" if add else "del", **req), "route", route, add
        )

    async def add_route(self, route: VirtualRoute) -> bool:
        return await self._route(route, True)

    async def delete_route(self, route: VirtualRoute) -> bool:
        return await self._route(route, False)

    async def add_rule(self, rule: VirtualRule) -> bool:
        return await self._change(self.ipr.rule("add", **rule.request()), "rule", rule, True)

    async def delete_rule(self, rule: VirtualRule) -> bool:
        return await self._change(self.ipr.rule("del", **rule.request()), "rule", rule, False)

    # -- link events ----------------------------------------------------------------------

    async def watch_links(self, callback: LinkCallback) -> dict[int, LinkState]:
        """Subscribe to RTM_NEWLINK/DELLINK; ``callback(ifname, ifindex, up)`` runs on
        every change of "up" (IFF_UP and IFF_RUNNING, as keepalived). Returns the initial
        state, read after subscribing so no change between the two is lost."""
        if self._events is not None:
            raise RuntimeError("watch_links() already running")
        self._events = AsyncIPRoute()
        await self._events.bind(groups=RTMGRP_LINK)
        async for msg in await self.ipr.link("dump"):
            self._update_link(msg, initial=True, callback=callback)
        self._watch = asyncio.get_running_loop().create_task(
            self._watch_loop(callback), name="netlink-links"
        )
        return dict(self.links)

    def _update_link(self, msg: Any, *, initial: bool, callback: LinkCallback) -> None:
        idx = msg["index"]
        name = _nla(msg, "IFLA_IFNAME") or ""
        deleted = msg.get("event") == "RTM_DELLINK"
        up = not deleted and (msg["flags"] & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING)
        old = self.links.get(idx)
        if deleted:
            self.links.pop(idx, None)
            self._index.pop(name, None)
        else:
            self.links[idx] = LinkState(idx, name, up)
            self._index[name] = idx
        if initial or (old is not None and old.up == up) or (old is None and not up and deleted):
            return
        log.info("netlink link %s index=%d %s", name, idx, "UP" if up else "DOWN")
        try:
            callback(name, idx, up)
        except Exception:
            log.exception("netlink link callback failed for %s", name)

    async def _watch_loop(self, callback: LinkCallback) -> None:
        events = self._events
        assert events is not None
        while True:
            try:
                async for msg in events.get():
                    if msg.get("event") in ("RTM_NEWLINK", "RTM_DELLINK"):
                        self._update_link(msg, initial=False, callback=callback)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # ENOBUFS: the kernel dropped events; re-read every link so no change
                # is missed (callbacks fire for the ones that differ).
                log.warning("netlink link events lost (%s), resynchronising", exc)
                async for msg in await self.ipr.link("dump"):
                    self._update_link(msg, initial=False, callback=callback)

    # -- VMAC -------------------------------------------------------------------------------

    async def create_vmac(
        self,
        ifname: str,
        base: str,
        vrid: int,
        *,
        family: int = socket.AF_INET,
        mode: str = "private",
        ipv6: bool | None = None,
    ) -> int:
        """keepalived's ``use_vmac`` interface: see drivers/vmac."""
        return await vmac.create(self, ifname, base, vrid, family=family, mode=mode, ipv6=ipv6)

    def forget(self, ifname: str) -> None:
        """Drop a cached ifindex (the interface was made or removed anew)."""
        self._index.pop(ifname, None)

    async def delete_vmac(self, ifname: str) -> bool:
        return await vmac.delete(self, ifname)


__all__ = [
    "LinkCallback",
    "LinkState",
    "Netlink",
    "PresentAddress",
    "vmac_address",
]
