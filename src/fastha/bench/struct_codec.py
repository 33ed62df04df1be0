"""An independently written struct-based VRRP codec: benchmark baseline and test oracle.

Plain Python over `struct`, written from RFC 3768 5.1 and RFC 5798 5.1 without looking at
`_wire`. Never used by the daemon (no runtime fallback, STYLE.md 3).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_HDR = struct.Struct("!BBBBBBH")  # ver|type, vrid, priority, count, auth|rsvd, adver, cksum
_PROTO_VRRP = 112


def checksum(data: bytes) -> int:
    """RFC 1071: one's-complement of the one's-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(family: int, src: bytes, dst: bytes, length: int) -> bytes:
    """RFC 5798 5.2.8 pseudo-header: RFC 791 style for IPv4, RFC 8200 8.1 for IPv6."""
    if family == socket.AF_INET:
        return src + dst + struct.pack("!BBH", 0, _PROTO_VRRP, length)
    return src + dst + struct.pack("!I3xB", length, _PROTO_VRRP)


@dataclass(frozen=True, slots=True)
class Message:
    version: int
    type: int
    vrid: int
    priority: int
    count: int
    auth_type: int  # v2 only (0 for v3)
    adver_int: int  # v2 seconds; v3 centiseconds
    checksum: int
    addresses: tuple[bytes, ...]
    auth_data: bytes  # v2: 8 bytes; v3: b""


def encode(
    version: int,
    vrid: int,
    priority: int,
    adver_int: int,
    addresses: tuple[bytes, ...] | list[bytes],
    family: int = socket.AF_INET,
    src: bytes = b"",
    dst: bytes = b"",
    auth_type: int = 0,
    auth_data: bytes = b"",
    checksum_as_v2: bool = False,
) -> bytes:
    if version == 2:
        word = (auth_type, adver_int)
        tail = auth_data.ljust(8, b"\x00")
    else:
        word = (adver_int >> 8 & 0x0F, adver_int & 0xFF)
        tail = b""
    body = b"".join(addresses) + tail
    head = _HDR.pack((version << 4) | 1, vrid, priority, len(addresses), *word, 0)
    msg = head + body
    if version == 3 and not (family == socket.AF_INET and checksum_as_v2):
        ck = checksum(pseudo_header(family, src, dst, len(msg)) + msg)
    else:
        ck = checksum(msg)
    return msg[:6] + struct.pack("!H", ck) + msg[8:]


def encode_v2(
    vrid: int,
    priority: int,
    adver_int_s: int,
    addresses: list[bytes],
    auth_type: int = 0,
    auth_data: bytes = b"",
) -> bytes:
    return encode(
        2, vrid, priority, adver_int_s, addresses, auth_type=auth_type, auth_data=auth_data
    )


def encode_v3(
    vrid: int,
    priority: int,
    adver_int_cs: int,
    addresses: list[bytes],
    family: int,
    src: bytes,
    dst: bytes,
    checksum_as_v2: bool = False,
) -> bytes:
    return encode(
        3, vrid, priority, adver_int_cs, addresses, family, src, dst, checksum_as_v2=checksum_as_v2
    )


class Invalid(ValueError):
    """The oracle's drop; `reason` is a lower-case DropReason name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(
    buf: bytes,
    family: int,
    src: bytes = b"",
    dst: bytes = b"",
    ttl: int = -1,
    checksum_as_v2: bool = False,
) -> Message:
    if ttl >= 0 and ttl != 255:
        raise Invalid("ttl")
    if len(buf) < 8:
        raise Invalid("too_short")
    vt, vrid, priority, count, b4, b5, ck = _HDR.unpack_from(buf)
    version, mtype = vt >> 4, vt & 0x0F
    if version not in (2, 3) or (version == 2 and family != socket.AF_INET):
        raise Invalid("version")
    if mtype != 1:
        raise Invalid("type")
    alen = 4 if family == socket.AF_INET else 16
    end = 8 + count * alen + (8 if version == 2 else 0)
    if len(buf) < end:
        raise Invalid("length")
    msg = buf[:end]
    if version == 3 and not (family == socket.AF_INET and checksum_as_v2):
        ok = checksum(pseudo_header(family, src, dst, end) + msg) == 0
    else:
        ok = checksum(msg) == 0
    if not ok:
        raise Invalid("checksum")
    addrs = tuple(msg[8 + i * alen : 8 + (i + 1) * alen] for i in range(count))
    if version == 2:
        return Message(2, mtype, vrid, priority, count, b4, b5, ck, addrs, msg[end - 8 : end])
    return Message(3, mtype, vrid, priority, count, 0, (b4 & 0x0F) << 8 | b5, ck, addrs, b"")
