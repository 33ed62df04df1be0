"""The receive side of a raw VRRP socket (drivers/vrrp_socket): drain what is queued,
bounded per wakeup, and hand each packet to the callback.

``drain4`` / ``drain6`` return True when they stopped because the advert timer's
deadline passed (the caller counts the yield: see VrrpSocket._on_readable). The
callback's ``payload`` is a memoryview over a buffer reused for the next packet.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastha.drivers.vrrp_sockopts import IPV6_HOPLIMIT, IPV6_PKTINFO

if TYPE_CHECKING:
    from fastha.drivers.vrrp_socket import VrrpSocketStats

log = logging.getLogger("fastha.drivers.vrrp_socket")

# Largest VRRP message: 255 IPv6 addresses (16 B each) + header; round up to a jumbo.
_BUFSIZE = 9216
# Packets drained per wakeup: bounded so one flood cannot starve the timer reader.
_DRAIN_MAX = 64
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)  # in6_pktinfo + hop limit
_INT = struct.Struct("=i")
# The hop limit reported when the kernel gave none: outside 0..255, so neither the
# multicast check (== 255) nor a unicast peer's min_ttl..max_ttl accepts it; -1 would
# mean "do not check" to the wire decoder.
NO_HOPLIMIT = 256
_monotonic_ns = time.monotonic_ns  # CLOCK_MONOTONIC, the PreciseTimer's clock

RecvCallback = Callable[[memoryview, str, str, int, int], None]


class Receiver:
    """One socket's receive buffer, callback and counters."""

    __slots__ = ("buf", "ifindex", "ifname", "mv", "on_packet", "stats", "whole")

    def __init__(
        self,
        on_packet: RecvCallback,
        stats: VrrpSocketStats,
        ifname: str,
        ifindex: int,
        *,
        whole: bool = False,
    ) -> None:
        """``whole``: hand over the whole IPv4 packet (keepalived's AH: the ICV covers
        the IP header), not the VRRP message after it."""
        self.on_packet, self.stats = on_packet, stats
        self.ifname, self.ifindex, self.whole = ifname, ifindex, whole
        self.buf = bytearray(_BUFSIZE)
        self.mv = memoryview(self.buf)

    def drain4(self, sock: socket.socket, due: int) -> bool:
        buf, mv, ifx, cb, stats = self.buf, self.mv, self.ifindex, self.on_packet, self.stats
        whole = self.whole
        for _ in range(_DRAIN_MAX):
            try:
                n = sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                stats.recv_errors += 1
                return False
            ihl = (buf[0] & 0x0F) * 4
            if n < ihl or ihl < 20:
                stats.truncated += 1
                continue
            stats.received += 1
            # IPv4 raw sockets deliver the IP header: TTL at 8, src at 12, dst at 16.
            try:
                cb(
                    mv[:n] if whole else mv[ihl:n],
                    socket.inet_ntop(socket.AF_INET, mv[12:16]),
                    socket.inet_ntop(socket.AF_INET, mv[16:20]),
                    buf[8],
                    ifx,
                )
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.ifname)
            if due and _monotonic_ns() >= due:
                # An advert is due: stop here so the timer's reader runs (the socket
                # stays readable; the next wakeup goes on where this one stopped).
                return True
        return False

    def drain6(self, sock: socket.socket, due: int) -> bool:
        bufs, anc, cb, stats = [self.buf], _ANC_SIZE, self.on_packet, self.stats
        mv = self.mv
        for _ in range(_DRAIN_MAX):
            try:
                n, ancdata, flags, addr = sock.recvmsg_into(bufs, anc)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                stats.recv_errors += 1
                return False
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                stats.truncated += 1
                continue
            hops = NO_HOPLIMIT
            dst = ""
            ifx = self.ifindex
            for level, ctype, data in ancdata:
                if level != socket.IPPROTO_IPV6:
                    continue
                if ctype == IPV6_HOPLIMIT:
                    hops = _INT.unpack_from(data)[0]
                elif ctype == IPV6_PKTINFO:
                    # struct in6_pktinfo {in6_addr ipi6_addr; int ipi6_ifindex}
                    dst = socket.inet_ntop(socket.AF_INET6, data[:16])
                    ifx = _INT.unpack_from(data, 16)[0]
            if not dst:
                # Without its destination a packet cannot be demultiplexed (multicast
                # or unicast?) nor its v3 checksum checked: dropped, not guessed.
                stats.no_pktinfo += 1
                continue
            stats.received += 1
            src = addr[0]
            if "%" in src:  # link-local sources come back as "fe80::1%eth0"
                src = src.partition("%")[0]
            try:
                cb(mv[:n], src, dst, hops, ifx)
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.ifname)
            if due and _monotonic_ns() >= due:
                return True
        return False
