"""A new master's addresses without a round trip: prebuilt RTM_NEWADDR requests on a
NETLINK_ROUTE socket of the VRRP child's own.

pyroute2 builds a request through its filters and NLA classes and the caller awaits the
kernel's ack on the loop: most of a millisecond between a new master's first advert and
its VIP. Here each instance's adds are encoded once (at config load, again on reload or
when an interface's index changes) into one datagram; sending it is one ``send(2)``
with the sequence numbers patched in. The kernel runs rtnetlink requests inside that
call, so when it returns the addresses are in place (or refused) and the acks are
queued on the socket; they are read later from the loop, and each request's errno
reaches the caller through an awaitable ``Acks``.

    rtnl = RawRtnl().open(loop)
    reqs = AddressRequests(vips)          # per instance
    if reqs.ready(index_of):              # index_of(ifname) -> ifindex | None
        acks = rtnl.send(reqs)            # None: the send itself failed (logged, counted)
        errors = await acks.wait()        # per VIP: 0, or the kernel's errno
    rtnl.close()

The messages say what pyroute2's ``addr("add", ...)`` says for the same VIP (fastha's
drivers/netlink builds that request), so the kernel ends up with the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable, Sequence

from fastha.drivers import nlsocket
from fastha.drivers.addrwatch import (
    IFA_ADDRESS,
    IFA_LOCAL,
    IFADDRMSG,
    NETLINK_ROUTE,
    NLM_F_REQUEST,
    RTM_NEWADDR,
)
from fastha.drivers.nlsocket import NLMSG_ERROR
from fastha.vrrp.addresses import VirtualAddress, scope_number

log = logging.getLogger(__name__)

NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x4, 0x200, 0x400
# <linux/if_addr.h>
IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS = 3, 4, 6, 8
IFA_F_NODAD, IFA_F_HOMEADDRESS, IFA_F_NOPREFIXROUTE = 0x02, 0x10, 0x200
INFINITY_LIFE_TIME = 0xFFFFFFFF

_HDR = nlsocket.NLMSG_HDR
_NLA = nlsocket.NLA_HDR
_ERR = struct.Struct("=i")  # nlmsgerr.error, after the ack's own header
_SEQ = struct.Struct("=I")
_SEQ_AT = 8  # nlmsghdr: len(4) type(2) flags(2) seq(4) pid(4)
ACK_WAIT_S = 1.0  # the kernel queues an ack inside send(2); only a lost one waits this


def _nla(kind: int, payload: bytes) -> bytes:
    n = _NLA.size + len(payload)
    return _NLA.pack(n, kind) + payload + bytes(-n % 4)


def ifa_flags(vip: VirtualAddress) -> int:
    """The IFA_F_* flags of ``vip``'s options (nodad, home, noprefixroute)."""
    return (
        (IFA_F_NODAD if vip.nodad else 0)
        | (IFA_F_HOMEADDRESS if vip.home else 0)
        | (IFA_F_NOPREFIXROUTE if vip.noprefixroute else 0)
    )


def newaddr(vip: VirtualAddress, ifindex: int, seq: int = 0) -> bytes:
    """One RTM_NEWADDR request (create, exclusive, acked) for ``vip`` on ``ifindex``,
    with the attributes pyroute2's ``addr("add", ...)`` sends for the same request:
    IFA_LOCAL (IPv4, or with a peer) and IFA_ADDRESS (the peer, else the address),
    IFA_BROADCAST, IFA_LABEL, the flags as IFA_FLAGS, a preferred lifetime as
    IFA_CACHEINFO with an infinite valid one."""
    family = vip.family
    packed = socket.inet_pton(family, vip.address)
    attrs = []
    if vip.peer:  # IFA_LOCAL is ours, IFA_ADDRESS the far end (as `ip addr ... peer`)
        attrs.append(_nla(IFA_LOCAL, packed))
        attrs.append(_nla(IFA_ADDRESS, socket.inet_pton(family, vip.peer)))
    elif family == socket.AF_INET:
        attrs.append(_nla(IFA_LOCAL, packed))
        attrs.append(_nla(IFA_ADDRESS, packed))
    else:
        attrs.append(_nla(IFA_ADDRESS, packed))
    if vip.broadcast:
        attrs.append(_nla(IFA_BROADCAST, socket.inet_pton(family, vip.broadcast)))
    if vip.label:
        attrs.append(_nla(IFA_LABEL, vip.label.encode() + b"\0"))
    flags = ifa_flags(vip)
    if flags:
        attrs.append(_nla(IFA_FLAGS, struct.pack("=I", flags)))
    if vip.preferred_lft is not None:
        info = struct.pack("=IIII", vip.preferred_lft, INFINITY_LIFE_TIME, 0, 0)
        attrs.append(_nla(IFA_CACHEINFO, info))
    scope = scope_number(vip.scope) or 0
    body = IFADDRMSG.pack(family, vip.plen, 0, scope, ifindex) + b"".join(attrs)
    kind = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
    return _HDR.pack(_HDR.size + len(body), RTM_NEWADDR, kind, seq, 0) + body


class AddressRequests:
    """One instance's address adds (VIPs, then excluded VIPs), prebuilt as one datagram
    for the interface indexes they were built with."""

    __slots__ = ("_devs", "_key", "data", "offsets", "vips")

    def __init__(self, vips: Sequence[VirtualAddress]) -> None:
        self.vips = tuple(vips)
        self._devs = tuple(dict.fromkeys(v.dev for v in self.vips))
        self._key: tuple[int | None, ...] | None = None
        self.data = b""
        self.offsets: tuple[int, ...] = ()  # where each message starts in ``data``

    def ready(self, index_of: Callable[[str], int | None]) -> bool:
        """Whether ``data`` holds the requests for the interfaces' current indexes
        (rebuilt here when one changed); False when an index is unknown."""
        key = tuple(index_of(d) for d in self._devs)
        if key == self._key:
            return True
        if None in key:
            return False
        index = {d: i for d, i in zip(self._devs, key, strict=True) if i is not None}
        msgs = [newaddr(v, index[v.dev]) for v in self.vips]
        offsets, at = [], 0
        for m in msgs:
            offsets.append(at)
            at += len(m)
        self.data, self.offsets, self._key = b"".join(msgs), tuple(offsets), key
        return True


class Acks:
    """The kernel's answers to one send: per request (``vips``) 0 or its errno."""

    __slots__ = ("errors", "first_seq", "future", "left", "vips")

    def __init__(
        self, future: asyncio.Future[None], first_seq: int, vips: tuple[VirtualAddress, ...]
    ) -> None:
        self.future, self.first_seq, self.vips = future, first_seq, vips
        self.left = len(vips)
        self.errors: list[int | None] = [None] * len(vips)  # None: no ack (yet)

    async def wait(self, timeout: float = ACK_WAIT_S) -> list[int | None]:
        """Every request's errno once all acks are in (None for one never acked)."""
        if self.left:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.future), timeout)
        return self.errors


class RawRtnl:
    """The NETLINK_ROUTE socket the prebuilt requests go out on. Counters: ``sent``
    (requests), ``refused`` (acks with an errno but EEXIST), ``send_errors`` (sends that failed
    whole), ``lost`` (acks never read: ENOBUFS on the socket)."""

    def __init__(self) -> None:
        self._reader: nlsocket.Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._pending: dict[int, tuple[Acks, int]] = {}  # seq -> (acks, index)
        self.sent = self.refused = self.send_errors = self.lost = 0

    def open(self, loop: asyncio.AbstractEventLoop) -> RawRtnl:
        sock = nlsocket.open_socket(NETLINK_ROUTE, rcvbuf=1 << 20)
        self._reader = nlsocket.Reader(
            sock, self._dispatch, self._on_error, bufsize=1 << 16, budget=64
        )
        self._reader.attach(loop)
        self._loop = loop
        return self

    @property
    def is_open(self) -> bool:
        return self._reader is not None

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        for acks, _ in self._pending.values():
            if not acks.future.done():
                acks.future.set_result(None)
        self._pending.clear()

    def send(self, reqs: AddressRequests) -> Acks | None:
        """Send ``reqs`` (``ready()`` must have said True) now. None when the socket is
        closed or the send failed (logged and counted: nothing was asked of the kernel)."""
        reader, loop = self._reader, self._loop
        if reader is None or loop is None or reader.sock is None:
            return None
        n = len(reqs.offsets)
        buf = bytearray(reqs.data)
        first = self._seq + 1
        for i, off in enumerate(reqs.offsets):
            _SEQ.pack_into(buf, off + _SEQ_AT, (first + i) & 0xFFFFFFFF)
        self._seq = (self._seq + n) & 0x7FFFFFFF
        try:
            reader.sock.send(buf)
        except OSError as exc:
            self.send_errors += 1
            log.error("netlink address requests not sent: %s", exc.strerror or exc)
            return None
        self.sent += n
        acks = Acks(loop.create_future(), first, reqs.vips)
        for i in range(n):
            self._pending[(first + i) & 0xFFFFFFFF] = (acks, i)
        return acks

    def _dispatch(self, data: bytes) -> None:
        msgs, _malformed = nlsocket.messages(data)
        for off, length, mtype, _flags, seq in msgs:
            if mtype != NLMSG_ERROR or length < _HDR.size + _ERR.size:
                continue
            found = self._pending.pop(seq, None)
            if found is None:
                continue
            acks, i = found
            code = -_ERR.unpack_from(data, off + _HDR.size)[0]
            if code and code != errno.EEXIST:  # already there: no failure
                self.refused += 1
            acks.errors[i] = code
            acks.left -= 1
            if not acks.left and not acks.future.done():
                acks.future.set_result(None)

    def _on_error(self, exc: OSError) -> bool:
        if exc.errno == errno.ENOBUFS:  # acks dropped: whoever waits for them stops now
            self.lost += len(self._pending)
            for acks, _ in self._pending.values():
                if not acks.future.done():
                    acks.future.set_result(None)
            self._pending.clear()
            return True
        log.error("netlink address requests: %s", exc.strerror or exc)
        return False


def describe_error(code: int, seq: int) -> str:
    """keepalived 2.2.7's line for a refused request (keepalived_netlink.c
    netlink_parse_info)."""
    return (
        f"Netlink: error: {os.strerror(code)}({code}), type=RTM_NEWADDR({RTM_NEWADDR}), "
        f"seq={seq}, pid=0"
    )
