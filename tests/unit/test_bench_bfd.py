"""The BFD bench's capture side without a network: `measure.bfd_packet` reads what
scapy's BFD layer (scapy.contrib.bfd, an independent encoder) builds, over IPv4 and
IPv6, and ignores what is not BFD; `bench.bfd.detection` and `false_downs` on
synthetic packet sequences with known answers."""

from __future__ import annotations

import pytest
from scapy.contrib.bfd import BFD
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from fastha.bench import measure
from fastha.bench.bfd import detection, false_downs
from fastha.bench.measure import BFD_DOWN, BFD_UP, BfdPacket

pytestmark = pytest.mark.unit

A, B = "198.18.0.11", "198.18.0.12"


def _bfd(**kw: int) -> BFD:
    fields = dict(version=1, diag=1, sta=1, flags=0x20, detect_mult=3, my_discriminator=0x1234,
                  your_discriminator=0xABCD, min_tx_interval=1000, min_rx_interval=3000)  # fmt: skip
    fields.update(kw)
    return BFD(**fields)


def test_decodes_scapy_ipv4() -> None:
    frame = bytes(Ether() / IP(src=A, dst=B, ttl=255) / UDP(sport=49152, dport=3784) / _bfd())
    p = measure.bfd_packet(7, frame)
    assert p is not None
    assert (p.ts_ns, p.src, p.dst, p.sport) == (7, A, B, 49152)
    assert (p.state, p.diag, p.poll, p.final, p.mult) == (BFD_DOWN, 1, True, False, 3)
    assert (p.my_discr, p.your_discr, p.tx_us, p.rx_us) == (0x1234, 0xABCD, 1000, 3000)


def test_decodes_scapy_ipv6_multihop_up_final() -> None:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=50000, dport=4784)
    frame = bytes(Ether() / pkt / _bfd(sta=3, diag=0, flags=0x10))
    p = measure.bfd_packet(0, frame)
    assert p is not None
    assert (p.src, p.dst, p.state, p.diag, p.poll, p.final) == (
        "2001:db8::1", "2001:db8::2", BFD_UP, 0, False, True)  # fmt: skip


@pytest.mark.parametrize(
    "frame",
    [
        bytes(Ether() / IP(src=A, dst=B) / UDP(sport=1, dport=53) / _bfd()),  # not BFD's port
        bytes(Ether() / IP(src=A, dst=B) / UDP(sport=1, dport=3784) / b"\x20\x40"),  # short
        bytes(Ether() / IP(src=A, dst=B, proto=112) / (b"\x31" * 40)),  # VRRP
        b"\x00" * 10,
    ],
)
def test_ignores_what_is_not_bfd(frame: bytes) -> None:
    assert measure.bfd_packet(0, frame) is None


def pkt(ts_ms: float, src: str, state: int = BFD_UP, diag: int = 0) -> BfdPacket:
    dst = B if src == A else A
    return BfdPacket(round(ts_ms * 1e6), src, dst, 49152, state, diag, False, False, 3, 1, 2,
                     1000, 1000)  # fmt: skip


def steady(until_ms: float) -> list[BfdPacket]:
    """a and b both Up, a packet each per ms until ``until_ms``."""
    out = []
    for t in range(int(until_ms)):
        out += [pkt(t, A), pkt(t + 0.5, B)]
    return out


def test_detection_from_the_dead_peers_last_packet() -> None:
    # a dies after its packet at 99 ms; b says Down (diag 1) at 103.2 ms.
    down = pkt(103.2, B, BFD_DOWN, measure.BFD_DIAG_EXPIRED)
    pkts = [*steady(100), pkt(100.5, B), pkt(101.5, B), pkt(102.5, B), down]
    got = detection(pkts, dead=A, us=B, event_ns=99_500_000, settled_ns=0, bound_ms=3.0)
    assert got.problem == "" and got.ms == pytest.approx(4.2)


def test_detection_refuses_a_session_that_fell_before_the_event() -> None:
    late_down = [pkt(103.2, B, BFD_DOWN, measure.BFD_DIAG_EXPIRED)]
    fell = [*steady(100), pkt(100.5, B, BFD_DOWN, 1), pkt(101.5, B), *late_down]
    got = detection(fell, dead=A, us=B, event_ns=101_000_000, settled_ns=0, bound_ms=3.0)
    assert got.ms is None and "not Up" in got.problem
    # a paused 5 ms (> the 3 ms bound) before its last packet: a stall, not the kill.
    paused = [p for p in steady(100) if not (p.src == A and 90 < p.ts_ns / 1e6 < 95)]
    got = detection(paused + late_down, dead=A, us=B, event_ns=99_500_000, settled_ns=0,
                    bound_ms=3.0)  # fmt: skip
    assert got.ms is None and "paused" in got.problem
    # a Down for another reason (neighbour signalled) is not a detection.
    other = [*steady(100), pkt(103.2, B, BFD_DOWN, 3)]
    got = detection(other, dead=A, us=B, event_ns=99_500_000, settled_ns=0, bound_ms=3.0)
    assert got.ms is None and "diagnostic 3" in got.problem


def test_false_downs_count_falls_from_up() -> None:
    seq = [pkt(t, A, s) for t, s in enumerate([BFD_DOWN, BFD_UP, BFD_UP, BFD_DOWN, 2, BFD_UP,
                                               BFD_DOWN, BFD_UP])]  # fmt: skip
    assert false_downs(seq, A, 0, 10**9) == 2
    assert false_downs(seq, B, 0, 10**9) == 0
    assert false_downs(seq, A, 4_000_000, 10**9) == 1  # the window starts after the first
