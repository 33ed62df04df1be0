"""The address watcher's rtnetlink parsing (ha_suspend): RTM_NEWADDR/DELADDR for IPv4
(IFA_LOCAL wins over a point-to-point peer's IFA_ADDRESS) and IPv6, other messages
ignored, short or overlong ones rejected; and its bookkeeping of addresses held by
several interfaces."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from fastha.drivers import addrwatch as aw

pytestmark = pytest.mark.unit


def nla(atype: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + b"\0" * (-n & 3)


def addr_msg(kind: int, addr: str, index: int = 2, peer: str | None = None) -> bytes:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    raw = socket.inet_pton(fam, addr)
    body = struct.pack("=BBBBI", fam, 32, 0, 0, index)
    if fam == socket.AF_INET:
        body += nla(aw.IFA_ADDRESS, socket.inet_pton(fam, peer or addr)) + nla(aw.IFA_LOCAL, raw)
    else:
        body += nla(aw.IFA_ADDRESS, raw)
    body += nla(3, b"lo\0")  # IFA_LABEL
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_parse_ipv4_local_over_peer() -> None:
    got = aw.parse_addr_message(addr_msg(aw.RTM_NEWADDR, "10.0.0.1", 3, peer="10.0.0.2"))
    assert got == (aw.RTM_NEWADDR, ipaddress.ip_address("10.0.0.1"), 3)


def test_parse_ipv6() -> None:
    got = aw.parse_addr_message(addr_msg(aw.RTM_DELADDR, "fd00::1"))
    assert got == (aw.RTM_DELADDR, ipaddress.ip_address("fd00::1"), 2)


def test_other_messages_are_ignored() -> None:
    assert aw.parse_addr_message(struct.pack("=IHHII", 16, 16, 0, 0, 0)) is None  # NEWLINK


@pytest.mark.parametrize("cut", range(1, 30))
def test_short_messages_raise_or_parse_right(cut: int) -> None:
    # (Without a peer: a message whose IFA_LOCAL is cut off whole is, to the kernel's
    # protocol, a valid one naming IFA_ADDRESS.)
    msg = addr_msg(aw.RTM_NEWADDR, "10.0.0.1")
    short = msg[: len(msg) - cut]
    try:
        got = aw.parse_addr_message(struct.pack("=I", len(short)) + short[4:])
    except ValueError:
        return
    # Only whole trailing attributes (or padding) were cut: the answer is still right.
    assert got == (aw.RTM_NEWADDR, ipaddress.ip_address("10.0.0.1"), 2)


def test_events_count_holders_and_fire_on_edges() -> None:
    edges: list[tuple[str, bool]] = []
    w = aw.AddressWatcher(lambda a, up: edges.append((str(a), up)))
    data = (addr_msg(aw.RTM_NEWADDR, "10.0.0.1", 2) + addr_msg(aw.RTM_NEWADDR, "10.0.0.1", 3)
            + addr_msg(aw.RTM_DELADDR, "10.0.0.1", 2))  # fmt: skip
    w._dispatch(data)
    assert edges == [("10.0.0.1", True)] and w.is_local(ipaddress.ip_address("10.0.0.1"))
    w._dispatch(addr_msg(aw.RTM_DELADDR, "10.0.0.1", 3))
    assert edges[-1] == ("10.0.0.1", False) and not w.local
    w._dispatch(b"\x08\x00\x00\x00" + b"\0" * 12)  # length below a header: dropped
    assert w.malformed == 1
