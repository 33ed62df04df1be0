"""keepalived's IPv4 advert header and IPsec-AH: a packet keepalived 2.2.7 sent (golden),
an independent struct + hmac oracle, and every field the ICV must or must not cover."""

from __future__ import annotations

import hmac
import socket
import struct

import pytest

from fastha import wire
from fastha.drivers.vrrp_socket import IPPROTO_AH, vrid_filter
from fastha.wire import DecodeError, DropReason

pytestmark = pytest.mark.unit

SRC = socket.inet_aton("198.18.0.11")
GROUP = socket.inet_aton("224.0.0.18")
PEER = socket.inet_aton("198.18.0.12")
VIP = socket.inet_aton("198.18.0.100")
# keepalived 2.2.7, `auth_type AH`, `auth_pass secret`, priority 150, VRID 51, its first
# advert (IP ID 1, sequence number 1), as captured on the wire; bytes 10-11 are the IP
# header checksum, which the kernel fills in.
KEEPALIVED = bytes.fromhex(
    "45c0004000010000ff33149ac612000be000001270040000c612000b00000001"
    "0687394daae9196d003fc9c32133960102018053c61200640000000000000000"
)


def oracle(message: bytes, ident: int, ttl: int, src: bytes, dst: bytes, key: bytes,
           seq: int, unicast: bool) -> bytes:  # fmt: skip
    """RFC 2402 as keepalived's vrrp_update_pkt does it, written with struct and hmac."""
    total = 20 + 24 + len(message)
    zeroed = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0, 0 if unicast else ttl,
                         51, 0, src, dst)  # fmt: skip
    ah = struct.pack("!BBHI", 112, 4, 0, int.from_bytes(src, "big")) + struct.pack("!I", seq)
    k = key[:8].ljust(8, b"\0")
    icv = hmac.new(k, zeroed + ah + bytes(12) + message, "md5").digest()[:12]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, total, ident, 0, ttl, 51, 0, src, dst)
    return header + ah + icv + message


def _msg(prio: int = 150) -> bytes:
    return wire.encode_v2(51, prio, 1, [VIP], wire.AUTH_AH)


def _no_csum(p: bytes) -> bytes:
    return p[:10] + p[12:]


def test_keepalived_golden_packet() -> None:
    key = wire.AhKey(b"secret")
    ours = wire.encode_ipv4(_msg(), 1, 255, SRC, GROUP, key, 1)
    assert _no_csum(ours) == _no_csum(KEEPALIVED)
    assert key.verify(KEEPALIVED)
    assert not wire.AhKey(b"secreT").verify(KEEPALIVED)
    a = wire.decode_ipv4(KEEPALIVED)
    assert (a.ah, a.ah_spi, a.ah_seq) == (True, int.from_bytes(SRC, "big"), 1)
    assert (a.vrid, a.priority, a.auth_type, a.addresses) == (51, 150, wire.AUTH_AH, (VIP,))


@pytest.mark.parametrize("unicast", [False, True])
@pytest.mark.parametrize(("ident", "seq", "key"), [(1, 1, b"k"), (65535, 2**32 - 1, b"12345678"),
                                                   (7, 123456, b"longer than eight")])  # fmt: skip
def test_matches_oracle(unicast: bool, ident: int, seq: int, key: bytes) -> None:
    dst = PEER if unicast else GROUP
    ours = wire.encode_ipv4(_msg(), ident, 255, SRC, dst, wire.AhKey(key), seq, unicast)
    assert ours == oracle(_msg(), ident, 255, SRC, dst, key, seq, unicast)
    assert wire.AhKey(key).verify(ours, unicast)


def test_plain_header_as_keepalived() -> None:
    p = wire.encode_ipv4(_msg(), 258, 255, SRC, GROUP)
    assert p[:10] == bytes.fromhex("45c00028010200") + b"\x00\xff\x70"  # no DF, proto 112
    assert p[12:20] == SRC + GROUP and p[20:] == _msg()
    assert wire.decode_ipv4(p).ah is False


def test_mutable_fields_are_not_covered() -> None:
    key = wire.AhKey(b"secret")
    p = bytearray(wire.encode_ipv4(_msg(), 9, 255, SRC, PEER, key, 5, True))
    for i in (1, 6, 7, 10, 11, 8):  # TOS, flags/fragment, checksum; TTL for unicast
        q = bytearray(p)
        q[i] ^= 0x5A
        assert key.verify(bytes(q), True), i
    q = bytearray(p)
    q[8] ^= 1
    assert not key.verify(bytes(q), False), "multicast: the TTL is covered"


def test_every_other_byte_is_covered() -> None:
    key = wire.AhKey(b"secret")
    p = wire.encode_ipv4(_msg(), 9, 255, SRC, GROUP, key, 5)
    for i in set(range(len(p))) - {1, 6, 7, 10, 11}:
        q = bytearray(p)
        q[i] ^= 0x01
        assert not key.verify(bytes(q)), i


def test_ah_decode_drops() -> None:
    p = wire.encode_ipv4(_msg(), 1, 255, SRC, GROUP, wire.AhKey(b"x"), 1)
    with pytest.raises(DecodeError) as e:
        wire.decode_ipv4(p[: 20 + 24 - 1])
    assert e.value.reason is DropReason.LENGTH
    bad = bytearray(p)
    bad[20] = 6  # AH for another protocol
    with pytest.raises(DecodeError) as e:
        wire.decode_ipv4(bytes(bad))
    assert e.value.reason is DropReason.PROTOCOL
    assert not wire.AhKey(b"x").verify(p[:30])
    assert not wire.AhKey(b"x").verify(wire.encode_ipv4(_msg(), 1, 255, SRC, GROUP))


def test_vrid_filter_reads_past_the_ah_header() -> None:
    plain, ah = vrid_filter(socket.AF_INET, [51]), vrid_filter(socket.AF_INET, [51], IPPROTO_AH)
    assert plain[1][3] == 1 and ah[1][3] == 25 and plain[2:] == ah[2:]
