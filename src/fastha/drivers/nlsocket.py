"""Raw AF_NETLINK sockets read from the event loop: the plumbing shared by the drivers
that speak netlink without pyroute2's sockets (addrwatch: rtnetlink address events,
ipvs: generic netlink requests, procwatch: the proc connector).

uvloop cannot wrap AF_NETLINK in a datagram endpoint, so each is a plain non-blocking
socket registered with ``loop.add_reader``; a readable socket is drained a bounded
number of datagrams per loop turn (an event storm must not starve the adverts' timer).

    sock = open_socket(NETLINK_ROUTE, groups, rcvbuf=1 << 20)
    reader = Reader(sock, on_data, on_error, bufsize=1 << 16, budget=64)
    reader.attach(loop)
    msgs, malformed = messages(data)   # [(offset, length, type, flags, seq)]
    reader.close()

``on_error(exc)`` sees every OSError of ``recv`` but EAGAIN/EINTR (ENOBUFS: the kernel
dropped messages); it returns True to keep reading, False to stop this turn, or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Container

NLMSG_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; not in Python's socket module


def open_socket(
    protocol: int,
    groups: int = 0,
    *,
    rcvbuf: int = 0,
    force_rcvbuf: bool = False,
    sndbuf: int = 0,
    dgram: bool = False,
) -> socket.socket:
    """A non-blocking, close-on-exec netlink socket of ``protocol`` bound to the
    multicast ``groups``, with the receive (and send) buffer asked for. With
    ``force_rcvbuf`` SO_RCVBUFFORCE is tried first (it needs CAP_NET_ADMIN; above
    net.core.rmem_max) and a refused size is not an error. The socket is closed if
    any other step fails."""
    kind = socket.SOCK_DGRAM if dgram else socket.SOCK_RAW
    sock = socket.socket(
        socket.AF_NETLINK, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, protocol
    )
    try:
        sock.bind((0, groups))
        if rcvbuf and force_rcvbuf:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:  # no CAP_NET_ADMIN: as much as net.core.rmem_max allows
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        elif rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    except OSError:
        sock.close()
        raise
    return sock


Message = tuple[int, int, int, int, int]  # offset, length, type, flags, seq


def messages(data: bytes) -> tuple[list[Message], bool]:
    """(offset, length, type, flags, seq) of each netlink message in one datagram, in
    order, and whether the walk stopped early at a malformed header (a length below a
    header or running past the datagram): what follows it cannot be framed."""
    out: list[Message] = []
    off, end = 0, len(data)
    while off + NLMSG_HDR.size <= end:
        length, mtype, flags, seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size or off + length > end:
            return out, True
        out.append((off, length, mtype, flags, seq))
        off += (length + 3) & ~3
    return out, False


def head(msg: bytes, types: Container[int], body: int) -> tuple[int, int] | None:
    """(length, type) of the whole netlink message ``msg`` when its type is one of
    ``types``; None for any other type. ValueError when ``msg`` is shorter than a
    header, or its length runs past ``msg`` or leaves no room for the ``body`` bytes of
    fixed header that follow the netlink one."""
    if len(msg) < NLMSG_HDR.size:
        raise ValueError(f"message of {len(msg)} bytes")
    length, mtype = NLMSG_HDR.unpack_from(msg)[:2]
    if mtype not in types:
        return None
    if length > len(msg) or length < NLMSG_HDR.size + body:
        raise ValueError(f"message length {length} of {len(msg)} bytes")
    return length, mtype


NLA_HDR = struct.Struct("=HH")  # nlattr: len, type
NLA_TYPE_MASK = 0x3FFF  # the type without NLA_F_NESTED / NLA_F_NET_BYTEORDER


def attributes(msg: bytes, off: int, end: int) -> dict[int, bytes]:
    """The payloads of the attributes in ``msg[off:end]`` by type (flags masked off; the
    last one of a type wins). ValueError when a length is below a header or runs past
    ``end``: every length is checked before it is used."""
    out: dict[int, bytes] = {}
    while off + NLA_HDR.size <= end:
        n, kind = NLA_HDR.unpack_from(msg, off)
        if n < NLA_HDR.size or off + n > end:
            raise ValueError(f"attribute {kind} length {n} at {off} runs past {end}")
        out[kind & NLA_TYPE_MASK] = msg[off + NLA_HDR.size : off + n]
        off += (n + 3) & ~3
    return out


class Reader:
    """Reads a netlink socket from the loop: ``on_data(datagram)`` per datagram, at
    most ``budget`` per readable event."""

    def __init__(
        self,
        sock: socket.socket,
        on_data: Callable[[bytes], None],
        on_error: Callable[[OSError], bool],
        *,
        bufsize: int,
        budget: int,
    ) -> None:
        self.sock: socket.socket | None = sock
        self.on_data, self.on_error = on_data, on_error
        self.bufsize, self.budget = bufsize, budget
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.sock is not None
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self.on_readable)

    def send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.send(data)

    def on_readable(self) -> None:
        for _ in range(self.budget):
            if self.sock is None:  # closed by a callback
                return
            try:
                data = self.sock.recv(self.bufsize)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self.on_error(exc):
                    continue
                return
            self.on_data(data)

    def close(self) -> None:
        """Stop reading and close the socket; safe twice and after the loop closed."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
