"""drivers/arpwatch.parse_claim: the sender of an IPv4 ARP frame, or None."""

from __future__ import annotations

import pytest
from scapy.layers.l2 import ARP, Ether

from fastha.drivers.arpwatch import parse_claim
from fastha.wire import garp_frame

pytestmark = pytest.mark.unit

MAC = bytes.fromhex("020000000001")
VIP = bytes([198, 18, 0, 100])


def test_our_own_garp_frame() -> None:
    assert parse_claim(garp_frame(MAC, VIP)) == (VIP, MAC)


@pytest.mark.parametrize("op", [1, 2])
def test_scapy_arp_request_and_reply(op: int) -> None:
    frame = bytes(Ether(src="02:00:00:00:00:02", dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=op, hwsrc="02:00:00:00:00:09", psrc="198.18.0.100",
                        pdst="198.18.0.100"))  # fmt: skip
    assert parse_claim(frame) == (VIP, bytes.fromhex("020000000009"))


def test_not_arp_or_too_short() -> None:
    frame = garp_frame(MAC, VIP)
    assert parse_claim(frame[:41]) is None
    assert parse_claim(frame[:12] + b"\x08\x00" + frame[14:]) is None  # IPv4 ethertype
    assert parse_claim(frame[:16] + b"\x86\xdd" + frame[18:]) is None  # ptype IPv6
    assert parse_claim(b"") is None
