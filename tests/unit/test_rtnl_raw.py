"""drivers/rtnl_raw without a kernel: the prebuilt RTM_NEWADDR datagram, read back with
the address watcher's parser (drivers/addrwatch), and its rebuild when an interface's
index changes. The kernel's side: tests/system/test_vrrp_fast_vips.py."""

from __future__ import annotations

import ipaddress

import pytest

from fastha.drivers import nlsocket
from fastha.drivers.addrwatch import RTM_NEWADDR, parse_addr_message
from fastha.drivers.rtnl_raw import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, AddressRequests
from fastha.vrrp.addresses import VirtualAddress

pytestmark = pytest.mark.unit

VIPS = (
    VirtualAddress("198.18.0.100", 24, "eth0", broadcast="198.18.0.255", label="eth0:vi1"),
    VirtualAddress("198.18.1.1", None, "eth1", peer="198.18.1.2", scope="link"),
    VirtualAddress("2001:db8::100", 64, "eth0", nodad=True, preferred_lft=0),
)


def _parsed(reqs: AddressRequests) -> list[tuple[int, str, int, int]]:
    msgs, malformed = nlsocket.messages(reqs.data)
    assert not malformed
    assert [off for off, *_ in msgs] == list(reqs.offsets)
    out = []
    for off, length, _mtype, flags, _seq in msgs:
        parsed = parse_addr_message(reqs.data[off : off + length])
        assert parsed is not None
        kind, addr, index = parsed
        out.append((kind, str(addr), index, flags))
    return out


def test_one_datagram_of_acked_exclusive_creates() -> None:
    index = {"eth0": 2, "eth1": 7}
    reqs = AddressRequests(VIPS)
    assert reqs.ready(index.get)
    want = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | 1
    assert _parsed(reqs) == [
        (RTM_NEWADDR, "198.18.0.100", 2, want),
        (RTM_NEWADDR, "198.18.1.1", 7, want),  # IFA_LOCAL: ours, not the peer
        (RTM_NEWADDR, str(ipaddress.ip_address("2001:db8::100")), 2, want),
    ]


def test_rebuilt_when_an_index_changes_refused_when_unknown() -> None:
    index = {"eth0": 2, "eth1": 7}
    reqs = AddressRequests(VIPS)
    assert reqs.ready(index.get)
    before = reqs.data
    assert reqs.ready(index.get) and reqs.data is before  # nothing changed: not rebuilt
    index["eth1"] = 9  # the interface came back under a new index
    assert reqs.ready(index.get)
    assert [i for _, _, i, _ in _parsed(reqs)] == [2, 9, 2]
    del index["eth1"]  # gone: the slow path's business
    assert not reqs.ready(index.get)
