"""Helpers for wire tests: wrap VRRP messages in IP headers, write pcaps, ask tshark."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
from pathlib import Path

from fastha.bench.struct_codec import checksum

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def ipv4_packet(msg: bytes, src: bytes, dst: bytes, ttl: int = 255, proto: int = 112) -> bytes:
    """RFC 791 header (no options) with a correct header checksum, then msg."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, ttl, proto, 0, src, dst)
    ck = checksum(hdr)
    return hdr[:10] + struct.pack("!H", ck) + hdr[12:] + msg


def ipv6_packet(msg: bytes, src: bytes, dst: bytes, hlim: int = 255, nh: int = 112) -> bytes:
    """RFC 8200 fixed header, then msg."""
    return struct.pack("!IHBB16s16s", 6 << 28, len(msg), nh, hlim, src, dst) + msg


def ip_packet(msg: bytes, family: int, src: bytes, dst: bytes, ttl: int = 255) -> bytes:
    if family == socket.AF_INET:
        return ipv4_packet(msg, src, dst, ttl)
    return ipv6_packet(msg, src, dst, ttl)


def write_pcap(path: Path, frames: list[bytes], linktype: int = LINKTYPE_RAW) -> None:
    """Classic little-endian microsecond pcap (the format libpcap writes by default)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))


def tshark_layers(tshark: str, path: Path, *prefs: str) -> list[dict[str, object]]:
    """tshark -T json for every frame, as the list of `_source.layers` dicts."""
    cmd = [
        tshark,
        "-r",
        str(path),
        "-T",
        "json",
        "--no-duplicate-keys",
        "-o",
        "vrrp.v3_checksum_as_in_v2:FALSE",
    ]
    for p in prefs:
        cmd += ["-o", p]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
    # stderr carries a "running as root" notice; only stdout is JSON.
    return [f["_source"]["layers"] for f in json.loads(res.stdout)]
