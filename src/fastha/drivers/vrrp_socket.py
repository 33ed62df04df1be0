"""Raw IPPROTO_VRRP (112) sockets, one per (interface, family), on the loop as readers.

uvloop's datagram endpoints reject raw sockets, so the fd is registered with
``loop.add_reader`` and drained in the callback. Sending is a plain non-blocking
``sendto`` called straight from the advert timer: it never awaits and never raises into
the loop; EAGAIN / ENOBUFS are counted (RFC 5798 §6.4.3: a lost advert is just a lost
advert, the next one is 1 interval away).

Receive hands the callback ``(payload, src, dst, ttl, ifindex)``. ``payload`` is a
memoryview of the VRRP message (IPv4 header stripped) over a buffer reused for the
next packet: valid during the callback only, copy it (``bytes(payload)``) to keep it.
A socket for keepalived's ``auth_type AH`` (protocol 51) hands over the whole IPv4
packet instead: the ICV covers the IP header.

IPv4 adverts can carry their own IP header (``hdrincl``), as keepalived's do: TOS
0xc0, an ID from the instance's counter, no DF (vrrp.c vrrp_build_ip4). ``send`` then
takes a ``frame(message, packed_dst)`` callback that builds each copy's packet.
The TTL / hop limit is reported so the protocol layer can drop anything not 255
(RFC 5798 §7.1 / RFC 3768 §7.1). An IPv6 packet whose hop limit the kernel did not
report (no IPV6_HOPLIMIT message) is reported with NO_HOPLIMIT, a value no check
accepts: the check fails closed (keepalived 2.2.7 skips it then, failing open).

Under a flood of hostile packets two things keep the advert timer on time:

- a classic BPF socket filter (SO_ATTACH_FILTER) passes only packets whose VRID some
  instance on the socket owns, so packets for other routers never wake the loop. Only
  the VRID is checked in the kernel: a packet for an owned VRID with a bad version or
  type still reaches its instance, which counts it under VERSION / TYPE (keepalived's
  invalid_type_rcvd is per instance, and the drop counters stay exact for every packet
  aimed at an instance). A packet too short to carry a VRID is dropped in the kernel too
  (the demultiplexer ignored it before, uncounted);
- the receive buffer is sized as keepalived's vrrp_rx_bufs_policy says (SO_RCVBUFFORCE
  as root, so a namespace's net.core.rmem_max does not cap it), else DEFAULT_RCVBUF.

And under real-time scheduling a receive budget (drivers/rxbudget) takes the socket off
the loop for the rest of a window once the window's receive work is spent, so the loop
blocks often enough for RLIMIT_RTTIME whatever arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastha.drivers import bpf
from fastha.drivers.rxbudget import RxBudget
from fastha.vrrp.rxbufs import RxBufs

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
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
IPPROTO_AH = 51
AH_LEN = 24
# keepalived's if_setsockopt_priority: IP_TOS / IPV6_TCLASS 0xc0 (internet control, CS6).
TOS_INTERNETCONTROL = 0xC0
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

# Largest VRRP message: 255 IPv6 addresses (16 B each) + header; round up to a jumbo.
_BUFSIZE = 9216
# Packets drained per wakeup: bounded so one flood cannot starve the timer reader.
_DRAIN_MAX = 64
# Times one timer deadline may stop a drain: its reader runs within that many wakeups
# when its fd is ready; past that (a deadline whose fd is not readable yet) the socket
# is drained anyway, so it can never starve.
_MAX_YIELDS = 3
_ANC_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)  # in6_pktinfo + hop limit
_INT = struct.Struct("=i")
# The hop limit reported when the kernel gave none: outside 0..255, so neither the
# multicast check (== 255) nor a unicast peer's min_ttl..max_ttl accepts it; -1 would
# mean "do not check" to the wire decoder.
NO_HOPLIMIT = 256
_monotonic_ns = time.monotonic_ns  # CLOCK_MONOTONIC, the PreciseTimer's clock
# Receive buffer asked for when global_defs sets no vrrp_rx_bufs_policy (keepalived then
# keeps the kernel's rmem_default, 208 KiB: ~100-250 hostile frames, a few ms of a
# 20k/s flood). The kernel doubles it for its bookkeeping: 1 MiB holds ~1,500 frames of
# the fuzz drill, 75 ms of a 20k/s flood, and bounds the queueing delay a good advert can
# see behind a full buffer to ~15 ms of decoding.
DEFAULT_RCVBUF = 1 << 20

# Classic BPF (linux/filter.h): the opcodes the VRID filter uses.

RecvCallback = Callable[[memoryview, str, str, int, int], None]
Framer = Callable[[bytes | bytearray | memoryview, bytes], bytes]


class DeadlineSource(Protocol):
    """What the drain needs of fastha.wire.timer.PreciseTimer."""

    @property
    def next_deadline_ns(self) -> int | None: ...


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
    rcvbuf: int = 0  # SO_RCVBUF for the socket; 0: from the instances' RxBufs, see rcvbuf_for
    proto: int = IPPROTO_VRRP  # IPPROTO_AH (IPv4) for keepalived's auth_type AH
    hdrincl: bool = False  # IPv4: send() builds the IP header (IP_HDRINCL), see Framer

    @property
    def group(self) -> str:
        if self.mcast_group:
            return self.mcast_group
        return VRRP_MCAST_GROUP6 if self.family == socket.AF_INET6 else VRRP_MCAST_GROUP4


def rcvbuf_for(shares: Mapping[int, RxBufs], mtu: int) -> int:
    """SO_RCVBUF for a socket shared by these instances (VRID -> share)."""
    total = sum(s.bytes_for(mtu) for s in shares.values())
    return total or DEFAULT_RCVBUF


def vrid_filter(family: int, vrids: Iterable[int], proto: int = IPPROTO_VRRP) -> bpf.Program:
    """Classic BPF program passing only VRRP packets whose VRID is in ``vrids``.

    An IPv4 raw socket's filter sees the IP header (the VRID is byte 1 after IHL x 4
    bytes, after the 24-byte AH header too for IPPROTO_AH); an IPv6 one sees the VRRP
    message only. A load past the end of the packet ends the program with 0: a packet
    too short to carry a VRID is dropped.
    """
    ids = sorted({int(v) for v in vrids})
    if any(not 0 <= v <= 255 for v in ids):
        raise ValueError(f"VRID out of range in {ids}")
    if family == socket.AF_INET6:
        prog = [(bpf.LD_B_ABS, 0, 0, 1)]
    else:
        skip = AH_LEN if proto == IPPROTO_AH else 0
        prog = [(bpf.LDX_B_MSH, 0, 0, 0), (bpf.LD_B_IND, 0, 0, skip + 1)]
    n = len(ids)
    # jeq i jumps over the n - 1 - i jeqs after it and the drop to the accept.
    prog += [(bpf.JEQ_K, n - i, 0, v) for i, v in enumerate(ids)]
    prog += [(bpf.RET_K, 0, 0, 0), (bpf.RET_K, 0, 0, 0xFFFFFFFF)]
    return prog


def set_rcvbuf(sock: socket.socket, size: int) -> int:
    """SO_RCVBUFFORCE (CAP_NET_ADMIN: not capped by net.core.rmem_max), else SO_RCVBUF.
    Returns what the kernel granted (it doubles the request for its bookkeeping)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def interface_mtu(ifname: str) -> int:
    try:
        with open(f"/sys/class/net/{ifname}/mtu") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 1500


@dataclass(slots=True)
class VrrpSocketStats:
    sent: int = 0
    send_eagain: int = 0
    send_enobufs: int = 0
    send_errors: int = 0
    received: int = 0
    recv_errors: int = 0
    truncated: int = 0
    no_pktinfo: int = 0  # IPv6 packets without their destination: dropped (fail closed)


class VrrpSocket:
    """One raw VRRP socket bound to one interface and family."""

    __slots__ = (
        "_anc",
        "_budget",
        "_buf",
        "_cmsg",
        "_dests",
        "_due",
        "_loop",
        "_mv",
        "_on_packet",
        "_packed",
        "_shares",
        "_sock",
        "_timer",
        "_yielded",
        "config",
        "ifindex",
        "rcvbuf",
        "stats",
    )

    def __init__(
        self,
        config: VrrpSocketConfig,
        on_packet: RecvCallback,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        vrids: Mapping[int, RxBufs] | None = None,
        timer: DeadlineSource | None = None,
        budget: RxBudget | None = None,
    ) -> None:
        """``vrids``: the VRIDs the instances on this socket own, each with its share of
        the receive buffer; the kernel then drops every other VRID (None: no filter).
        ``timer``: the advert timer; a drain that finds its deadline passed returns so
        the timer's reader runs first (see _drain4). ``budget``: the loop's receive
        budget, which registers the reader and may pause it (real-time scheduling)."""
        self.config = config
        self._budget = budget
        self._on_packet = on_packet
        self._loop = loop
        self._shares: dict[int, RxBufs] | None = None if vrids is None else dict(vrids)
        self._timer = timer
        self._due = 0  # the timer deadline _yielded counts for
        self._yielded = 0
        self.rcvbuf = 0  # what the kernel granted
        self._sock: socket.socket | None = None
        self._buf = bytearray(_BUFSIZE)
        self._mv = memoryview(self._buf)
        self._anc = _ANC_SIZE
        self._dests: tuple[tuple[object, ...], ...] = ()
        self._packed: tuple[bytes, ...] = ()  # each dest's packed address, for a Framer
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
        sock = socket.socket(cfg.family, socket.SOCK_RAW, cfg.proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, cfg.ifname.encode())
            self._apply(sock)
            if v6:
                self._setup6(sock)
            else:
                self._setup4(sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        if self._budget is not None:
            self._budget.add_reader(sock.fileno(), self._on_readable)
        else:
            loop.add_reader(sock.fileno(), self._on_readable)
        log.info(
            "vrrp_socket open dev=%s family=%s src=%s %s rcvbuf=%d vrids=%s",
            cfg.ifname,
            "inet6" if v6 else "inet",
            cfg.src or "-",
            f"unicast_peers={','.join(cfg.unicast_peers)}"
            if cfg.unicast_peers
            else f"group={cfg.group}",
            self.rcvbuf,
            ",".join(map(str, sorted(self._shares))) if self._shares is not None else "any",
        )

    @property
    def vrids(self) -> frozenset[int] | None:
        """The VRIDs the kernel filter passes (None: every VRID)."""
        return None if self._shares is None else frozenset(self._shares)

    def add_vrid(self, vrid: int, share: RxBufs | None = None) -> None:
        """Another instance on this (shared) socket: pass its VRID, grow the buffer."""
        if self._shares is None:
            return  # unfiltered: every VRID passes already
        self._shares[vrid] = share or RxBufs()
        if self._sock is not None:
            self._apply(self._sock)

    def remove_vrid(self, vrid: int) -> None:
        if self._shares is None or self._shares.pop(vrid, None) is None:
            return
        if self._sock is not None:
            self._apply(self._sock)

    def _apply(self, sock: socket.socket) -> None:
        """Receive buffer and VRID filter from the current instances."""
        cfg = self.config
        size = cfg.rcvbuf or rcvbuf_for(self._shares or {}, interface_mtu(cfg.ifname))
        self.rcvbuf = set_rcvbuf(sock, size)
        if self._shares is not None:
            bpf.attach_filter(sock, vrid_filter(cfg.family, self._shares, cfg.proto))

    def _setup4(self, sock: socket.socket) -> None:
        cfg = self.config
        # Only the groups this socket joined, not every group any socket on the host joined.
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, cfg.mcast_ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, cfg.unicast_ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_INTERNETCONTROL)
        if cfg.hdrincl:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
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
        self._packed = tuple(socket.inet_aton(str(d[0])) for d in self._dests)

    def _setup6(self, sock: socket.socket) -> None:
        cfg = self.config
        ifx = self.ifindex
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, cfg.mcast_ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, cfg.unicast_ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, TOS_INTERNETCONTROL)
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

    def send(self, payload: bytes | bytearray | memoryview, frame: Framer | None = None) -> int:
        """Send one VRRP message to the group or to every unicast peer; never blocks,
        never raises. Returns how many copies the kernel accepted.

        ``frame`` (an IP_HDRINCL socket): each copy is ``frame(payload, packed_dst)``."""
        sock = self._sock
        if sock is None:
            self.stats.send_errors += 1
            return 0
        ok = 0
        for i, dest in enumerate(self._dests):
            if frame is None:
                ok += self._send_to(sock, payload, dest, self._cmsg)
            else:
                ok += self._send_to(sock, frame(payload, self._packed[i]), dest, None)
        self.stats.sent += ok
        return ok

    def send_each(
        self, payloads: Sequence[bytes | bytearray | memoryview], frame: Framer | None = None
    ) -> int:
        """One message per destination, in ``unicast_peers`` order: a VRRPv3 message's
        checksum covers its destination address, so each peer gets its own bytes."""
        sock = self._sock
        if sock is None or len(payloads) != len(self._dests):
            self.stats.send_errors += 1
            return 0
        ok = 0
        for i, dest in enumerate(self._dests):
            if frame is None:
                ok += self._send_to(sock, payloads[i], dest, self._cmsg)
            else:
                ok += self._send_to(sock, frame(payloads[i], self._packed[i]), dest, None)
        self.stats.sent += ok
        return ok

    def _send_to(
        self,
        sock: socket.socket,
        payload: bytes | bytearray | memoryview,
        dest: tuple[object, ...],
        cmsg: list[tuple[int, int, bytes]] | None,
    ) -> int:
        try:
            if cmsg:
                sock.sendmsg((payload,), cmsg, 0, dest)
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
            return 1
        return 0

    # -- receive ----------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        due = 0
        timer = self._timer
        if timer is not None:
            due = timer.next_deadline_ns or 0
            if due != self._due:
                self._due, self._yielded = due, 0
            elif self._yielded >= _MAX_YIELDS:
                due = 0  # yielded enough for this deadline: drain
            if due and _monotonic_ns() >= due:
                # The timer is due but its reader has not run: it is later in this
                # epoll batch, or in the next one behind us (epoll hands a level-
                # triggered fd back first). Reading nothing lets it run first.
                self._yielded += 1
                return
        start = _monotonic_ns()
        if self.config.family == socket.AF_INET6:
            self._drain6(sock, due)
        else:
            self._drain4(sock, due)
        if self._budget is not None:
            self._budget.charge(start)

    def _drain4(self, sock: socket.socket, due: int) -> None:
        buf, mv, ifx, cb = self._buf, self._mv, self.ifindex, self._on_packet
        whole = self.config.proto == IPPROTO_AH  # the AH ICV covers the IP header
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
                    mv[:n] if whole else mv[ihl:n],
                    socket.inet_ntop(socket.AF_INET, mv[12:16]),
                    socket.inet_ntop(socket.AF_INET, mv[16:20]),
                    buf[8],
                    ifx,
                )
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.config.ifname)
            if due and _monotonic_ns() >= due:
                # An advert is due: stop here so the timer's reader runs (the socket
                # stays readable; the next wakeup goes on where this one stopped).
                self._yielded += 1
                return

    def _drain6(self, sock: socket.socket, due: int) -> None:
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
                self.stats.no_pktinfo += 1
                continue
            self.stats.received += 1
            src = addr[0]
            if "%" in src:  # link-local sources come back as "fe80::1%eth0"
                src = src.partition("%")[0]
            try:
                cb(mv[:n], src, dst, hops, ifx)
            except Exception:
                log.exception("vrrp_socket callback failed dev=%s", self.config.ifname)
            if due and _monotonic_ns() >= due:
                self._yielded += 1
                return

    # -- close ------------------------------------------------------------------------

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._budget is not None:
            self._budget.remove_reader(sock.fileno())
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        log.info("vrrp_socket closed dev=%s", self.config.ifname)
