"""drivers/arpwatch: the claim in an IPv4 ARP frame or an IPv6 Neighbor Advertisement,
or None."""

from __future__ import annotations

import socket

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from fastha.drivers.arpwatch import parse_claim, parse_na_claim
from fastha.wire import garp_frame, na_frame

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


VIP6 = socket.inet_pton(socket.AF_INET6, "fd00:198:18::100")
ETH6 = Ether(src="02:00:00:00:00:02", dst="33:33:00:00:00:01")
IP6 = IPv6(src="fe80::2", dst="ff02::1", hlim=255)


def test_our_own_na_frame() -> None:
    assert parse_na_claim(na_frame(MAC, VIP6)) == (VIP6, MAC)


def test_na_claimer_is_the_target_lladdr_option_else_the_ethernet_source() -> None:
    with_opt = (
        ETH6
        / IP6
        / ICMPv6ND_NA(tgt="fd00:198:18::100", O=1)
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:09")
    )
    assert parse_na_claim(bytes(with_opt)) == (VIP6, bytes.fromhex("020000000009"))
    bare = ETH6 / IP6 / ICMPv6ND_NA(tgt="fd00:198:18::100")
    assert parse_na_claim(bytes(bare)) == (VIP6, bytes.fromhex("020000000002"))
    padded = bytes(bare) + bytes(30)  # Ethernet padding is not an option
    assert parse_na_claim(padded) == (VIP6, bytes.fromhex("020000000002"))


def test_not_a_valid_na() -> None:
    ns = ETH6 / IP6 / ICMPv6ND_NS(tgt="fd00:198:18::100")
    assert parse_na_claim(bytes(ns)) is None
    hop64 = ETH6 / IPv6(src="fe80::2", dst="ff02::1", hlim=64) / ICMPv6ND_NA(tgt="fd00::1")
    assert parse_na_claim(bytes(hop64)) is None  # RFC 4861 §7.1.2: hop limit 255 only
    frame = na_frame(MAC, VIP6)
    assert parse_na_claim(frame[:77]) is None
    assert parse_na_claim(frame[:55] + b"\x01" + frame[56:]) is None  # code != 0
    zero_len = frame[:79] + b"\x00" + frame[80:]  # the lladdr option with length 0
    assert parse_na_claim(zero_len) is None
    assert parse_claim(frame) is None and parse_na_claim(garp_frame(MAC, VIP)) is None
