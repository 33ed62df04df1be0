"""Every drop reason has a negative test; the fuzzer may only ever see DecodeError."""

from __future__ import annotations

import random
import socket

import pytest
from tests.support.wire_packets import ipv4_packet
from tests.support.wire_strategies import encode_with, random_spec

from fastha import wire
from fastha.bench import struct_codec
from fastha.wire import DecodeError, DropReason

SRC = socket.inet_aton("192.0.2.1")
DST = socket.inet_aton("224.0.0.18")
SRC6 = socket.inet_pton(socket.AF_INET6, "fe80::1")
DST6 = socket.inet_pton(socket.AF_INET6, "ff02::12")
VIPS = [socket.inet_aton("192.0.2.10"), socket.inet_aton("192.0.2.11")]
V2 = wire.encode_v2(51, 100, 1, VIPS, wire.AUTH_PASS, b"secret")
V3 = wire.encode_v3(51, 100, 100, VIPS, wire.AF_INET, SRC, DST)


def _reason(fn: object, *args: object) -> DropReason:
    with pytest.raises(DecodeError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.reason


def _recksum(msg: bytes) -> bytes:
    """Fix a v2 message's checksum after a deliberate edit (so only the edit is wrong)."""
    msg = msg[:6] + b"\x00\x00" + msg[8:]
    return msg[:6] + struct_codec.checksum(msg).to_bytes(2, "big") + msg[8:]


@pytest.mark.unit
def test_too_short() -> None:
    assert _reason(wire.decode, V2[:7], wire.AF_INET, SRC, DST, 255) is DropReason.TOO_SHORT
    assert _reason(wire.decode_ipv4, b"\x45" * 19) is DropReason.TOO_SHORT


@pytest.mark.unit
def test_length_count_implies_more() -> None:
    assert _reason(wire.decode, V2[:-1], wire.AF_INET, SRC, DST, 255) is DropReason.LENGTH
    assert _reason(wire.decode, V3[:-1], wire.AF_INET, SRC, DST, 255) is DropReason.LENGTH
    bumped = _recksum(V2[:3] + b"\x03" + V2[4:])
    assert _reason(wire.decode, bumped, wire.AF_INET, SRC, DST, 255) is DropReason.LENGTH


@pytest.mark.unit
def test_length_ip_total_length() -> None:
    pkt = bytearray(ipv4_packet(V2, SRC, DST))
    pkt[2:4] = (len(pkt) + 1).to_bytes(2, "big")
    assert _reason(wire.decode_ipv4, bytes(pkt)) is DropReason.LENGTH
    pkt[2:4] = (19).to_bytes(2, "big")
    assert _reason(wire.decode_ipv4, bytes(pkt)) is DropReason.LENGTH


@pytest.mark.unit
def test_ip_header() -> None:
    pkt = bytearray(ipv4_packet(V2, SRC, DST))
    pkt[0] = 0x65
    assert _reason(wire.decode_ipv4, bytes(pkt)) is DropReason.IP_HEADER
    pkt[0] = 0x44
    assert _reason(wire.decode_ipv4, bytes(pkt)) is DropReason.IP_HEADER


@pytest.mark.unit
def test_protocol() -> None:
    pkt = ipv4_packet(V2, SRC, DST, proto=51)
    assert _reason(wire.decode_ipv4, pkt) is DropReason.PROTOCOL


@pytest.mark.unit
def test_ttl() -> None:
    assert _reason(wire.decode_ipv4, ipv4_packet(V2, SRC, DST, ttl=254)) is DropReason.TTL
    msg6 = wire.encode_v3(1, 100, 100, [SRC6], wire.AF_INET6, SRC6, DST6)
    assert _reason(wire.decode, msg6, wire.AF_INET6, SRC6, DST6, 64) is DropReason.TTL
    assert wire.decode(msg6, wire.AF_INET6, SRC6, DST6, -1).ttl == -1  # -1: not checked


@pytest.mark.unit
def test_version() -> None:
    bad = _recksum(bytes([0x41]) + V2[1:])
    assert _reason(wire.decode, bad, wire.AF_INET, SRC, DST, 255) is DropReason.VERSION
    # VRRPv2 is IPv4 only (RFC 3768): a v2 message on an IPv6 socket is dropped.
    assert _reason(wire.decode, V2, wire.AF_INET6, SRC6, DST6, 255) is DropReason.VERSION
    a3 = wire.decode(V3, wire.AF_INET, SRC, DST, 255)
    assert wire.Expect(2, adver_int=1, addresses=VIPS).check(a3) == DropReason.VERSION


@pytest.mark.unit
def test_type() -> None:
    bad = _recksum(bytes([0x22]) + V2[1:])
    assert _reason(wire.decode, bad, wire.AF_INET, SRC, DST, 255) is DropReason.TYPE


@pytest.mark.unit
def test_checksum() -> None:
    for i in range(len(V2)):
        bad = V2[:i] + bytes([V2[i] ^ 0x01]) + V2[i + 1 :]
        assert _reason(wire.decode, bad, wire.AF_INET, SRC, DST, 255) in (
            DropReason.CHECKSUM,
            DropReason.VERSION,
            DropReason.TYPE,
            DropReason.LENGTH,
        )
    # v3 covers the pseudo-header: another source address breaks it.
    other = socket.inet_aton("192.0.2.2")
    assert _reason(wire.decode, V3, wire.AF_INET, other, DST, 255) is DropReason.CHECKSUM
    # ... unless the instance uses keepalived's v3_checksum_as_v2 (and vice versa).
    as_v2 = wire.encode_v3(51, 100, 100, VIPS, wire.AF_INET, None, None, checksum_as_v2=True)
    assert wire.decode(as_v2, wire.AF_INET, other, DST, 255, checksum_as_v2=True).checksum_as_v2
    assert _reason(wire.decode, as_v2, wire.AF_INET, SRC, DST, 255) is DropReason.CHECKSUM
    assert (
        _reason(wire.Expect(3, checksum_as_v2=True).decode, V3, wire.AF_INET, SRC, DST, 255)
        is DropReason.CHECKSUM
    )


def _v2(**kw: object) -> wire.Advert:
    args = {
        "vrid": 51,
        "priority": 100,
        "adver_int_s": 1,
        "addresses": VIPS,
        "auth_type": 1,
        "auth_data": b"secret",
    }
    args.update(kw)
    return wire.decode(wire.encode_v2(**args), wire.AF_INET, SRC, DST, 255)  # type: ignore[arg-type]


EXPECT_V2 = wire.Expect(2, wire.AUTH_PASS, b"secret", 1, VIPS)


@pytest.mark.unit
def test_expect_accepts() -> None:
    assert EXPECT_V2.check(_v2()) == wire.ACCEPTED
    assert EXPECT_V2.check(_v2(addresses=VIPS[::-1])) == wire.ACCEPTED  # order is free


@pytest.mark.unit
def test_auth_type() -> None:
    assert EXPECT_V2.check(_v2(auth_type=0, auth_data=b"")) == DropReason.AUTH_TYPE
    assert EXPECT_V2.check(_v2(auth_type=2)) == DropReason.AUTH_TYPE


@pytest.mark.unit
def test_auth_failure() -> None:
    assert EXPECT_V2.check(_v2(auth_data=b"secreT")) == DropReason.AUTH_FAILURE
    assert EXPECT_V2.check(_v2(auth_data=b"secret\x00x")) == DropReason.AUTH_FAILURE
    # keepalived truncates auth_pass to 8 characters.
    long_pw = wire.Expect(2, wire.AUTH_PASS, b"123456789", 1, VIPS)
    assert long_pw.check(_v2(auth_data=b"12345678")) == wire.ACCEPTED


@pytest.mark.unit
def test_address_count() -> None:
    assert EXPECT_V2.check(_v2(addresses=VIPS[:1])) == DropReason.ADDRESS_COUNT
    relaxed = wire.Expect(2, wire.AUTH_PASS, b"secret", 1, VIPS, check_addresses=False)
    assert relaxed.check(_v2(addresses=VIPS[:1])) == wire.ACCEPTED


@pytest.mark.unit
def test_address_list() -> None:
    other = [VIPS[0], socket.inet_aton("192.0.2.99")]
    assert EXPECT_V2.check(_v2(addresses=other)) == DropReason.ADDRESS_LIST


@pytest.mark.unit
def test_adver_int() -> None:
    assert EXPECT_V2.check(_v2(adver_int_s=2)) == DropReason.ADVER_INT
    # RFC 5798 6.4.2: a v3 backup adopts the master's interval instead of dropping.
    a3 = wire.decode(
        wire.encode_v3(51, 100, 250, VIPS, wire.AF_INET, SRC, DST), wire.AF_INET, SRC, DST, 255
    )
    assert wire.Expect(3, adver_int=100, addresses=VIPS).check(a3) == wire.ACCEPTED


@pytest.mark.unit
def test_every_reason_is_tested() -> None:
    names = {n.removeprefix("test_").upper() for n in globals() if n.startswith("test_")}
    covered = {"LENGTH"} | names
    missing = [r.name for r in DropReason if r.name not in covered]
    assert not missing, f"no negative test for {missing}"


def _mutate(rng: random.Random, b: bytes) -> bytes:
    buf = bytearray(b)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(4)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:
            buf = buf[: rng.randrange(len(buf) + 1)]
        elif op == 2:
            buf += rng.randbytes(rng.randrange(1, 40))
        elif buf:
            buf[rng.randrange(min(len(buf), 24))] ^= 1 << rng.randrange(8)
    return bytes(buf)


@pytest.mark.unit
def test_fuzz_decoders_only_raise_decode_error() -> None:
    rng = random.Random(3768)
    seeds: list[tuple[bytes, int, bytes, bytes]] = []
    for _ in range(200):
        s = random_spec(rng)
        msg = encode_with(wire, s)
        seeds.append((msg, s.family, s.src, s.dst))
        if s.family == socket.AF_INET:
            seeds.append((ipv4_packet(msg, s.src, s.dst), 0, s.src, s.dst))
    decoded = 0
    for i in range(120_000):
        if i % 4 == 0:
            buf, fam, src, dst = (
                rng.randbytes(rng.randrange(64)),
                rng.choice((wire.AF_INET, wire.AF_INET6, 0)),
                b"",
                b"",
            )
            src = dst = b"\x00" * (16 if fam == wire.AF_INET6 else 4)
        else:
            seed, fam, src, dst = rng.choice(seeds)
            buf = _mutate(rng, seed)
        try:
            if fam == 0:
                wire.decode_ipv4(buf, bool(i & 1))
            else:
                wire.decode(buf, fam, src, dst, rng.choice((255, -1, 1)), bool(i & 1))
            decoded += 1
        except DecodeError:
            pass
    assert decoded > 0  # the mutations leave some valid packets: the accept path is fuzzed too
