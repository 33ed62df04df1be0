"""Hostile VRRP traffic: malformed adverts built by hand, each labelled with the drop
reason a correct receiver must count it under, and a bounded AF_PACKET sender.

Every frame is a whole Ethernet frame to the VRRP group (01:00:5e:00:00:12, 224.0.0.18)
with a valid IPv4 header, so the kernel delivers it to the raw VRRP sockets and only
the VRRP layer can reject it. The labels are what RFC 3768 section 7.1 / RFC 5798
section 7.1 and keepalived's vrrp_check_packet say, in the wire layer's DropReason
names; ``None`` means "for a VRID no instance owns: counted by no instance".

Adverts that would be *valid* except for the one defect carry priority 254, above any
test master: if one slipped through, the master would step down and the test sees it.

    frames = hostile_frames(target, src_mac, src_ip, count_per_case=200, seed=1)
    write_frames(path, frames)
    # in the attacker namespace:
    python -m tests.support.flood send IFACE FILE --rate 1000
    python -m tests.support.flood blast IFACE FILE SECONDS   # as fast as it goes
"""

from __future__ import annotations

import os
import random
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastha.wire import encode_v2, encode_v3

GROUP4 = "224.0.0.18"
GROUP_MAC = bytes.fromhex("01005e000012")
HOSTILE_PRIORITY = 254


@dataclass(frozen=True, slots=True)
class Target:
    """The virtual router under attack, as its nodes are configured."""

    version: int  # 2 or 3
    vrid: int
    vips: tuple[str, ...]  # IPv4 addresses, no prefix
    advert_int: float  # seconds (v2 whole seconds; v3 centiseconds)
    auth_pass: str | None = None  # v2 PASS
    foreign_vrid: int = 0  # a VRID no instance owns (0: vrid + 1)

    @property
    def unowned(self) -> int:
        return self.foreign_vrid or (self.vrid % 255) + 1


@dataclass(frozen=True, slots=True)
class Hostile:
    case: str  # what is wrong, for messages
    reason: str | None  # DropReason name expected in the instance's counters
    frame: bytes


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_frame(
    src_mac: bytes, src_ip: str, payload: bytes, *, ttl: int = 255, dst_mac: bytes = GROUP_MAC
) -> bytes:
    """Ethernet + IPv4 (protocol 112, to 224.0.0.18) around a VRRP message; ``dst_mac``
    a node's own MAC aims the frame at that node only (its kernel still takes it: the
    group is joined)."""
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0x4000, ttl, 112, 0,
        socket.inet_aton(src_ip), socket.inet_aton(GROUP4),
    )  # fmt: skip
    hdr = hdr[:10] + struct.pack("!H", _ip_checksum(hdr)) + hdr[12:]
    return dst_mac + src_mac + b"\x08\x00" + hdr + payload


def _advert(
    t: Target,
    src_ip: str,
    *,
    version: int | None = None,
    vrid: int | None = None,
    vips: Sequence[str] | None = None,
    advert_int: float | None = None,
    auth: tuple[int, bytes] | None = None,
) -> bytes:
    """A well-formed advert (correct checksum) with the given fields changed."""
    version = version or t.version
    vrid = t.vrid if vrid is None else vrid
    addrs = [socket.inet_aton(a) for a in (t.vips if vips is None else vips)]
    adv = t.advert_int if advert_int is None else advert_int
    if version == 2:
        if auth is None:
            auth = (1, t.auth_pass.encode()) if t.auth_pass else (0, b"")
        return encode_v2(vrid, HOSTILE_PRIORITY, max(1, round(adv)), addrs, auth[0], auth[1])
    return encode_v3(
        vrid, HOSTILE_PRIORITY, max(1, round(adv * 100)), addrs, socket.AF_INET,
        socket.inet_aton(src_ip), socket.inet_aton(GROUP4),
    )  # fmt: skip


def _patch(msg: bytes, offset: int, value: bytes) -> bytes:
    return msg[:offset] + value + msg[offset + len(value) :]


def hostile_cases(
    t: Target, src_ip: str, rng: random.Random
) -> list[tuple[str, str | None, bytes, int]]:
    """(case, expected reason, VRRP message, IP TTL): one of each kind of defect.

    Called once per round so the random cases differ each time."""
    good = _advert(t, src_ip)
    other_vip = "198.18.0.250"
    cases: list[tuple[str, str | None, bytes, int]] = [
        ("ttl 64", "TTL", good, 64),
        ("ttl 1", "TTL", good, 1),
        ("bad checksum", "CHECKSUM", _patch(good, 6, bytes([good[6] ^ 0x5A, good[7] ^ 0xA5])), 255),
        ("vrid nobody owns", None, _advert(t, src_ip, vrid=t.unowned), 255),
        ("other version", "VERSION", _advert(t, src_ip, version=5 - t.version, auth=(0, b"")), 255),
        ("version nibble 1", "VERSION", _patch(good, 0, bytes([0x10 | (good[0] & 0x0F)])), 255),
        ("version nibble 15", "VERSION", _patch(good, 0, bytes([0xF0 | (good[0] & 0x0F)])), 255),
        ("type 2", "TYPE", _patch(good, 0, bytes([(good[0] & 0xF0) | 2])), 255),
        ("one address too many", "ADDRESS_COUNT", _advert(t, src_ip, vips=[*t.vips, other_vip]), 255),
        ("no address", "ADDRESS_COUNT", _advert(t, src_ip, vips=[]), 255),
        ("wrong address", "ADDRESS_LIST", _advert(t, src_ip, vips=[other_vip, *t.vips[1:]]), 255),
        ("truncated header", "TOO_SHORT", good[: rng.randint(2, 7)], 255),
        # The fixed header is there, the address list (and v2 auth data) is not.
        ("truncated addresses", "LENGTH", good[:8], 255),
        # Random bytes: the VRID byte aims them at the instance, the version nibble is
        # never 2 or 3; and fully random bytes for a VRID nobody owns.
        ("random bytes", "VERSION",
         bytes([rng.choice([0, 1, *range(4, 16)]) << 4 | rng.randrange(16), t.vrid])
         + rng.randbytes(rng.randint(6, 60)), 255),
        ("random bytes, unowned vrid", None,
         bytes([rng.randrange(256), t.unowned]) + rng.randbytes(rng.randint(6, 60)), 255),
    ]  # fmt: skip
    if t.version == 2:
        wrong_int = t.advert_int + 2
        cases.append(
            ("advert_int differs", "ADVER_INT", _advert(t, src_ip, advert_int=wrong_int), 255)
        )
        if t.auth_pass is not None:
            cases += [
                ("wrong password", "AUTH_FAILURE", _advert(t, src_ip, auth=(1, b"intruder")), 255),
                ("no authentication", "AUTH_TYPE", _advert(t, src_ip, auth=(0, b"")), 255),
                ("AH authentication", "AUTH_TYPE", _advert(t, src_ip, auth=(2, b"")), 255),
            ]
    return cases


def checksum_junk(
    t: Target, src_mac: bytes, src_ip: str, *, count: int = 256, dst_mac: bytes = GROUP_MAC
) -> list[Hostile]:
    """``count`` adverts for the attacked VRID, each valid but for its checksum (every
    one wrong differently): they pass the kernel's VRID filter and every header check,
    and only the checksum tells them from a priority-254 master's adverts."""
    good = _advert(t, src_ip)
    out = []
    for i in range(count):
        k = 1 + i % 0xFFFF
        bad = _patch(good, 6, bytes([good[6] ^ (k >> 8), good[7] ^ (k & 0xFF)]))
        frame = ipv4_frame(src_mac, src_ip, bad, dst_mac=dst_mac)
        out.append(Hostile("bad checksum", "CHECKSUM", frame))
    return out


def hostile_frames(
    t: Target, src_mac: bytes, src_ip: str, *, rounds: int, seed: int = 0
) -> list[Hostile]:
    """``rounds`` rounds of every case, interleaved (a round is one of each)."""
    rng = random.Random(seed)
    out = []
    for _ in range(rounds):
        for case, reason, msg, ttl in hostile_cases(t, src_ip, rng):
            out.append(Hostile(case, reason, ipv4_frame(src_mac, src_ip, msg, ttl=ttl)))
    return out


def write_frames(path: Path, frames: Sequence[Hostile]) -> None:
    with path.open("wb") as fh:
        for h in frames:
            fh.write(struct.pack("!H", len(h.frame)) + h.frame)


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!H", data, pos)
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def send(iface: str, path: Path, rate: float) -> int:
    """Send every frame of ``path`` on ``iface`` at ``rate`` frames/s (absolute schedule);
    prints the number sent. Short Ethernet frames are padded by the kernel/driver."""
    frames = read_frames(path)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    t0 = time.monotonic()
    sent = 0
    for i, f in enumerate(frames):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.send(f.ljust(60, b"\x00"))
        sent += 1
    print(sent, flush=True)
    return 0


def blast(iface: str, path: Path, seconds: float, rt_priority: int = 0) -> int:
    """Send the frames of ``path`` round and round on ``iface`` as fast as one CPU can,
    for ``seconds``; prints ``sent elapsed_s`` (the achieved rate is their ratio).

    ``rt_priority`` (SCHED_FIFO) stands for the attacker's own CPU: on a small test VM
    the flooder otherwise shares its cores with the real-time daemons it attacks, which
    then pace it. The kernel's RT throttling still leaves the other tasks 5%."""
    if rt_priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
    frames = [f.ljust(60, b"\x00") for f in read_frames(path)]
    frames *= max(1, 1024 // len(frames))  # the clock is read once per batch
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    send_one = s.send
    t0 = time.monotonic()
    end = t0 + seconds
    sent = 0
    while True:
        for f in frames:
            try:
                send_one(f)
            except OSError:  # EAGAIN / ENOBUFS: the queue is full, that is as fast as it goes
                continue
            sent += 1
        if time.monotonic() >= end:
            break
    print(sent, f"{time.monotonic() - t0:.3f}", flush=True)
    return 0


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 3 and argv[0] == "send":
        rate = float(argv[4]) if len(argv) >= 5 and argv[3] == "--rate" else 1000.0
        return send(argv[1], Path(argv[2]), rate)
    if len(argv) in (4, 6) and argv[0] == "blast":
        rt = int(argv[5]) if len(argv) == 6 and argv[4] == "--rt" else 0
        return blast(argv[1], Path(argv[2]), float(argv[3]), rt)
    print(
        "usage: python -m tests.support.flood send IFACE FILE [--rate N]\n"
        "       python -m tests.support.flood blast IFACE FILE SECONDS [--rt PRIO]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
