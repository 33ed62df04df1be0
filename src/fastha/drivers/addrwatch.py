"""Which IP addresses are local on this host, kept current from rtnetlink address events.

The checker child needs it for ``ha_suspend``: a virtual server's checkers run only while
its virtual address is on this director (the VRRP VIP moved here). keepalived does the
same from its netlink address monitor (check_api.c update_checker_activity).

One NETLINK_ROUTE socket subscribed to RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, read
with ``loop.add_reader`` (uvloop cannot wrap AF_NETLINK in a datagram endpoint; see
fastha.drivers.netlink), then one RTM_GETADDR dump on it, so no change between the
subscription and the initial state is lost. Messages are parsed with struct through
bounds-checked reads: a malformed one is dropped and counted, never a crash. An overrun
(ENOBUFS: the kernel dropped events) re-reads every address.

    w = AddressWatcher(callback)          # callback(address, present) on every edge
    await w.open()                        # initial state in w.local, no callbacks
    w.is_local(ipaddress.ip_address("10.0.0.1"))
    w.close()

An address counts as local while any interface holds it.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable

from fastha.drivers import nlsocket
from fastha.drivers.nlsocket import NLMSG_DONE, NLMSG_ERROR

log = logging.getLogger(__name__)

NETLINK_ROUTE = 0
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
_HDR = nlsocket.NLMSG_HDR
IFADDRMSG = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressCallback = Callable[[Address, bool], None]


def parse_addr_message(msg: bytes) -> tuple[int, Address, int] | None:
    """(RTM_NEWADDR or RTM_DELADDR, the local address, ifindex) of one whole netlink
    message, or None when it is not an address message. ValueError when malformed."""
    found = nlsocket.head(msg, (RTM_NEWADDR, RTM_DELADDR), IFADDRMSG.size)
    if found is None:
        return None
    length, mtype = found
    family, _plen, _flags, _scope, index = IFADDRMSG.unpack_from(msg, _HDR.size)
    size = {socket.AF_INET: 4, socket.AF_INET6: 16}.get(family)
    if size is None:
        return None
    attrs = nlsocket.attributes(msg, _HDR.size + IFADDRMSG.size, length)
    # IFA_LOCAL is the address itself (IFA_ADDRESS is the peer on point-to-point links);
    # IPv6 sends only IFA_ADDRESS.
    raw = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
    if raw is None or len(raw) != size:
        raise ValueError(f"address attribute of {0 if raw is None else len(raw)} bytes")
    return mtype, ipaddress.ip_address(raw), index


class AddressWatcher:
    def __init__(self, callback: AddressCallback | None = None) -> None:
        self.callback = callback
        self.holders: dict[Address, set[int]] = {}  # address -> interfaces holding it
        self.malformed = 0
        self._reader: nlsocket.Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._dumping = False
        self._dump_seen: dict[Address, set[int]] = {}
        self._dump_done: asyncio.Future[None] | None = None

    @property
    def local(self) -> frozenset[Address]:
        return frozenset(self.holders)

    def is_local(self, addr: Address) -> bool:
        return addr in self.holders

    async def open(self) -> AddressWatcher:
        self._loop = asyncio.get_running_loop()
        sock = nlsocket.open_socket(
            NETLINK_ROUTE, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, rcvbuf=1 << 20
        )
        # bounded: an event storm must not starve the loop
        self._reader = nlsocket.Reader(
            sock, self._dispatch, self._on_error, bufsize=1 << 16, budget=64
        )
        self._reader.attach(self._loop)
        await self._dump(initial=True)
        return self

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        if self._dump_done is not None and not self._dump_done.done():
            self._dump_done.cancel()

    # -- reading

    async def _dump(self, *, initial: bool) -> None:
        assert self._reader is not None and self._loop is not None
        self._seq += 1
        self._dumping, self._dump_seen = True, {}
        self._dump_done = self._loop.create_future()
        req = _HDR.pack(_HDR.size + 4, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0)
        self._reader.send(req + struct.pack("=Bxxx", socket.AF_UNSPEC))
        await self._dump_done
        seen, self._dumping = self._dump_seen, False
        if initial:
            self.holders = seen
            return
        # Resynchronised after lost events: an edge for every address that differs.
        for addr in set(self.holders) | set(seen):
            was, now = addr in self.holders, addr in seen
            if was != now:
                self._edge(addr, now)
        self.holders = seen

    def _on_error(self, exc: OSError) -> bool:
        if exc.errno == errno.ENOBUFS and not self._dumping:
            log.warning("netlink address events lost, resynchronising")
            assert self._loop is not None
            self._loop.create_task(self._dump(initial=False))
            return True
        log.error("netlink address watcher: %s", exc)
        return False

    def _dispatch(self, data: bytes) -> None:
        msgs, malformed = nlsocket.messages(data)
        for off, length, mtype, _flags, seq in msgs:
            msg = data[off : off + length]
            if mtype in (NLMSG_DONE, NLMSG_ERROR) and seq == self._seq and self._dumping:
                if self._dump_done is not None and not self._dump_done.done():
                    self._dump_done.set_result(None)
                continue
            try:
                parsed = parse_addr_message(msg)
            except ValueError as exc:
                self.malformed += 1
                log.debug("netlink address message dropped: %s", exc)
                continue
            if parsed is None:
                continue
            kind, addr, index = parsed
            if self._dumping and seq == self._seq:
                self._dump_seen.setdefault(addr, set()).add(index)
            else:
                self._event(kind, addr, index)
        if malformed:
            self.malformed += 1

    def _event(self, kind: int, addr: Address, index: int) -> None:
        if self._dumping:  # keep the dump's picture in step with events during it
            if kind == RTM_NEWADDR:
                self._dump_seen.setdefault(addr, set()).add(index)
            else:
                self._dump_seen.get(addr, set()).discard(index)
                if not self._dump_seen.get(addr, True):
                    del self._dump_seen[addr]
            return
        was = addr in self.holders
        if kind == RTM_NEWADDR:
            self.holders.setdefault(addr, set()).add(index)
        else:
            held = self.holders.get(addr)
            if held is not None:
                held.discard(index)
                if not held:
                    del self.holders[addr]
        now = addr in self.holders
        if was != now:
            self._edge(addr, now)

    def _edge(self, addr: Address, present: bool) -> None:
        log.debug("netlink address %s %s", addr, "added" if present else "removed")
        if self.callback is not None:
            try:
                self.callback(addr, present)
            except Exception:
                log.exception("address callback failed for %s", addr)
