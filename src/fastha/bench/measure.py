"""Capture analysis for the network benchmarks: pcap reading, frame classification,
failover latencies and advert intervals.

Pure functions over (timestamp, frame) pairs: no namespaces, no processes, so the
arithmetic is unit-testable and the same code reads a capture made by tcpdump in an
observer namespace (kernel receive timestamps, CLOCK_REALTIME, nanosecond precision
with ``--time-stamp-precision nano``). Timestamps of one capture are comparable with
each other, which is all a latency from one frame to another needs.
"""

from __future__ import annotations

import itertools
import math
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# pcap global header magics (host order as written; we accept both byte orders).
_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_IPV6 = 0x86DD
IPPROTO_VRRP = 112


def read_pcap(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(timestamp ns, frame) per record of a classic pcap file (Ethernet link type)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return
    for endian in ("<", ">"):
        magic = struct.unpack_from(endian + "I", data, 0)[0]
        if magic in (_MAGIC_US, _MAGIC_NS):
            break
    else:
        raise ValueError(f"{path}: not a classic pcap file (pcapng is not supported)")
    scale = 1 if magic == _MAGIC_NS else 1000
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
    rec = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > len(data):
            break  # a record cut short when tcpdump was stopped
        yield sec * 1_000_000_000 + frac * scale, data[pos : pos + incl]
        pos += incl


@dataclass(frozen=True, slots=True)
class Frame:
    """What the failover analysis needs from one frame."""

    ts_ns: int
    kind: str  # "vrrp", "garp", "arp_request", "arp_reply", "other"
    src_mac: str
    src_ip: str = ""  # IPv4 source (vrrp) or ARP sender protocol address
    dst_ip: str = ""  # IPv4 destination (vrrp) or ARP target protocol address
    vrid: int = -1
    priority: int = -1
    version: int = -1


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def classify(ts_ns: int, frame: bytes) -> Frame:
    """Classify an Ethernet frame: VRRP over IPv4, gratuitous ARP (sender == target
    protocol address, request or reply), other ARP requests and replies."""
    if len(frame) < 14:
        return Frame(ts_ns, "other", "")
    src_mac = _mac(frame[6:12])
    etype = int.from_bytes(frame[12:14], "big")
    off = 14
    if etype == ETH_P_8021Q and len(frame) >= 18:
        etype = int.from_bytes(frame[16:18], "big")
        off = 18
    if etype == ETH_P_ARP and len(frame) >= off + 28:
        a = frame[off : off + 28]
        op = int.from_bytes(a[6:8], "big")
        spa, tpa = socket.inet_ntoa(a[14:18]), socket.inet_ntoa(a[24:28])
        if spa == tpa and op in (1, 2):
            kind = "garp"
        else:
            kind = "arp_request" if op == 1 else "arp_reply" if op == 2 else "other"
        return Frame(ts_ns, kind, src_mac, spa, tpa)
    if etype == ETH_P_IP and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] == IPPROTO_VRRP and len(frame) >= off + ihl + 4:
            v = frame[off + ihl : off + ihl + 4]
            return Frame(
                ts_ns,
                "vrrp",
                src_mac,
                socket.inet_ntoa(frame[off + 12 : off + 16]),
                socket.inet_ntoa(frame[off + 16 : off + 20]),
                vrid=v[1],
                priority=v[2],
                version=v[0] >> 4,
            )
    return Frame(ts_ns, "other", src_mac)


def frames(path: str | Path) -> list[Frame]:
    return [classify(ts, f) for ts, f in read_pcap(path)]


# -- BFD (RFC 5880 section 4.1, RFC 5881/5883 ports) ---------------------------------------

BFD_PORTS = (3784, 4784)  # single hop, multihop
BFD_STATES = ("AdminDown", "Down", "Init", "Up")
BFD_DOWN, BFD_UP = 1, 3
BFD_DIAG_EXPIRED = 1  # Control Detection Time Expired


@dataclass(frozen=True, slots=True)
class BfdPacket:
    """What the BFD benchmark needs from one control packet on the wire: decoded here,
    independently of fastha's codec (the code under test)."""

    ts_ns: int
    src: str  # IP source address (v4 or v6)
    dst: str
    sport: int
    state: int  # 0 AdminDown, 1 Down, 2 Init, 3 Up
    diag: int
    poll: bool
    final: bool
    mult: int
    my_discr: int
    your_discr: int
    tx_us: int  # Desired Min TX Interval
    rx_us: int  # Required Min RX Interval


def bfd_packet(ts_ns: int, frame: bytes) -> BfdPacket | None:
    """The BFD control packet in an Ethernet frame (IPv4 or IPv6, UDP to 3784 or 4784),
    or None for anything else (including a packet too short for its header)."""
    if len(frame) < 14:
        return None
    etype, off = int.from_bytes(frame[12:14], "big"), 14
    if etype == ETH_P_8021Q and len(frame) >= 18:
        etype, off = int.from_bytes(frame[16:18], "big"), 18
    if etype == ETH_P_IP and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != socket.IPPROTO_UDP:
            return None
        src = socket.inet_ntoa(frame[off + 12 : off + 16])
        dst = socket.inet_ntoa(frame[off + 16 : off + 20])
        off += ihl
    elif etype == ETH_P_IPV6 and len(frame) >= off + 40:
        if frame[off + 6] != socket.IPPROTO_UDP:  # extension headers: not BFD's way
            return None
        src = socket.inet_ntop(socket.AF_INET6, frame[off + 8 : off + 24])
        dst = socket.inet_ntop(socket.AF_INET6, frame[off + 24 : off + 40])
        off += 40
    else:
        return None
    if len(frame) < off + 8 + 24:
        return None
    sport, dport = struct.unpack_from("!HH", frame, off)
    if dport not in BFD_PORTS:
        return None
    b = frame[off + 8 : off + 8 + 24]
    my, your, tx, rx = struct.unpack_from("!IIII", b, 4)
    return BfdPacket(
        ts_ns,
        src,
        dst,
        sport,
        state=b[1] >> 6,
        diag=b[0] & 0x1F,
        poll=bool(b[1] & 0x20),
        final=bool(b[1] & 0x10),
        mult=b[2],
        my_discr=my,
        your_discr=your,
        tx_us=tx,
        rx_us=rx,
    )


def bfd_packets(path: str | Path) -> list[BfdPacket]:
    return [p for ts, f in read_pcap(path) if (p := bfd_packet(ts, f)) is not None]


class PcapTail(Generic[T]):
    """Reads the records a running tcpdump (``-U``) has appended since the last call,
    so a benchmark analyses each trial while the capture goes on. A record cut short
    at the end of the file is left for the next call. ``parse`` turns each
    (timestamp, frame) into what ``read`` returns (``classify``; ``bfd_packet``)."""

    def __init__(
        self,
        path: str | Path,
        # a default cannot bind T to classify's Frame (mypy#3737): callers that
        # pass no parse annotate PcapTail[Frame]
        parse: Callable[[int, bytes], T] = classify,  # type: ignore[assignment]
    ) -> None:
        self.path = Path(path)
        self.parse = parse
        self._pos = 0
        self._rec: struct.Struct | None = None
        self._scale = 1

    def _header(self, data: bytes) -> bool:
        if len(data) < 24:
            return False
        for endian in ("<", ">"):
            magic = struct.unpack_from(endian + "I", data, 0)[0]
            if magic in (_MAGIC_US, _MAGIC_NS):
                break
        else:
            raise ValueError(f"{self.path}: not a classic pcap file")
        if struct.unpack_from(endian + "I", data, 20)[0] != _LINKTYPE_ETHERNET:
            raise ValueError(f"{self.path}: not an Ethernet capture")
        self._scale = 1 if magic == _MAGIC_NS else 1000
        self._rec = struct.Struct(endian + "IIII")
        return True

    def read(self) -> list[T]:
        """The frames appended since the previous call, parsed."""
        try:
            with self.path.open("rb") as fh:
                if self._rec is None:
                    if not self._header(fh.read(24)):
                        return []
                    self._pos = 24
                fh.seek(self._pos)
                data = fh.read()
        except FileNotFoundError:
            return []
        rec, out, pos = self._rec, [], 0
        assert rec is not None
        while pos + 16 <= len(data):
            sec, frac, incl, _orig = rec.unpack_from(data, pos)
            if pos + 16 + incl > len(data):
                break
            out.append(
                self.parse(
                    sec * 1_000_000_000 + frac * self._scale, data[pos + 16 : pos + 16 + incl]
                )
            )
            pos += 16 + incl
        self._pos += pos
        return out


# -- statistics -------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[rank])


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, mean, p50, p99, p99.9, max, min of the values."""
    v = sorted(values)
    return {
        "n": len(v),
        "mean": sum(v) / len(v) if v else math.nan,
        "p50": percentile(v, 50),
        "p99": percentile(v, 99),
        "p99.9": percentile(v, 99.9),
        "max": v[-1] if v else math.nan,
        "min": v[0] if v else math.nan,
    }


# -- VRRP timing (RFC 5798 section 6.1 / 8.3.2) -----------------------------------------


def skew_time_s(priority: int, advert_int_s: float) -> float:
    """RFC 5798: ((256 - priority) * Master_Adver_Interval) / 256."""
    return (256 - priority) * advert_int_s / 256


def master_down_s(priority: int, advert_int_s: float) -> float:
    """RFC 5798: 3 * Master_Adver_Interval + Skew_Time."""
    return 3 * advert_int_s + skew_time_s(priority, advert_int_s)


BACKUP_PRIORITY = 100  # the advert benches' bound is the one a priority-100 backup applies


def backup_bound_ms(advert_int_s: float) -> float:
    """The longest advert gap a priority-100 backup tolerates (its master_down_interval),
    in ms: the bound the advert benches count intervals over."""
    return master_down_s(BACKUP_PRIORITY, advert_int_s) * 1000


# -- failover -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failover:
    """Latencies (ms) of one failover; None when the event was not seen in the capture."""

    origin_ns: int | None  # the master's last advert (kill) or its priority-0 advert
    advert_ms: float | None  # -> the backup's first advert
    garp_ms: float | None  # -> the backup's first gratuitous ARP for the VIP
    reply_ms: float | None  # -> the backup's first ARP reply to the observer's probe
    problem: str = ""

    @property
    def advert_garp_ms(self) -> float | None:
        """The backup's first advert -> its first gratuitous ARP (the VIP's takeover)."""
        return _after(self.advert_ms, self.garp_ms)

    @property
    def advert_reply_ms(self) -> float | None:
        """The backup's first advert -> its first ARP reply for the VIP: the VIP answering,
        within one probe interval (the reply answers the first probe after it)."""
        return _after(self.advert_ms, self.reply_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "advert_ms": self.advert_ms,
            "garp_ms": self.garp_ms,
            "reply_ms": self.reply_ms,
            "advert_garp_ms": self.advert_garp_ms,
            "advert_reply_ms": self.advert_reply_ms,
            "problem": self.problem,
        }


def _after(first: float | None, then: float | None) -> float | None:
    return None if first is None or then is None else then - first


def failover(
    window: Sequence[Frame],
    *,
    master_ip: str,
    backup_ip: str,
    backup_mac: str,
    vip: str,
    vrid: int,
    priority_zero: bool,
    event_ns: int,
) -> Failover:
    """One failover inside ``window`` (frames of one trial, in capture order).

    ``event_ns`` is when the orchestrator signalled the master (same clock as the
    capture); the backup's first advert is the first one after it. The origin is the
    master's priority-0 advert (``priority_zero``) or else its last advert before the
    backup's first one. The ARP reply must come from the backup's MAC: after kill -9
    the dead master's kernel still holds the VIP and answers for it too.
    """

    def ms(a: int, b: int) -> float:
        return (b - a) / 1e6

    b_first = next(
        (
            f
            for f in window
            if f.kind == "vrrp" and f.vrid == vrid and f.src_ip == backup_ip and f.ts_ns >= event_ns
        ),
        None,
    )
    if b_first is None:
        return Failover(None, None, None, None, "no advert from the backup after the event")
    m_adverts = [
        f
        for f in window
        if f.kind == "vrrp"
        and f.vrid == vrid
        and f.src_ip == master_ip
        and f.ts_ns <= b_first.ts_ns
    ]
    if priority_zero:
        zero = [f for f in m_adverts if f.priority == 0]
        if not zero:
            return Failover(None, None, None, None, "no priority-0 advert from the master")
        origin = zero[0].ts_ns
    else:
        live = [f for f in m_adverts if f.priority > 0]
        if not live:
            return Failover(None, None, None, None, "no advert from the master before takeover")
        origin = live[-1].ts_ns

    def ms_to_first_arp(kind: str) -> float | None:
        """ms from the origin to the backup's first ARP frame of ``kind`` for the VIP."""
        arp = next(
            (
                f
                for f in window
                if f.kind == kind
                and f.src_mac == backup_mac
                and f.src_ip == vip
                and f.ts_ns >= origin
            ),
            None,
        )
        return None if arp is None else ms(origin, arp.ts_ns)

    return Failover(
        origin,
        ms(origin, b_first.ts_ns),
        ms_to_first_arp("garp"),
        ms_to_first_arp("arp_reply"),
    )


def advert_intervals_ms(window: Iterable[Frame], src_ip: str, vrid: int) -> list[float]:
    """Intervals (ms) between consecutive adverts of one sender and VRID."""
    ts = [f.ts_ns for f in window if f.kind == "vrrp" and f.vrid == vrid and f.src_ip == src_ip]
    return [(b - a) / 1e6 for a, b in itertools.pairwise(ts)]


def advert_times_ns(window: Iterable[Frame], src_ip: str, vrid: int) -> list[int]:
    return [f.ts_ns for f in window if f.kind == "vrrp" and f.vrid == vrid and f.src_ip == src_ip]


def grid_lateness_us(ts_ns: Sequence[int], nominal_ms: float) -> list[float]:
    """Lateness (µs) of each advert of one sender against its own fixed schedule.

    The schedule is the line t = t0 + k * period fitted to the adverts: slots k from
    (t - t0) / period (a lost advert leaves its slot empty and does not shift the
    others), period refitted as a median of slopes, so a sender whose clock or period
    differs from nominal is not "late" for that (``interval_figures`` reports the
    mean-interval error). Its phase is the earliest advert, so the most punctual one is on time (0) and
    the rest are >= 0. A sender that schedules each advert from the previous one (not
    from a grid) wanders from any line: that wander shows here as lateness, which is the
    point.

    The fit grows from the first adverts outwards (64, 128, ... all): a period taken
    from the median gap alone is off by a few µs when the gaps are skewed (most a hair
    short, a few late), and over thousands of slots that error wraps a whole period, so
    slots would be misassigned and every advert look late by a sawtooth."""
    if len(ts_ns) < 3:
        return []
    t0 = ts_ns[0]
    rel = [t - t0 for t in ts_ns]
    gaps = sorted(b - a for a, b in itertools.pairwise(ts_ns))
    period = gaps[len(gaps) // 2] or nominal_ms * 1e6
    base, early = 0.0, 0.5  # first pass: nearest slot
    n = min(len(rel), 64)
    passes_at_full = 0
    slots: list[int] = []
    while passes_at_full < 3:
        head = rel[:n]
        # Adverts are never early on a grid sender; one more than half a period late
        # still belongs to its own slot, not the next (after the first pass: up to
        # 3/4 of a period late, 1/4 early, around the median phase).
        # No "strictly increasing" fix-up: one misplaced advert would push every
        # later one a slot on.
        slots = [math.floor((r - base) / period + early) for r in head]
        # Period: the median slope between adverts half the window apart (Theil-Sen),
        # not least squares: a few very late adverts would tilt a least-squares line
        # by µs per slot, and a skewed one by a slot over thousands.
        h = n // 2
        slopes = sorted(
            (head[i + h] - head[i]) / (slots[i + h] - slots[i])
            for i in range(n - h)
            if slots[i + h] != slots[i]
        )
        if slopes:
            period = slopes[len(slopes) // 2]
            offs = sorted(r - k * period for r, k in zip(head, slots, strict=True))
            base, early = offs[len(offs) // 2], 0.25
        if n == len(rel):
            passes_at_full += 1
        n = min(len(rel), 2 * n)
    off = [r - k * period for r, k in zip(rel, slots, strict=True)]
    phase = min(off)
    return [(o - phase) / 1000 for o in off]


def interval_figures(intervals_ms: Sequence[float], nominal_ms: float) -> dict[str, Any]:
    """Mean interval, its error against nominal, and |interval - nominal| percentiles.

    The mean is (last - first) / intervals, so jitter averages out and drift shows;
    the per-slot mean divides by grid slots instead, so a lost advert is not drift."""
    if not intervals_ms:
        return {"n": 0}
    mean = sum(intervals_ms) / len(intervals_ms)
    # Per grid slot: span / slots, so a lost advert (or a late one followed by the
    # on-grid next) is not counted as drift.
    total = sum(intervals_ms)
    per_slot = total / max(1, round(total / nominal_ms))
    dev = summary(abs(x - nominal_ms) for x in intervals_ms)
    return {
        "n": len(intervals_ms),
        "nominal_ms": nominal_ms,
        "mean_ms": mean,
        "mean_error_pct": (mean - nominal_ms) / nominal_ms * 100,
        "mean_per_slot_ms": per_slot,
        "slot_error_pct": (per_slot - nominal_ms) / nominal_ms * 100,
        "deviation_us": {k: (v * 1000 if k != "n" else v) for k, v in dev.items()},
        # Adverts that never came: an interval of at least 1.5 nominal.
        "missing": sum(
            max(0, round(x / nominal_ms) - 1) for x in intervals_ms if x >= 1.5 * nominal_ms
        ),
    }
