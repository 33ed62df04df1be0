"""Raw IPPROTO_VRRP (112) sockets, one per (interface, family), on the loop as readers.

uvloop's datagram endpoints reject raw sockets, so the fd is registered with
``loop.add_reader`` and drained in the callback. Sending is a plain non-blocking
``sendto`` called straight from the advert timer: it never awaits and never raises into
the loop; EAGAIN / ENOBUFS are counted (RFC 5798 §6.4.3: a lost advert is just a lost
advert, the next one is 1 interval away).

Receive hands the callback ``(payload, src, dst, ttl, ifindex)``. ``payload`` is a
memoryview of the VRRP message (IPv4 header stripped) over a buffer reused for the
next packet: valid during the callback only, copy it (``bytes(payload)``) to keep it.
The TTL / hop limit is reported so the protocol layer can drop anything not 255
(RFC 5798 §7.1 / RFC 3768 §7.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

IPPROTO_VRRP = 112
VRRP_MCAST_GROUP4 = "224.0.0.18"
VRRP_MCAST_GROUP6 = "ff02::12"

# Linux values that the socket module may not export.
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IPV6_MULTICAST_ALL = 29
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)

# Largest VRRP message: 255 IPv6 addresses (16 B each) + header; round up to a jumbo.
_BUFSIZE = 9216
# Packets drained per wakeup: bounded so one flood cannot starve the timer reader.
_DRAIN_MAX = 64
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)  # in6_pktinfo + hop limit
_INT = struct.Struct("=i")

RecvCallback = Callable[[memoryview, str, str, int, int], None]


@dataclass(frozen=True, slots=True)
class VrrpSocketConfig:
    """What keepalived's vrrp_instance says about where adverts go.

    ``src`` is mcast_src_ip / unicast_src_ip; with ``unicast_peers`` set the socket sends
    one copy per peer and joins no group.
    """

    ifname: str
    family: int = socket.AF_INET
    src: str | None = None
    mcast_group: str | None = None  # vrrp_mcast_group4 / vrrp_mcast_group6
    unicast_peers: tuple[str, ...] = ()
    unicast_ttl: int = 255
    mcast_ttl: int = 255
    rcvbuf: int = 0  # 0 = kernel default

    @property
    def group(self) -> str:
        if self.mcast_group:
            return self.mcast_group
        return VRRP_MCAST_GROUP6 if self.family == socket.AF_INET6 else VRRP_MCAST_GROUP4


@dataclass(slots=True)
class VrrpSocketStats:
    sent: int = 0
    send_eagain: int = 0
    send_enobufs: int = 0
    send_errors: int = 0
    received: int = 0
    recv_errors: int = 0
    truncated: int = 0


class VrrpSocket:
    """One raw VRRP socket bound to one interface and family."""

    __slots__ = (
        "_anc",
        "_buf",
        "_cmsg",
        "_dests",
        "_loop",
        "_mv",
        "_on_packet",
        "_sock",
        "config",
        "ifindex",
        "stats",
    )

    def __init__(
        self,
        config: VrrpSocketConfig,
        on_packet: RecvCallback,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self._on_packet = on_packet
        self._loop = loop
        self._sock: socket.socket | None = None
        self._buf = bytearray(_BUFSIZE)
        self._mv = memoryview(self._buf)
        self._anc = _ANC_SIZE
        self._dests: tuple[tuple[object, ...], ...] = ()
        self._cmsg: list[tuple[int, int, bytes]] = []
        self.ifindex = 0
        self.stats = VrrpSocketStats()

    @property
    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def open(self) -> None:
        """Create, configure and register the socket (call inside the running loop)."""
        if self._sock is not None:
            return
        cfg = self.config
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self.ifindex = socket.if_nametoindex(cfg.ifname)
        v6 = cfg.family == socket.AF_INET6
        sock = socket.socket(cfg.family, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, cfg.ifname.encode())
            if cfg.rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.rcvbuf)
            if v6:
                self._setup6(sock)
            else:
                self._setup4(sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        loop.add_reader(sock.fileno(), self._on_readable)
        log.info(
            "vrrp_socket open dev=%s family=%s src=%s %s",
            cfg.ifname,
            "inet6" if v6 else "inet",
            cfg.src or "-",
            f"unicast_peers={','.join(cfg.unicast_peers)}"
            if cfg.unicast_peers
            else f"group={cfg.group}",
        )

    def _setup4(self, sock: socket.socket) -> None:
        cfg = self.config
        # Only the groups this socket joined, not every group any socket on the host joined.
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, cfg.mcast_ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, cfg.unicast_ttl)
        # struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}: pick the interface
        # by index so an interface without an IPv4 address still works.
        src = socket.inet_aton(cfg.src) if cfg.src else bytes(4)
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, bytes(4) + src + _INT.pack(self.ifindex)
        )
        # bind() would also filter what we receive to packets sent to src, which drops
        # every multicast advert: for multicast, IP_MULTICAST_IF above sets the source.
        if cfg.src and cfg.unicast_peers:
            sock.bind((cfg.src, 0))
        if cfg.unicast_peers:
            self._dests = tuple((p, 0) for p in cfg.unicast_peers)
        else:
            group = socket.inet_aton(cfg.group)
            mreqn = group + bytes(4) + _INT.pack(self.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            self._dests = ((cfg.group, 0),)

    def _setup6(self, sock: socket.socket) -> None:
        cfg = self.config
        ifx = self.ifindex
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, cfg.mcast_ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, cfg.unicast_ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifx)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        # kernel >= 4.20; without it the device binding still filters interfaces
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
        # As for IPv4, binding filters received multicast; the kernel sources multicast
        # adverts from the interface's link-local address (RFC 5798 5.1.2.1).
        if cfg.src and cfg.unicast_peers:
            scope = ifx if ipaddress.IPv6Address(cfg.src).is_link_local else 0
            sock.bind((cfg.src, 0, 0, scope))
        elif cfg.src:
            # An in6_pktinfo on every send pins the source without filtering what we
            # receive (bind would). Left to itself the kernel may source adverts from a
            # link-local VIP once it is added, and the v3 checksum (pseudo-header over
            # src) then fails at every peer.
            pktinfo = socket.inet_pton(socket.AF_INET6, cfg.src) + _INT.pack(ifx)
            self._cmsg = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo)]
        if cfg.unicast_peers:
            self._dests = tuple(
                (p, 0, 0, ifx if ipaddress.IPv6Address(p).is_link_local else 0)
                for p in cfg.unicast_peers
            )
        else:
            mreq = socket.inet_pton(socket.AF_INET6, cfg.group) + _INT.pack(ifx)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            self._dests = ((cfg.group, 0, 0, ifx),)

    # -- send -------------------------------------------------------------------------

    def send(self, payload: bytes | bytearray | memoryview) -> int:
        """Send one VRRP message to the group or to every unicast peer; never blocks,
        never raises. Returns how many copies the kernel accepted."""
        sock = self._sock
        if sock is None:
            self.stats.send_errors += 1
            return 0
        ok = 0
        for dest in self._dests:
            try:
                if self._cmsg:
                    sock.sendmsg((payload,), self._cmsg, 0, dest)
                else:
                    sock.sendto(payload, dest)
            except BlockingIOError:
                self.stats.send_eagain += 1
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.stats.send_enobufs += 1
                else:
                    self.stats.send_errors += 1
                    log.warning(
                        "vrrp_socket send failed dev=%s dst=%s: %s",
                        self.config.ifname,
                        dest[0],
                        exc.strerror,
                    )
            else:
                ok += 1
        self.stats.sent += ok
        return ok

    # -- receive ----------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        if self.config.family == socket.AF_INET6:
            self._drain6(sock)
        else:
            self._drain4(sock)

    def _drain4(self, sock: socket.socket) -> None:
        buf, mv, ifx, cb = self._buf, self._mv, self.ifindex, self._on_packet
        for _ in range(_DRAIN_MAX):
            try:
                n = sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.stats.recv_errors += 1
                return
            ihl = (buf[0] & 0x0F) * 4
            if n < ihl or ihl < 20:
                self.stats.truncated += 1
                continue
            self.stats.received += 1
            # IPv4 raw sockets deliver the IP header: TTL at 8, src at 12, dst at 16.
            try:
                cb(
                    mv[ihl:n],
                    socket.inet_ntop(socket.AF_INET, mv[12:16]),
                    socket.inet_ntop(socket.AF_INET, mv[16:20]),
                    buf[8],
                    ifx,
                )
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.config.ifname)

    def _drain6(self, sock: socket.socket) -> None:
        bufs, anc, cb = [self._buf], self._anc, self._on_packet
        mv = self._mv
        for _ in range(_DRAIN_MAX):
            try:
                n, ancdata, flags, addr = sock.recvmsg_into(bufs, anc)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.stats.recv_errors += 1
                return
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self.stats.truncated += 1
                continue
            hops = -1
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
            self.stats.received += 1
            src = addr[0]
            if "%" in src:  # link-local sources come back as "fe80::1%eth0"
                src = src.partition("%")[0]
            try:
                cb(mv[:n], src, dst, hops, ifx)
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.config.ifname)

    # -- close ------------------------------------------------------------------------

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        log.info("vrrp_socket closed dev=%s", self.config.ifname)
