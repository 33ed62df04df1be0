"""`fastha decode HEX|FILE`: VRRP packets -> one JSON object per line.

Input is a hex string (an IPv4/IPv6 packet, or a bare VRRP message with --family/--src/
--dst) or a capture file (classic pcap in either byte order, micro- or nanosecond, and
pcapng; link types Ethernet (with VLAN tags), Linux cooked SLL/SLL2, raw IP, BSD
loopback). Packets that are not VRRP are skipped; VRRP packets that fail decoding are
shown as {"error": reason}.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import orjson

from fastha import wire

# Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_DLT_RAW12 = 12  # DLT_RAW on most BSDs/Linux headers
LINKTYPE_DLT_RAW14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)
IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options (RFC 8200 4)


class CaptureError(ValueError):
    """The file is not a capture this reader understands."""


@dataclass(frozen=True, slots=True)
class Frame:
    number: int  # 1-based, as tshark counts
    linktype: int
    data: bytes


def _classic_pcap(buf: bytes) -> Iterator[Frame]:
    magic = buf[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise CaptureError("not a pcap file")
    if len(buf) < 24:
        raise CaptureError("truncated pcap header")
    # The low 16 bits are the link type; the top bits may carry an FCS length.
    linktype = struct.unpack_from(end + "I", buf, 20)[0] & 0xFFFF
    rec = struct.Struct(end + "IIII")
    off, n = 24, 0
    while off + 16 <= len(buf):
        _, _, caplen, _ = rec.unpack_from(buf, off)
        off += 16
        if caplen > len(buf) - off:
            break  # truncated last record (capture cut short): stop, as tshark does
        n += 1
        yield Frame(n, linktype, buf[off : off + caplen])
        off += caplen


def _pcapng(buf: bytes) -> Iterator[Frame]:
    off, n = 0, 0
    end = "<"
    linktypes: list[int] = []
    while off + 12 <= len(buf):
        btype = struct.unpack_from(end + "I", buf, off)[0]
        if btype == 0x0A0D0D0A:  # section header: byte order is fixed per section
            bom = buf[off + 8 : off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        blen = struct.unpack_from(end + "I", buf, off + 4)[0]
        if blen < 12 or blen > len(buf) - off:
            break
        body = buf[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 2:  # interface description
            linktypes.append(struct.unpack_from(end + "H", body, 0)[0])
        elif btype == 6 and len(body) >= 20:  # enhanced packet
            ifid, _, _, caplen, _ = struct.unpack_from(end + "IIIII", body, 0)
            if ifid < len(linktypes):
                n += 1
                yield Frame(n, linktypes[ifid], body[20 : 20 + caplen])
        elif btype == 3 and len(body) >= 4 and linktypes:  # simple packet, interface 0
            orig = struct.unpack_from(end + "I", body, 0)[0]
            n += 1
            yield Frame(n, linktypes[0], body[4 : 4 + orig])
        off += blen


def read_capture(buf: bytes) -> Iterator[Frame]:
    """Frames of a classic pcap or pcapng capture."""
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        return _pcapng(buf)
    return _classic_pcap(buf)


def ip_of_frame(linktype: int, data: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or None if it carries no IP."""
    if linktype in (
        LINKTYPE_RAW,
        LINKTYPE_DLT_RAW12,
        LINKTYPE_DLT_RAW14,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
    ):
        return data
    if linktype == LINKTYPE_ETHERNET:
        off = 12
        while len(data) >= off + 2:
            etype = int.from_bytes(data[off : off + 2], "big")
            if etype in ETH_VLAN:
                off += 4
                continue
            return data[off + 2 :] if etype in (ETH_P_IP, ETH_P_IPV6) else None
        return None
    if linktype == LINKTYPE_LINUX_SLL and len(data) >= 16:
        etype = int.from_bytes(data[14:16], "big")
        return data[16:] if etype in (ETH_P_IP, ETH_P_IPV6) else None
    if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 20:
        etype = int.from_bytes(data[0:2], "big")
        return data[20:] if etype in (ETH_P_IP, ETH_P_IPV6) else None
    if linktype == LINKTYPE_NULL and len(data) >= 4:
        return data[4:]
    return None


def is_vrrp(ip: bytes) -> bool:
    """Does this IP packet carry protocol 112 (after IPv6 extension headers, or after
    keepalived's AH header)?"""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] == wire.IPPROTO_AH:
            return len(ip) > ihl and ip[ihl] == wire.IPPROTO_VRRP
        return ip[9] == wire.IPPROTO_VRRP
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        return _ipv6_vrrp_offset(ip) is not None
    return False


def _ipv6_vrrp_offset(ip: bytes) -> int | None:
    nh, off = ip[6], 40
    while nh in IPV6_EXT_HEADERS and len(ip) >= off + 2:
        nh, off = ip[off], off + (ip[off + 1] + 1) * 8
    return off if nh == wire.IPPROTO_VRRP else None


def decode_ip(ip: bytes, checksum_as_v2: bool = False) -> dict[str, object]:
    """An IPv4 or IPv6 packet -> the advert's dict, or {"error": reason}."""
    try:
        if ip and ip[0] >> 4 == 6:
            return _decode_ipv6(ip, checksum_as_v2).to_dict()
        return wire.decode_ipv4(ip, checksum_as_v2).to_dict()
    except wire.DecodeError as exc:
        return {"error": exc.reason.name.lower()}


def _decode_ipv6(ip: bytes, checksum_as_v2: bool) -> wire.Advert:
    # RFC 8200 3: fixed 40-byte header; the payload length bounds the packet.
    if len(ip) < 40:
        raise wire.DecodeError(wire.DropReason.TOO_SHORT, "no IPv6 header")
    end = 40 + int.from_bytes(ip[4:6], "big")
    if end > len(ip):
        raise wire.DecodeError(wire.DropReason.LENGTH, "IPv6 payload length")
    off = _ipv6_vrrp_offset(ip[:end])
    if off is None or off > end:
        raise wire.DecodeError(wire.DropReason.PROTOCOL, "not VRRP")
    return wire.decode(ip[off:end], wire.AF_INET6, ip[8:24], ip[24:40], ip[7], checksum_as_v2)


def _pton(family: int, text: str | None, what: str) -> bytes | None:
    if text is None:
        return None
    try:
        return socket.inet_pton(family, text)
    except OSError as exc:
        raise click.BadParameter(
            f"{text!r} is not an {'IPv4' if family == socket.AF_INET else 'IPv6'} address",
            param_hint=what,
        ) from exc


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")


@click.command("decode")
@click.argument("source")
@click.option(
    "--family",
    type=click.Choice(["ipv4", "ipv6"]),
    default=None,
    help="SOURCE is a bare VRRP message of this family (no IP header).",
)
@click.option("--src", help="Source address for a bare message (v3 pseudo-header).")
@click.option("--dst", help="Destination address for a bare message (v3 pseudo-header).")
@click.option(
    "--ttl",
    type=int,
    default=-1,
    show_default=True,
    help="TTL / hop limit of a bare message; -1 skips the check.",
)
@click.option(
    "--checksum-as-v2",
    is_flag=True,
    help="v3 over IPv4 checksummed without the pseudo-header (keepalived v3_checksum_as_v2).",
)
def command(
    source: str,
    family: str | None,
    src: str | None,
    dst: str | None,
    ttl: int,
    checksum_as_v2: bool,
) -> None:
    """Decode SOURCE (hex of an IP packet or VRRP message, or a pcap/pcapng file) to JSON lines."""
    path = Path(source)
    if source != "-" and path.is_file():
        try:
            frames = list(read_capture(path.read_bytes()))
        except CaptureError as exc:
            raise click.ClickException(f"{source}: {exc}") from exc
        for f in frames:
            ip = ip_of_frame(f.linktype, f.data)
            if ip is not None and is_vrrp(ip):
                _emit({"frame": f.number, **decode_ip(ip, checksum_as_v2)})
        return
    text = sys.stdin.read() if source == "-" else source
    cleaned = "".join(text.split()).replace(":", "").removeprefix("0x")
    try:
        data = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise click.BadParameter("neither a file nor a hex string", param_hint="SOURCE") from exc
    if family is None and (src or dst):
        raise click.UsageError("--src/--dst describe a bare message: give --family too")
    if family is None:
        _emit(decode_ip(data, checksum_as_v2))
        return
    fam = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    try:
        advert = wire.decode(
            data, fam, _pton(fam, src, "--src"), _pton(fam, dst, "--dst"), ttl, checksum_as_v2
        )
    except wire.DecodeError as exc:
        _emit({"error": exc.reason.name.lower()})
        return
    except ValueError as exc:  # missing src/dst for a v3 pseudo-header
        raise click.UsageError(f"{exc}: a v3 message needs --src and --dst") from exc
    _emit(advert.to_dict())
