"""scapy's VRRP / VRRPv3 layers as an oracle: both directions, checksums, frames."""

from __future__ import annotations

import socket

import pytest
from hypothesis import assume, given
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6, in6_chksum
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from tests.support.wire_packets import ip_packet
from tests.support.wire_strategies import AdvertSpec, advert_specs, encode_with

from fastha import wire

MAC = bytes.fromhex("00005e000133")


def _ntop(family: int, a: bytes) -> str:
    return socket.inet_ntop(family, a)


def _scapy_ip(s: AdvertSpec) -> IP | IPv6:
    if s.family == socket.AF_INET:
        return IP(src=_ntop(s.family, s.src), dst=_ntop(s.family, s.dst), ttl=255)
    return IPv6(src=_ntop(s.family, s.src), dst=_ntop(s.family, s.dst), hlim=255)


@pytest.mark.unit
@given(advert_specs())
def test_scapy_decodes_what_we_encode(s: AdvertSpec) -> None:
    # scapy's dispatch_hook only recognises a VRRPv3 message of 16 bytes or more.
    assume(len(encode_with(wire, s)) >= 16)
    pkt_bytes = ip_packet(encode_with(wire, s), s.family, s.src, s.dst)
    pkt = (IP if s.family == socket.AF_INET else IPv6)(pkt_bytes)
    layer = pkt[VRRP] if s.version == 2 else pkt[VRRPv3]
    assert (layer.version, layer.type, layer.vrid, layer.priority) == (
        s.version,
        1,
        s.vrid,
        s.priority,
    )
    assert layer.ipcount == len(s.addresses)
    assert layer.adv == s.adver_int
    expected = [_ntop(s.family, a) for a in s.addresses]
    assert list(layer.addrlist) == expected
    if s.version == 2:
        assert layer.authtype == s.auth_type
        auth = s.auth_data.ljust(8, b"\x00")
        assert (layer.auth1, layer.auth2) == (
            int.from_bytes(auth[:4], "big"),
            int.from_bytes(auth[4:], "big"),
        )
    # Let scapy recompute the checksum over the same fields: it must match ours.
    theirs = layer.copy()
    theirs.chksum = None
    if s.version == 3 and s.checksum_as_v2:
        return  # scapy has no as-v2 mode; the struct oracle covers it
    rebuilt = (_scapy_ip(s) / theirs) if s.version == 3 else theirs
    rebuilt = rebuilt[VRRP] if s.version == 2 else rebuilt
    built = bytes(rebuilt)
    if s.version == 3:
        built = built[(20 if s.family == socket.AF_INET else 40) :]
    assert built[6:8] == encode_with(wire, s)[6:8]


@pytest.mark.unit
@given(advert_specs())
def test_we_decode_what_scapy_encodes(s: AdvertSpec) -> None:
    addrs = [_ntop(s.family, a) for a in s.addresses]
    if s.version == 2:
        auth = s.auth_data.ljust(8, b"\x00")
        layer = VRRP(
            vrid=s.vrid,
            priority=s.priority,
            adv=s.adver_int,
            authtype=s.auth_type,
            addrlist=addrs,
            auth1=int.from_bytes(auth[:4], "big"),
            auth2=int.from_bytes(auth[4:], "big"),
        )
        msg = bytes(layer)
    else:
        if s.checksum_as_v2:
            return
        msg = bytes(
            (
                _scapy_ip(s)
                / VRRPv3(vrid=s.vrid, priority=s.priority, adv=s.adver_int, addrlist=addrs)
            )[VRRPv3]
        )
        # Built standalone the checksum field is already in the bytes (post_build ran above).
        full = _scapy_ip(s) / VRRPv3(
            vrid=s.vrid, priority=s.priority, adv=s.adver_int, addrlist=addrs
        )
        raw = bytes(full)
        msg = raw[(20 if s.family == socket.AF_INET else 40) :]
    a = wire.decode(msg, s.family, s.src, s.dst, 255)
    assert (a.version, a.vrid, a.priority, a.adver_int) == (
        s.version,
        s.vrid,
        s.priority,
        s.adver_int,
    )
    assert a.addresses == s.addresses
    if s.version == 2:
        assert (a.auth_type, a.auth_data) == (s.auth_type, s.auth_data.ljust(8, b"\x00"))
    assert msg == encode_with(wire, s)


@pytest.mark.unit
@given(advert_specs())
def test_we_decode_scapy_ip_packets(s: AdvertSpec) -> None:
    if s.family != socket.AF_INET or (s.version == 3 and s.checksum_as_v2):
        return
    addrs = [_ntop(s.family, a) for a in s.addresses]
    ip = IP(src=_ntop(s.family, s.src), dst=_ntop(s.family, s.dst), ttl=255)
    if s.version == 2:
        auth = s.auth_data.ljust(8, b"\x00")
        pkt = ip / VRRP(
            vrid=s.vrid,
            priority=s.priority,
            adv=s.adver_int,
            authtype=s.auth_type,
            addrlist=addrs,
            auth1=int.from_bytes(auth[:4], "big"),
            auth2=int.from_bytes(auth[4:], "big"),
        )
    else:
        pkt = ip / VRRPv3(vrid=s.vrid, priority=s.priority, adv=s.adver_int, addrlist=addrs)
    a = wire.decode_ipv4(bytes(pkt))
    assert (a.vrid, a.priority, a.addresses, a.src, a.dst, a.ttl) == (
        s.vrid,
        s.priority,
        s.addresses,
        s.src,
        s.dst,
        255,
    )


@pytest.mark.unit
def test_garp_frame_parses_in_scapy() -> None:
    vip = socket.inet_aton("192.0.2.10")
    frame = wire.garp_frame(MAC, vip)
    assert len(frame) == 60
    e = Ether(frame)
    assert e.dst == "ff:ff:ff:ff:ff:ff" and e.src == "00:00:5e:00:01:33" and e.type == 0x0806
    arp = e[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)
    assert arp.hwsrc == "00:00:5e:00:01:33" and arp.hwdst == "ff:ff:ff:ff:ff:ff"
    assert arp.psrc == arp.pdst == "192.0.2.10"


@pytest.mark.unit
@pytest.mark.parametrize("router", [False, True])
def test_na_frame_parses_in_scapy(router: bool) -> None:
    target = socket.inet_pton(socket.AF_INET6, "2001:db8::10")
    frame = wire.na_frame(MAC, target, router=router)
    e = Ether(frame)
    assert e.dst == "33:33:00:00:00:01" and e.src == "00:00:5e:00:01:33" and e.type == 0x86DD
    ip6 = e[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim, ip6.nh, ip6.plen) == (
        "2001:db8::10",
        "ff02::1",
        255,
        58,
        32,
    )
    na = e[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O) == (136, 0, int(router), 0, 1)
    assert na.tgt == "2001:db8::10"
    opt = e[ICMPv6NDOptDstLLAddr]
    assert (opt.type, opt.len, opt.lladdr) == (2, 1, "00:00:5e:00:01:33")
    # Checksum: scapy recomputes it over the same pseudo-header and payload.
    payload = bytes(ip6.payload)
    zeroed = payload[:2] + b"\x00\x00" + payload[4:]
    assert na.cksum == in6_chksum(58, ip6, zeroed)
    rebuilt = Ether(frame)
    del rebuilt[ICMPv6ND_NA].cksum
    assert bytes(rebuilt) == frame


@pytest.mark.unit
def test_na_frame_with_explicit_source() -> None:
    target = socket.inet_pton(socket.AF_INET6, "2001:db8::10")
    src = socket.inet_pton(socket.AF_INET6, "fe80::1")
    e = Ether(wire.na_frame(MAC, target, src))
    assert e[IPv6].src == "fe80::1" and e[ICMPv6ND_NA].tgt == "2001:db8::10"
    rebuilt = Ether(bytes(e))
    del rebuilt[ICMPv6ND_NA].cksum
    assert bytes(rebuilt) == bytes(e)
