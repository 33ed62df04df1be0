"""Structure-aware VRRP packet fuzzing at volume: a million labelled frames from one
namespace, generated in chunks and sent on an AF_PACKET socket in a tight loop.

tests/support/flood.py holds the hand-made hostile cases (one of each defect, a few
thousand per run); this module mutates *at random within each case*, so a run covers
every TTL, version and type nibble, checksum value, truncation length, address count,
padding length, VRID and password, and adds random byte flips and random bytes. Every
frame is labelled by construction with the drop reason the attacked instance must count
it under (``None``: a VRID no instance owns, counted by nobody), exactly as flood.py
does; frames that would be valid apart from their defect carry priority 254 so an
accepted one shows up as a state change.

The sender builds BURST frames at a time and sends each at its slot of an absolute
schedule at ``--rate`` frames/s: memory stays bounded, bursts short, and the send loop
is a clock check and ``sock.send(frame)`` (building a frame costs ~6 us, sending ~2 us:
~100,000 frames/s from one core; the receivers, not the sender, set the pace).

    python -m tests.support.fuzzsend send IFACE TARGET_JSON --count 1000000 \
        --rate 20000 --seed 1
    # prints one JSON line: {"sent", "seconds", "rate", "expected": {reason: n},
    #                        "unowned", "cases": {case: n}}
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict

from fastha.wire import encode_v2, encode_v3
from tests.support.flood import HOSTILE_PRIORITY, Target, hostile_cases, ipv4_frame

BURST = 16
OTHER_VIP = socket.inet_aton("198.18.0.250")

# (case, expected reason or None, VRRP message, IP TTL)
Case = tuple[str, str | None, bytes, int]


def _cksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Mutator:
    """Random structure-aware defects around one target's valid advert."""

    def __init__(self, t: Target, src_ip: str, owned: Sequence[int], rng: random.Random):
        self.t, self.rng = t, rng
        self.src = socket.inet_aton(src_ip)
        self.dst = socket.inet_aton("224.0.0.18")
        self.src_ip = src_ip
        self.addrs = [socket.inet_aton(a) for a in t.vips]
        self.unowned = [v for v in range(1, 256) if v not in owned]
        self.good = self.advert()

    def advert(
        self,
        *,
        version: int | None = None,
        vrid: int | None = None,
        addrs: Sequence[bytes] | None = None,
        adver: int | None = None,
        auth: tuple[int, bytes] | None = None,
    ) -> bytes:
        t = self.t
        version = version or t.version
        vrid = t.vrid if vrid is None else vrid
        addrs = self.addrs if addrs is None else addrs
        if version == 2:
            if auth is None:
                auth = (1, t.auth_pass.encode()) if t.auth_pass else (0, b"")
            adv = max(1, round(t.advert_int)) if adver is None else adver
            return encode_v2(vrid, HOSTILE_PRIORITY, adv, addrs, auth[0], auth[1])
        adv = max(1, round(t.advert_int * 100)) if adver is None else adver
        return encode_v3(vrid, HOSTILE_PRIORITY, adv, addrs, socket.AF_INET, self.src, self.dst)

    def refix(self, msg: bytes) -> bytes:
        """Recompute the checksum after a field change (the defect is elsewhere)."""
        m = bytearray(msg)
        m[6:8] = b"\x00\x00"
        if self.t.version == 3:
            pseudo = self.src + self.dst + struct.pack("!BBH", 0, 112, len(m))
            ck = _cksum(pseudo + bytes(m))
        else:
            ck = _cksum(bytes(m))
        m[6:8] = struct.pack("!H", ck)
        return bytes(m)

    # -- the cases: each returns (case, reason, message, ttl) ----------------------------

    def ttl(self) -> Case:
        return ("ttl", "TTL", self.good, self.rng.randint(1, 254))

    def version_nibble(self) -> Case:
        v = self.rng.choice([0, 1, *range(4, 16)])
        g = self.good
        return ("version nibble", "VERSION", bytes([v << 4 | (g[0] & 0x0F)]) + g[1:], 255)

    def type_nibble(self) -> Case:
        ty = self.rng.choice([0, *range(2, 16)])
        g = self.good
        return ("type nibble", "TYPE", bytes([(g[0] & 0xF0) | ty]) + g[1:], 255)

    def checksum_value(self) -> Case:
        g = self.good
        ck = struct.unpack_from("!H", g, 6)[0]
        bad = self.rng.choice([x for x in (self.rng.randrange(65536),) if x != ck] or [ck ^ 1])
        return ("checksum value", "CHECKSUM", g[:6] + struct.pack("!H", bad) + g[8:], 255)

    def byte_flip(self) -> Case:
        """One byte after the checked header bytes changed: only the checksum catches it
        (a one's-complement sum detects every single-byte change)."""
        g = bytearray(self.good)
        i = self.rng.randrange(4, len(g))
        g[i] ^= self.rng.randint(1, 255)
        return ("byte flip", "CHECKSUM", bytes(g), 255)

    def truncated_header(self) -> Case:
        return ("truncated header", "TOO_SHORT", self.good[: self.rng.randint(2, 7)], 255)

    def truncated_body(self) -> Case:
        return (
            "truncated body",
            "LENGTH",
            self.good[: self.rng.randint(8, len(self.good) - 1)],
            255,
        )

    def count_too_big(self) -> Case:
        """The count byte claims more addresses than the packet carries."""
        g = self.good
        n = self.rng.randint(g[3] + 1, 255)
        return ("count beyond packet", "LENGTH", g[:3] + bytes([n]) + g[4:], 255)

    def address_count(self) -> Case:
        extra = [OTHER_VIP] * self.rng.randint(1, 20)
        addrs = self.rng.choice([[], [*self.addrs, *extra]])
        return ("address count", "ADDRESS_COUNT", self.advert(addrs=addrs), 255)

    def address_list(self) -> Case:
        wrong = struct.pack("!I", self.rng.randrange(1 << 32))
        if wrong in self.addrs:
            wrong = OTHER_VIP
        return ("address list", "ADDRESS_LIST", self.advert(addrs=[wrong, *self.addrs[1:]]), 255)

    def padded_bad_checksum(self) -> Case:
        """Padding is legal (RFC 5798 5.1: the packet holds *at least* the message); the
        checksum is the defect."""
        g = self.good
        pad = self.rng.randbytes(self.rng.randint(1, 1200))
        return ("padded, bad checksum", "CHECKSUM", g[:6] + bytes([g[6] ^ 0xFF]) + g[7:] + pad, 255)

    def padded_bad_version(self) -> Case:
        g = self.good
        pad = self.rng.randbytes(self.rng.randint(1, 1200))
        v = self.rng.choice([0, 1, *range(4, 16)])
        return ("padded, bad version", "VERSION", bytes([v << 4 | 1]) + g[1:] + pad, 255)

    def other_version(self) -> Case:
        return (
            "other valid version",
            "VERSION",
            self.advert(version=5 - self.t.version, auth=(0, b"")),
            255,
        )

    def unowned_vrid(self) -> Case:
        vrid = self.rng.choice(self.unowned)
        return ("unowned vrid", None, self.advert(vrid=vrid), 255)

    def random_bytes(self) -> Case:
        first = self.rng.choice([0, 1, *range(4, 16)]) << 4 | self.rng.randrange(16)
        body = self.rng.randbytes(self.rng.randint(6, 1400))  # >= 8 bytes: not TOO_SHORT
        return ("random bytes", "VERSION", bytes([first, self.t.vrid]) + body, 255)

    def random_bytes_unowned(self) -> Case:
        body = self.rng.randbytes(self.rng.randint(0, 1400))
        return ("random bytes, unowned vrid", None,
                bytes([self.rng.randrange(256), self.rng.choice(self.unowned)]) + body, 255)  # fmt: skip

    # v2 only
    def adver_int(self) -> Case:
        cur = max(1, round(self.t.advert_int))
        adv = self.rng.choice([x for x in range(0, 256) if x != cur])
        return ("advert_int differs", "ADVER_INT", self.advert(adver=adv), 255)

    def wrong_password(self) -> Case:
        pw = self.rng.randbytes(8)
        want = (self.t.auth_pass or "").encode().ljust(8, b"\x00")[:8]
        if pw == want:
            pw = b"intruder"
        return ("wrong password", "AUTH_FAILURE", self.advert(auth=(1, pw)), 255)

    def auth_type(self) -> Case:
        ty = self.rng.choice([0, *range(2, 256)])
        return ("auth type", "AUTH_TYPE", self.advert(auth=(ty, b"")), 255)

    def cases(self) -> list[Callable[[], Case]]:
        out = [
            self.ttl, self.version_nibble, self.type_nibble, self.checksum_value,
            self.byte_flip, self.truncated_header, self.truncated_body, self.count_too_big,
            self.address_count, self.address_list, self.padded_bad_checksum,
            self.padded_bad_version, self.other_version, self.unowned_vrid,
            self.random_bytes, self.random_bytes_unowned,
        ]  # fmt: skip
        if self.t.version == 2:
            out.append(self.adver_int)
            if self.t.auth_pass is not None:
                out += [self.wrong_password, self.auth_type]
        return out


def generate(
    t: Target, src_mac: bytes, src_ip: str, owned: Sequence[int], count: int, seed: int
) -> Iterator[tuple[str, str | None, bytes]]:
    """``count`` labelled Ethernet frames: (case, reason, frame). One in 16 rounds is a
    round of flood.py's hand-made cases; the rest pick a random mutation."""
    rng = random.Random(seed)
    mut = Mutator(t, src_ip, owned, rng)
    picks = mut.cases()
    made = 0
    while made < count:
        if made % 256 == 0:
            batch = hostile_cases(t, src_ip, rng)
        else:
            batch = [rng.choice(picks)() for _ in range(16)]
        for case, reason, msg, ttl in batch:
            if made >= count:
                return
            yield case, reason, ipv4_frame(src_mac, src_ip, msg, ttl=ttl).ljust(60, b"\x00")
            made += 1


def send(
    iface: str, t: Target, owned: Sequence[int], count: int, rate: float, seed: int
) -> dict[str, object]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    mac = s.getsockname()[4]
    src_ip = _iface_ipv4(iface)
    expected: Counter[str] = Counter()
    cases: Counter[str] = Counter()
    unowned = 0
    gen = generate(t, mac, src_ip, owned, count, seed)
    send_, clock, period = s.send, time.monotonic, 1.0 / rate
    sent = 0
    t0 = clock()
    # Generate a few frames, then send each at its slot on an absolute schedule: bursts
    # stay at most BURST frames long even when generation falls behind for a moment
    # (a burst of hundreds of large frames overflows a receiver's default socket
    # buffer, which would measure the buffer, not the receiver).
    while sent < count:
        chunk = []
        for case, reason, frame in gen:
            chunk.append(frame)
            cases[case] += 1
            if reason is None:
                unowned += 1
            else:
                expected[reason] += 1
            if len(chunk) >= BURST:
                break
        if not chunk:
            break
        for f in chunk:
            ahead = t0 + sent * period - clock()
            if ahead > 0.0002:
                time.sleep(ahead)
            while True:
                try:
                    send_(f)
                    break
                except BlockingIOError:  # never drop on our side: retry
                    time.sleep(0.0001)
            sent += 1
    secs = time.monotonic() - t0
    return {
        "sent": sent,
        "seconds": round(secs, 3),
        "rate": round(sent / secs, 1) if secs else 0.0,
        "expected": dict(expected),
        "unowned": unowned,
        "cases": dict(cases),
    }


def _iface_ipv4(iface: str) -> str:
    import fcntl

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", iface.encode()[:15])
        return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
    finally:
        s.close()


def main(argv: Sequence[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.support.fuzzsend")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("send")
    sp.add_argument("iface")
    sp.add_argument("target", help="JSON of flood.Target fields")
    sp.add_argument("--owned", default="", help="comma-separated VRIDs some instance owns")
    sp.add_argument("--count", type=int, default=100_000)
    sp.add_argument("--rate", type=float, default=20_000.0)
    sp.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    fields = json.loads(a.target)
    fields["vips"] = tuple(fields["vips"])
    t = Target(**fields)
    owned = [int(v) for v in a.owned.split(",") if v] or [t.vrid]
    print(json.dumps(send(a.iface, t, owned, a.count, a.rate, a.seed)), flush=True)
    return 0


def target_json(t: Target) -> str:
    return json.dumps(asdict(t))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
