"""`fastha bench codec`: ns per encode / decode for _wire, the struct codecs and scapy
(VRRP, and BFD Control packets).

All three run in the same process and the same run, so the ratios hold on any machine;
the absolute figures are this machine's. Never asserted in tests (DESIGN.md).
"""

from __future__ import annotations

import importlib.util
import itertools
import socket
import timeit
from collections.abc import Callable
from dataclasses import dataclass

import click
import orjson

from fastha import wire
from fastha.bench import struct_bfd, struct_codec
from fastha.wire import bfd as wire_bfd

SRC4 = socket.inet_aton("192.0.2.1")
DST4 = socket.inet_aton("224.0.0.18")
VIPS4 = [socket.inet_aton("192.0.2.10"), socket.inet_aton("192.0.2.11")]
SRC6 = socket.inet_pton(socket.AF_INET6, "fe80::1")
DST6 = socket.inet_pton(socket.AF_INET6, "ff02::12")
VIPS6 = [socket.inet_pton(socket.AF_INET6, "2001:db8::10")]
CODECS = ("_wire", "struct", "scapy")
# A BFD Control packet as an Up session at 10 ms sends it (RFC 5880 §4.1).
BFD_ARGS = (3, 0, 3, 0x11, 0x22, 10_000, 10_000)
BFD_PKT = wire_bfd.encode_bfd(*BFD_ARGS)


@dataclass(frozen=True, slots=True)
class Row:
    op: str
    ns: dict[str, float | None]  # codec -> ns per call (None: not available)

    def ratio(self, codec: str) -> float | None:
        base, other = self.ns.get("_wire"), self.ns.get(codec)
        return None if not base or other is None else other / base


def time_ns(fn: Callable[[], object], min_time: float, repeat: int) -> float:
    """Best-of-`repeat` ns per call, each repeat running at least `min_time` seconds."""
    t = timeit.Timer(fn)
    n = 1
    while True:
        if t.timeit(n) >= min_time / 4:
            break
        n *= 4
    per = max(1, int(n * min_time / max(t.timeit(n), 1e-9)))
    return min(t.repeat(repeat=repeat, number=per)) / per * 1e9


def _wire_ops() -> dict[str, Callable[[], object]]:
    m2 = wire.encode_v2(51, 100, 1, VIPS4, wire.AUTH_PASS, b"secret")
    m3 = wire.encode_v3(51, 100, 100, VIPS4, wire.AF_INET, SRC4, DST4)
    m6 = wire.encode_v3(51, 100, 100, VIPS6, wire.AF_INET6, SRC6, DST6)
    t = wire.AdvertTemplate(3, 51, 100, 100, VIPS4, wire.AF_INET, SRC4, DST4)
    flip = itertools.cycle((100, 101)).__next__
    expect = wire.Expect(3, addresses=VIPS4)
    a3 = wire.decode(m3, wire.AF_INET, SRC4, DST4, 255)
    return {
        "encode v2": lambda: wire.encode_v2(51, 100, 1, VIPS4, 1, b"secret"),
        "encode v3 ipv4": lambda: wire.encode_v3(51, 100, 100, VIPS4, wire.AF_INET, SRC4, DST4),
        "encode v3 ipv6": lambda: wire.encode_v3(51, 100, 100, VIPS6, wire.AF_INET6, SRC6, DST6),
        "decode v2": lambda: wire.decode(m2, wire.AF_INET, SRC4, DST4, 255),
        "decode v3 ipv4": lambda: wire.decode(m3, wire.AF_INET, SRC4, DST4, 255),
        "decode v3 ipv6": lambda: wire.decode(m6, wire.AF_INET6, SRC6, DST6, 255),
        "template new priority": lambda: t.packet(flip()),
        "template same priority": lambda: t.packet(100),
        "expect.check": lambda: expect.check(a3),
        "encode bfd": lambda: wire_bfd.encode_bfd(*BFD_ARGS),
        "decode bfd": lambda: wire_bfd.decode_bfd(BFD_PKT),
    }


def _struct_ops() -> dict[str, Callable[[], object]]:
    sc = struct_codec
    m2 = sc.encode_v2(51, 100, 1, VIPS4, 1, b"secret")
    m3 = sc.encode_v3(51, 100, 100, VIPS4, socket.AF_INET, SRC4, DST4)
    m6 = sc.encode_v3(51, 100, 100, VIPS6, socket.AF_INET6, SRC6, DST6)
    return {
        "encode v2": lambda: sc.encode_v2(51, 100, 1, VIPS4, 1, b"secret"),
        "encode v3 ipv4": lambda: sc.encode_v3(51, 100, 100, VIPS4, socket.AF_INET, SRC4, DST4),
        "encode v3 ipv6": lambda: sc.encode_v3(51, 100, 100, VIPS6, socket.AF_INET6, SRC6, DST6),
        "decode v2": lambda: sc.decode(m2, socket.AF_INET, SRC4, DST4, 255),
        "decode v3 ipv4": lambda: sc.decode(m3, socket.AF_INET, SRC4, DST4, 255),
        "decode v3 ipv6": lambda: sc.decode(m6, socket.AF_INET6, SRC6, DST6, 255),
        "encode bfd": lambda: struct_bfd.encode(*BFD_ARGS),
        "decode bfd": lambda: struct_bfd.decode(BFD_PKT),
    }


def _scapy_ops() -> dict[str, Callable[[], object]]:
    from scapy.contrib.bfd import BFD
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.vrrp import VRRP, VRRPv3

    a4 = ["192.0.2.10", "192.0.2.11"]
    auth = int.from_bytes(b"secr", "big"), int.from_bytes(b"et\0\0", "big")
    m2 = wire.encode_v2(51, 100, 1, VIPS4, 1, b"secret")
    p3 = bytes(IP(src="192.0.2.1", dst="224.0.0.18", ttl=255) / VRRPv3(vrid=51, addrlist=a4))
    p6 = bytes(
        IPv6(src="fe80::1", dst="ff02::12", hlim=255) / VRRPv3(vrid=51, addrlist=["2001:db8::10"])
    )
    # v3 needs the IP layer for its pseudo-header checksum, so scapy builds/parses it too.
    return {
        "encode v2": lambda: bytes(
            VRRP(
                vrid=51, priority=100, adv=1, authtype=1, addrlist=a4, auth1=auth[0], auth2=auth[1]
            )
        ),
        "encode v3 ipv4": lambda: bytes(
            IP(src="192.0.2.1", dst="224.0.0.18", ttl=255) / VRRPv3(vrid=51, addrlist=a4)
        ),
        "encode v3 ipv6": lambda: bytes(
            IPv6(src="fe80::1", dst="ff02::12", hlim=255)
            / VRRPv3(vrid=51, addrlist=["2001:db8::10"])
        ),
        "decode v2": lambda: VRRP(m2),
        "decode v3 ipv4": lambda: IP(p3),
        "decode v3 ipv6": lambda: IPv6(p6),
        "encode bfd": lambda: bytes(
            BFD(
                sta=3,
                detect_mult=3,
                my_discriminator=0x11,
                your_discriminator=0x22,
                min_tx_interval=10_000,
                min_rx_interval=10_000,
                echo_rx_interval=0,
            )
        ),
        "decode bfd": lambda: BFD(BFD_PKT),
    }


def scapy_available() -> bool:
    return importlib.util.find_spec("scapy") is not None


def run(min_time: float = 0.05, repeat: int = 3, with_scapy: bool = True) -> list[Row]:
    ops = {"_wire": _wire_ops(), "struct": _struct_ops()}
    if with_scapy and scapy_available():
        ops["scapy"] = _scapy_ops()
    rows = []
    for op in ops["_wire"]:
        rows.append(
            Row(
                op,
                {
                    c: (time_ns(ops[c][op], min_time, repeat) if op in ops.get(c, {}) else None)
                    for c in CODECS
                },
            )
        )
    return rows


def _fmt(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.0f}{unit}" if v >= 100 else f"{v:.1f}{unit}"


def table(rows: list[Row]) -> str:
    head = f"{'op':<24}{'_wire ns':>10}{'struct ns':>11}{'scapy ns':>11}{'struct/_wire':>14}{'scapy/_wire':>13}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.op:<24}{_fmt(r.ns['_wire']):>10}{_fmt(r.ns['struct']):>11}{_fmt(r.ns['scapy']):>11}"
            f"{_fmt(r.ratio('struct'), 'x'):>14}{_fmt(r.ratio('scapy'), 'x'):>13}"
        )
    return "\n".join(lines)


def as_json(rows: list[Row]) -> dict[str, object]:
    return {
        "unit": "ns per call",
        "rows": [
            {
                "op": r.op,
                **{f"{c}_ns": r.ns[c] for c in CODECS},
                "struct_ratio": r.ratio("struct"),
                "scapy_ratio": r.ratio("scapy"),
            }
            for r in rows
        ],
    }


@click.command("codec")
@click.option("--json", "as_json_flag", is_flag=True, help="Print one JSON object (orjson).")
@click.option(
    "--min-time", type=float, default=0.05, show_default=True, help="Seconds per timed repeat."
)
@click.option("--repeat", type=int, default=3, show_default=True, help="Repeats; the best is kept.")
@click.option("--no-scapy", is_flag=True, help="Skip scapy (it is slow to time).")
def command(as_json_flag: bool, min_time: float, repeat: int, no_scapy: bool) -> None:
    """ns per VRRP encode/decode: _wire vs a struct codec vs scapy, with ratios."""
    rows = run(min_time, repeat, with_scapy=not no_scapy)
    if as_json_flag:
        click.echo(orjson.dumps(as_json(rows), option=orjson.OPT_INDENT_2).decode())
        return
    if not no_scapy and not scapy_available():
        click.echo("scapy is not installed: its column is empty")
    click.echo(table(rows))
