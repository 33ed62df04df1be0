"""Raw IPPROTO_VRRP (112) sockets, one per (interface, family), on the loop as readers.

uvloop's datagram endpoints reject raw sockets, so the fd is registered with
``loop.add_reader`` and drained in the callback. Sending is a plain non-blocking
``sendto`` called straight from the advert timer: it never awaits and never raises into
the loop; a refused copy is counted (EAGAIN, ENOBUFS, other errors: RFC 5798 §6.4.3, a
lost advert is just a lost advert, the next one is 1 interval away) and reported to
the ``report`` its sender gave (``SendReport``: the instance, which logs it in
keepalived's words), or logged here for a send without one.

Receive hands the callback ``(payload, src, dst, ttl, ifindex)``. ``payload`` is a
memoryview of the VRRP message (IPv4 header stripped) over a buffer reused for the
next packet: valid during the callback only, copy it (``bytes(payload)``) to keep it.
A socket for keepalived's ``auth_type AH`` (protocol 51) hands over the whole IPv4
packet instead: the ICV covers the IP header.

Sending queues each copy on the socket's ``_wire.TxQueue``: inside a dispatch pass of the
precise timer (an advert sent from its timer callback) the copies wait for the end of
the pass and every advert due in that tick leaves in one ``sendmmsg``; outside a pass
(an advert answering one received, a priority 0 on stop) they leave at once.

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
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastha.drivers import bpf, rxbudget
from fastha.drivers.rxbudget import RxBudget
from fastha.drivers.vrrp_recv import _DRAIN_MAX as _DRAIN_MAX  # re-exported
from fastha.drivers.vrrp_recv import NO_HOPLIMIT as NO_HOPLIMIT  # re-exported
from fastha.drivers.vrrp_recv import Receiver, _monotonic_ns
from fastha.drivers.vrrp_recv import RecvCallback as RecvCallback  # re-exported
from fastha.drivers.vrrp_sockopts import IPV6_RECVHOPLIMIT as IPV6_RECVHOPLIMIT  # re-exported
from fastha.drivers.vrrp_sockopts import IPV6_RECVPKTINFO as IPV6_RECVPKTINFO  # re-exported
from fastha.drivers.vrrp_sockopts import setup4, setup6
from fastha.vrrp.rxbufs import RxBufs
from fastha.wire import TxQueue
from fastha.wire.timer import PreciseTimer

log = logging.getLogger(__name__)

IPPROTO_VRRP = 112
VRRP_MCAST_GROUP4 = "224.0.0.18"
VRRP_MCAST_GROUP6 = "ff02::12"

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)  # Linux; the module may lack it
IPPROTO_AH = 51
AH_LEN = 24
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
# Times one timer deadline may stop a drain: its reader runs within that many wakeups
# when its fd is ready; past that (a deadline whose fd is not readable yet) the socket
# is drained anyway, so it can never starve.
_MAX_YIELDS = 3
# Receive buffer asked for when global_defs sets no vrrp_rx_bufs_policy (keepalived then
# keeps the kernel's rmem_default, 208 KiB: ~100-250 hostile frames, a few ms of a
# 20k/s flood). The kernel doubles it for its bookkeeping: 1 MiB holds ~1,500 frames of
# the fuzz drill, 75 ms of a 20k/s flood, and bounds the queueing delay a good advert can
# see behind a full buffer to ~15 ms of decoding.
DEFAULT_RCVBUF = 1 << 20

# Classic BPF (linux/filter.h): the opcodes the VRID filter uses.

Framer = Callable[[bytes | bytearray | memoryview, bytes], bytes]
# Whose a queued copy is: called with (errno, destination address) when the kernel
# refuses the copy. A socket is shared by instances and a send batch mixes their adverts.
SendReport = Callable[[int, str], None]


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
    received: int = 0
    recv_errors: int = 0
    truncated: int = 0
    no_pktinfo: int = 0  # IPv6 packets without their destination: dropped (fail closed)
    unsent: int = 0  # sends while the socket was closed, or to no destination
    tx: TxQueue | None = None  # the send counters' source while the socket is open

    @property
    def sent(self) -> int:
        return self.tx.sent if self.tx is not None else 0

    @property
    def send_eagain(self) -> int:
        return self.tx.eagain if self.tx is not None else 0

    @property
    def send_enobufs(self) -> int:
        return self.tx.enobufs if self.tx is not None else 0

    @property
    def send_errors(self) -> int:
        return self.unsent + (self.tx.errors if self.tx is not None else 0)


def sockaddr(family: int, dest: tuple[object, ...]) -> bytes:
    """``dest`` (a ``sendto`` address tuple) as a packed ``struct sockaddr_in`` /
    ``sockaddr_in6`` for ``sendmmsg``."""
    packed = socket.inet_pton(family, str(dest[0]))
    p = dest[1] if len(dest) > 1 else 0
    port = struct.pack("!H", p if isinstance(p, int) else 0)
    if family == socket.AF_INET6:
        scope = dest[3] if len(dest) > 3 else 0
        scope = scope if isinstance(scope, int) else 0
        return struct.pack("=H2sI16sI", family, port, 0, packed, scope)
    return struct.pack("=H2s4s8x", family, port, packed)


def control(cmsg: list[tuple[int, int, bytes]]) -> bytes:
    """Ancillary data (``sendmsg``'s list) as one packed cmsg buffer."""
    out = b""
    for level, kind, data in cmsg:
        head = struct.pack("@Nii", socket.CMSG_LEN(len(data)), level, kind)
        out += (head + data).ljust(socket.CMSG_SPACE(len(data)), b"\0")
    return out


class VrrpSocket:
    """One raw VRRP socket bound to one interface and family."""

    __slots__ = (
        "_budget",
        "_cmsg",
        "_dests",
        "_due",
        "_loop",
        "_on_packet",
        "_packed",
        "_rx",
        "_shares",
        "_sock",
        "_timer",
        "_tx",
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
        the timer's reader runs first (see vrrp_recv). ``budget``: the loop's receive
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
        self._rx: Receiver | None = None  # set by open(), once the ifindex is known
        self._dests: tuple[tuple[object, ...], ...] = ()
        self._packed: tuple[bytes, ...] = ()  # each dest's packed address, for a Framer
        self._cmsg: list[tuple[int, int, bytes]] = []
        self._tx: TxQueue | None = None
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
        # keepalived's AH: the ICV covers the IP header, so the whole packet is handed over
        whole = cfg.proto == IPPROTO_AH
        self._rx = Receiver(self._on_packet, self.stats, cfg.ifname, self.ifindex, whole=whole)
        v6 = cfg.family == socket.AF_INET6
        sock = socket.socket(cfg.family, socket.SOCK_RAW, cfg.proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, cfg.ifname.encode())
            self._apply(sock)
            d = (setup6 if v6 else setup4)(sock, cfg, self.ifindex)
            self._dests, self._packed, self._cmsg = d.dests, d.packed, d.cmsg or []
            tx = TxQueue(
                sock.fileno(),
                [sockaddr(cfg.family, dest) for dest in self._dests],
                control(self._cmsg),
                self._send_failed,
            )
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._tx = self.stats.tx = tx
        if isinstance(self._timer, PreciseTimer):
            self._timer.add_tx(tx)
        rxbudget.add_reader(self._budget, loop, sock.fileno(), self._on_readable)
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

    # -- send -------------------------------------------------------------------------

    def send(
        self,
        payload: bytes | bytearray | memoryview,
        frame: Framer | None = None,
        report: SendReport | None = None,
    ) -> int:
        """Send one VRRP message to the group or to every unicast peer; never blocks,
        never raises. Returns how many copies left now (0 while they wait in the
        timer pass's batch).

        ``frame`` (an IP_HDRINCL socket): each copy is ``frame(payload, packed_dst)``.
        ``report``: told of each copy the kernel refuses (else it is logged here)."""
        tx = self._tx
        if tx is None:
            self.stats.unsent += 1
            return 0
        msg = payload if type(payload) is bytes else bytes(payload)
        for i in range(len(self._dests)):
            tx.add(msg if frame is None else frame(msg, self._packed[i]), i, report)
        return self._flush(tx)

    def send_each(
        self,
        payloads: Sequence[bytes | bytearray | memoryview],
        frame: Framer | None = None,
        report: SendReport | None = None,
    ) -> int:
        """One message per destination, in ``unicast_peers`` order: a VRRPv3 message's
        checksum covers its destination address, so each peer gets its own bytes."""
        tx = self._tx
        if tx is None or len(payloads) != len(self._dests):
            self.stats.unsent += 1
            return 0
        for i, payload in enumerate(payloads):
            msg = payload if type(payload) is bytes else bytes(payload)
            tx.add(msg if frame is None else frame(msg, self._packed[i]), i, report)
        return self._flush(tx)

    def _flush(self, tx: TxQueue) -> int:
        return 0 if tx.in_pass else tx.flush()  # in a pass: it flushes when it ends

    @property
    def tx(self) -> TxQueue | None:
        """The send queue while open: a ``_wire.AdvertTx`` queues on it directly."""
        return self._tx

    @property
    def packed_dests(self) -> tuple[bytes, ...]:
        """Each destination's packed address, in the queue's order (IPv4)."""
        return self._packed

    def _send_failed(self, err: int, dest: int, report: SendReport | None) -> None:
        """A copy the kernel refused (counted by the queue): to whoever sent it."""
        dst = str(self._dests[dest][0])
        if report is not None:
            report(err, dst)
            return
        log.warning(
            "vrrp_socket send failed dev=%s dst=%s: %s",
            self.config.ifname,
            dst,
            os.strerror(err),
        )

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
        assert self._rx is not None
        if self.config.family == socket.AF_INET6:
            stopped = self._rx.drain6(sock, due)
        else:
            stopped = self._rx.drain4(sock, due)
        if stopped:  # for the timer's deadline
            self._yielded += 1
        if self._budget is not None:
            self._budget.charge(start)

    # -- close ------------------------------------------------------------------------

    def close(self) -> None:
        sock, self._sock = self._sock, None
        tx, self._tx = self._tx, None
        if tx is not None:
            tx.flush()  # what a pass queued before the close (a priority 0 advert)
            tx.close()
            if isinstance(self._timer, PreciseTimer):
                self._timer.remove_tx(tx)
        if sock is not None:
            rxbudget.close_reader(self._budget, self._loop, sock)
            log.info("vrrp_socket closed dev=%s", self.config.ifname)
