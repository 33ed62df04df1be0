"""fastha.drivers.routewatch: the deleted protocol-18 routes and rules read from
rtnetlink messages, and keepalived's route_is_ours / compare_rule matching. The
behaviour itself (keepalived's and fastha's, `ip route del` in a namespace) is compared
by tests/conformance scenario route_options_and_deletion."""

from __future__ import annotations

import socket
import struct

import pytest

from fastha.drivers.netlink import VirtualRoute, VirtualRule
from fastha.drivers.routewatch import (
    RTM_DELROUTE,
    RTM_DELRULE,
    Gone,
    parse_deletion,
    route_matches,
    rule_matches,
)

pytestmark = pytest.mark.unit


def _nla(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + bytes((-n) % 4)


def _msg(mtype: int, family: int, dst_len: int, src_len: int, table: int, b5: int,
         attrs: bytes) -> bytes:  # fmt: skip
    body = struct.pack("=BBBBBBBBI", family, dst_len, src_len, 0, table, b5, 0, 1, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_a_deleted_keepalived_route_is_read() -> None:
    attrs = _nla(1, socket.inet_aton("198.19.50.0")) + _nla(15, struct.pack("=I", 100))
    gone = parse_deletion(_msg(RTM_DELROUTE, socket.AF_INET, 24, 0, 252, 18, attrs))
    assert gone == Gone(False, socket.AF_INET, "198.19.50.0/24", "", 100, 0)
    assert route_matches(gone, VirtualRoute("198.19.50.0/24", table=100, proto=18), virtual=True)
    assert not route_matches(gone, VirtualRoute("198.19.50.0/24", table=100), virtual=True)
    assert not route_matches(gone, VirtualRoute("198.19.50.0/24", table=100, proto=18,
                                                metric=5), virtual=True)  # fmt: skip
    # another protocol's route (boot, static...) is not ours
    assert parse_deletion(_msg(RTM_DELROUTE, socket.AF_INET, 24, 0, 252, 3, attrs)) is None


def test_a_deleted_rule_and_malformed_messages() -> None:
    attrs = (_nla(2, socket.inet_aton("198.19.52.0")) + _nla(6, struct.pack("=I", 100))
             + _nla(21, bytes([18])))  # fmt: skip
    gone = parse_deletion(_msg(RTM_DELRULE, socket.AF_INET, 0, 24, 100, 0, attrs))
    assert gone is not None and gone.rule and gone.src == "198.19.52.0/24"
    rule = VirtualRule(from_="198.19.52.0/24", table=100, priority=100, protocol=18)
    assert rule_matches(gone, rule)
    assert not rule_matches(gone, VirtualRule(from_="198.19.53.0/24", table=100, priority=100))
    good = _msg(RTM_DELROUTE, socket.AF_INET, 24, 0, 252, 18, _nla(1, b"\xc6\x13\x32\x00"))
    with pytest.raises(ValueError):
        parse_deletion(good[:-2])  # shorter than its header says
    with pytest.raises(ValueError):
        parse_deletion(_msg(RTM_DELROUTE, socket.AF_INET, 24, 0, 252, 18, _nla(1, b"\x01\x02")))
