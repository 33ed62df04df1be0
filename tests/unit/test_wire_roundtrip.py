"""_wire round trips over the whole field space, checked against the struct oracle."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.wire_strategies import AdvertSpec, advert_specs, encode_with

from fastha import wire
from fastha.bench import struct_codec


def _decode(s: AdvertSpec, msg: bytes) -> wire.Advert:
    return wire.decode(msg, s.family, s.src, s.dst, 255, s.checksum_as_v2)


@pytest.mark.unit
@given(advert_specs())
def test_round_trip(s: AdvertSpec) -> None:
    msg = encode_with(wire, s)
    a = _decode(s, msg)
    assert (a.version, a.type, a.vrid, a.priority) == (s.version, 1, s.vrid, s.priority)
    assert a.count == len(s.addresses)
    assert a.addresses == s.addresses
    assert a.adver_int == s.adver_int
    assert a.family == s.family and a.src == s.src and a.dst == s.dst and a.ttl == 255
    if s.version == 2:
        assert a.auth_type == s.auth_type
        assert a.auth_data == s.auth_data.ljust(8, b"\x00")
        assert a.adver_int_cs == s.adver_int * 100
    else:
        assert a.auth_data == b"" and a.auth_type == 0
        assert a.checksum_as_v2 == s.checksum_as_v2
    assert a.checksum == int.from_bytes(msg[6:8], "big")


@pytest.mark.unit
@given(advert_specs())
def test_struct_oracle_agrees(s: AdvertSpec) -> None:
    ours = encode_with(wire, s)
    theirs = encode_with(struct_codec, s)
    assert ours == theirs
    a = _decode(s, theirs)
    m = struct_codec.decode(ours, s.family, s.src, s.dst, 255, s.checksum_as_v2)
    for field in (
        "version",
        "type",
        "vrid",
        "priority",
        "count",
        "auth_type",
        "adver_int",
        "checksum",
        "addresses",
        "auth_data",
    ):
        assert getattr(a, field) == getattr(m, field), field


@pytest.mark.unit
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_checksum_matches_oracle(data: bytes, seed: int) -> None:
    assert wire.checksum(data) == struct_codec.checksum(data)
    # A buffer carrying its own checksum sums to zero (RFC 1071 verification).
    body = data + b"\x00" * (len(data) % 2)
    ck = wire.checksum(body + b"\x00\x00")
    assert wire.checksum(body + ck.to_bytes(2, "big")) == 0


@pytest.mark.unit
@given(advert_specs(), st.lists(st.integers(0, 255), min_size=1, max_size=6))
def test_template_matches_full_encode(s: AdvertSpec, priorities: list[int]) -> None:
    t = wire.AdvertTemplate(
        s.version,
        s.vrid,
        s.priority,
        s.adver_int,
        s.addresses,
        s.family,
        s.src,
        s.dst,
        s.auth_type,
        s.auth_data,
        s.checksum_as_v2,
    )
    assert t.message == encode_with(wire, s)
    for p in priorities:
        pkt = t.packet(p)
        assert pkt == encode_with(struct_codec, AdvertSpec(**{**_fields(s), "priority": p}))
        assert t.packet(p) is pkt  # unchanged priority: no new object
        assert t.priority == p


def _fields(s: AdvertSpec) -> dict[str, object]:
    return {f: getattr(s, f) for f in AdvertSpec.__slots__}


@pytest.mark.unit
def test_decode_accepts_any_bytes_like() -> None:
    s = socket.inet_aton("10.0.0.2")
    msg = wire.encode_v2(7, 100, 1, [socket.inet_aton("10.0.0.1")])
    for buf in (msg, bytearray(msg), memoryview(msg)):
        assert wire.decode(buf, wire.AF_INET, s, None, 255).vrid == 7


@pytest.mark.unit
def test_decode_ipv4_honours_ihl_and_ignores_padding() -> None:
    src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("224.0.0.18")
    msg = wire.encode_v3(9, 200, 100, [socket.inet_aton("192.0.2.9")], wire.AF_INET, src, dst)
    opts = b"\x01\x01\x01\x00"  # NOP, NOP, NOP, EOL: IHL 6
    hdr = bytes([0x46, 0, 0, 24 + len(msg), 0, 0, 0, 0, 255, 112, 0, 0]) + src + dst + opts
    a = wire.decode_ipv4(hdr + msg + b"\x00" * 18)  # Ethernet minimum padding after it
    assert (a.vrid, a.priority, a.ttl, a.src, a.dst) == (9, 200, 255, src, dst)


@pytest.mark.unit
def test_encoder_rejects_out_of_range() -> None:
    a4 = [b"\x0a\x00\x00\x01"]
    with pytest.raises(ValueError):
        wire.encode_v2(256, 100, 1, a4)
    with pytest.raises(ValueError):
        wire.encode_v3(1, 100, 4096, a4, wire.AF_INET, a4[0], a4[0])
    with pytest.raises(ValueError):
        wire.encode_v2(1, 100, 1, [b"\x00" * 16])
    with pytest.raises(ValueError):
        wire.encode_v2(1, 100, 1, a4, 1, b"123456789")
    with pytest.raises(ValueError):
        wire.encode_v3(1, 100, 100, a4, wire.AF_INET, None, None)
