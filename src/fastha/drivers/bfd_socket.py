"""BFD's UDP sockets (RFC 5881 single hop, RFC 5883 multihop), opened as keepalived
2.2.7's bfd_scheduler.c opens them.

- One listening socket per port for every session: AF_INET6 bound to ``[::]:3784``
  and taking IPv4 too (v4-mapped; AF_INET alone where IPv6 is disabled), with the
  received TTL / hop limit (IP_RECVTTL, IPV6_RECVHOPLIMIT) and the destination address
  (IPV6_RECVPKTINFO, IP_PKTINFO) of each packet: the demultiplexer needs the
  destination when Your Discriminator is 0, and the session's GTSM check the TTL.
  ``multihop`` sessions (RFC 5883, port 4784) get a second listener; keepalived 2.2.7
  runs every session on 3784, which is what a config without ``multihop`` gets.
- One sending socket per session: bound to ``source_ip`` (the wildcard address when
  none is given) and a source port drawn at random from the local port range clipped to
  49152-65535 (RFC 5881 §4), the next free one on EADDRINUSE; IP_TTL /
  IPV6_UNICAST_HOPS set to the session's ``ttl`` / ``hoplimit`` (255 for GTSM,
  RFC 5881 §5). keepalived leaves the socket unbound without a ``source_ip`` and so
  sends from a kernel-chosen port, possibly outside the range: fastha binds the port
  anyway.

GTSM on receipt (keepalived's bfd_check_packet_ttl, RFC 5881 §5 extended with
``max_hops``) is the session machine's (fastha.bfd.session): the session it applies to
is known only after the demultiplexer has found it, so the reader only reports the TTL.

The callback gets ``(payload, src, sport, dst, ttl)``: ``payload`` a memoryview over a
buffer reused for the next packet (copy it to keep it), ``src``/``dst`` the addresses
as text (IPv4 for v4-mapped ones), ``sport`` the source port, ``ttl`` 0 when the kernel reported none (keepalived
then skips the check, and so do we: a kernel that reports nothing is not an attack).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastha.drivers import rxbudget
from fastha.drivers.rxbudget import RxBudget
from fastha.drivers.vrrp_sockopts import (
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
)

log = logging.getLogger("fastha.bfd")

BFD_PORT = 3784  # RFC 5881 §4
BFD_MULTIHOP_PORT = 4784  # RFC 5883 §5
SRC_PORT_MIN = 49152  # RFC 5881 §4: the source port MUST be in 49152..65535
SRC_PORT_MAX = 65535
TTL_SINGLE_HOP = 255  # RFC 5881 §5 (GTSM); keepalived's BFD_CONTROL_TTL
HOPLIMIT_DEFAULT = 64  # keepalived's BFD_CONTROL_HOPLIMIT (its IPv6 default)

# Linux values the socket module does not export.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_INT = struct.Struct("=i")
_BUFSIZE = 1500  # a control packet is 24 bytes (+ 28 of authentication): one MTU is ample
_DRAIN_MAX = 64  # packets per wakeup, so a flood cannot starve the timer's reader
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)  # in6_pktinfo + hop limit / TTL
_LOCAL_PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"

RecvCallback = Callable[[memoryview, str, int, str, int], None]


def _unmap(addr: str) -> str:
    """``::ffff:198.18.0.1`` -> ``198.18.0.1``; a link-local's ``%scope`` dropped."""
    if addr.startswith("::ffff:") and "." in addr:
        return addr[7:]
    return addr.partition("%")[0]


@dataclass(slots=True)
class ListenerStats:
    received: int = 0
    truncated: int = 0
    recv_errors: int = 0
    no_ttl: int = 0  # keepalived: "recvmsg() returned no TTL control message"


class BfdListener:
    """The shared receive socket of one port, drained on the loop."""

    def __init__(self, on_packet: RecvCallback, port: int = BFD_PORT) -> None:
        self.on_packet = on_packet
        self.port = port
        self.stats = ListenerStats()
        self.sock = open_listener(port)
        self.sock.setblocking(False)
        self._buf = bytearray(_BUFSIZE)
        self._mv = memoryview(self._buf)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._budget: RxBudget | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def attach(self, loop: asyncio.AbstractEventLoop, budget: RxBudget | None = None) -> None:
        """Read on ``loop`` (metered by ``budget`` under real-time scheduling)."""
        self._loop, self._budget = loop, budget
        rxbudget.add_reader(budget, loop, self.sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        start = time.monotonic_ns()
        self.drain()
        if self._budget is not None:
            self._budget.charge(start)

    def drain(self) -> int:
        """Hand every queued packet (at most _DRAIN_MAX) to the callback; how many."""
        bufs, mv, cb, stats = [self._buf], self._mv, self.on_packet, self.stats
        sock = self.sock
        for count in range(_DRAIN_MAX):
            try:
                n, ancdata, flags, addr = sock.recvmsg_into(bufs, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return count
            except OSError as exc:
                stats.recv_errors += 1
                log.error("recvmsg() error (%s)", exc.strerror or exc)
                return count
            if flags & socket.MSG_TRUNC:
                stats.truncated += 1
                continue
            ttl = 0
            dst = ""
            for level, ctype, data in ancdata:
                if (level == socket.IPPROTO_IP and ctype == socket.IP_TTL) or (
                    level == socket.IPPROTO_IPV6 and ctype == IPV6_HOPLIMIT
                ):
                    ttl = _INT.unpack_from(data)[0] if len(data) >= 4 else data[0]
                elif level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO:
                    dst = socket.inet_ntop(socket.AF_INET6, data[:16])
                elif level == socket.IPPROTO_IP and ctype == IP_PKTINFO:
                    # struct in_pktinfo {int ipi_ifindex; in_addr ipi_spec_dst, ipi_addr}
                    dst = socket.inet_ntop(socket.AF_INET, data[8:12])
            if not ttl:
                stats.no_ttl += 1
            stats.received += 1
            try:
                cb(mv[:n], _unmap(addr[0]), addr[1], _unmap(dst), ttl)
            except Exception:
                log.exception("BFD receive callback failed")
        return _DRAIN_MAX

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._loop is not None:
            rxbudget.close_reader(self._budget, self._loop, self.sock)
        else:
            self.sock.close()


def open_listener(port: int = BFD_PORT) -> socket.socket:
    """keepalived's bfd_open_fd_in: ``[::]:port`` for both families (``0.0.0.0:port``
    when the kernel has no IPv6), reporting TTL / hop limit and destination."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    except OSError as exc:
        if exc.errno != errno.EAFNOSUPPORT:
            raise
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        if sock.family == socket.AF_INET6:
            # Whatever net.ipv6.bindv6only says: IPv4 peers arrive here too.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            sock.bind(("::", port))
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.bind(("0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def local_port_range(path: str = _LOCAL_PORT_RANGE) -> tuple[int, int]:
    """keepalived's read_local_port_range clipped to RFC 5881's 49152-65535, falling
    back to the whole 49152-65535 when fewer than 1024 ports are left."""
    lo, hi = SRC_PORT_MIN, 60999
    with contextlib.suppress(OSError, ValueError):
        with open(path) as fh:
            first, second = fh.read().split()[:2]
        lo, hi = int(first), int(second)
    lo, hi = max(lo, SRC_PORT_MIN), min(hi, SRC_PORT_MAX)
    if lo + 1023 > hi:
        return SRC_PORT_MIN, SRC_PORT_MAX
    return lo, hi


def open_sender(
    family: int,
    source: str | None,
    ttl: int,
    rng: random.Random | None = None,
    port_range: tuple[int, int] | None = None,
) -> socket.socket:
    """keepalived's bfd_open_fd_out: a UDP socket bound to ``source`` (or the wildcard)
    on a random free port of ``port_range``, with IP_TTL / IPV6_UNICAST_HOPS ``ttl``.
    OSError when no port is free or an option is refused."""
    rng = rng or random.Random()
    lo, hi = port_range or local_port_range()
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        host = source or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        first = port = rng.randint(lo, hi)
        while True:
            try:
                sock.bind((host, port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                port = port + 1 if port < hi else lo
                if port == first:
                    raise
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class BfdSender:
    """One session's sending socket and destination; ``send`` never raises."""

    __slots__ = ("dest", "errors", "sent", "sock")

    def __init__(
        self,
        neighbor: str,
        source: str | None,
        ttl: int,
        *,
        multihop: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in neighbor else socket.AF_INET
        self.sock = open_sender(family, source, ttl, rng)
        self.dest = (neighbor, BFD_MULTIHOP_PORT if multihop else BFD_PORT)
        self.sent = 0
        self.errors = 0

    @property
    def source_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, packet: bytes) -> bool:
        try:
            self.sock.sendto(packet, self.dest)
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self.sock.close()
