"""The VRRP runtime without a network: config -> InstanceSpec, and the JSON signal's shape."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from fastha.config.loader import load
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.from_config import InstanceSpec, vrrp_spec
from fastha.runtime.vrrp.instance import Instance

BASE = """
global_defs {{
    router_id t
    vrrp_garp_master_refresh 5
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
{extra}
    virtual_ipaddress {{
        198.18.0.100/24
        198.18.0.101/24 dev eth1
    }}
}}
"""


def _spec(tmp_path: Path, extra: str = "") -> InstanceSpec:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BASE.format(extra=extra))
    result = load(conf)
    assert result.config is not None, [str(d) for d in result.diagnostics]
    (spec,) = vrrp_spec(result.config).instances
    return spec


def test_plain_instance_sends_on_its_interface(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert spec.vmac is None and spec.sock_ifname == "eth0"
    assert [v.dev for v in spec.vips] == ["eth0", "eth1"]
    assert spec.params.garp_master_refresh_ns == 5 * 10**9


def test_use_vmac_default_name_carries_vips_and_adverts(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "    use_vmac")
    assert spec.vmac == "vrrp.51"
    assert spec.ifname == "eth0"  # the base: primary address and link state
    assert spec.sock_ifname == "vrrp.51"
    # keepalived: addresses without dev go on the VMAC, an explicit dev is kept.
    assert [v.dev for v in spec.vips] == ["vrrp.51", "eth1"]


def test_use_vmac_named_and_xmit_base(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "    use_vmac vmac51\n    vmac_xmit_base")
    assert spec.vmac == "vmac51"
    assert spec.sock_ifname == "eth0"
    assert spec.vips[0].dev == "vmac51"


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    spec = _spec(
        tmp_path, "    notify_master /bin/true\n    track_interface {\n        eth1\n    }"
    )
    ctx: Any = Context(None, None, None, None, None)  # type: ignore[arg-type]
    return Instance(spec, ctx, "198.18.0.11")


def test_json_entry_has_keepalived_shape(instance: Instance) -> None:
    entry = instance.status()
    data, stats = entry["data"], entry["stats"]
    assert data["iname"] == "VI_1" and data["vrid"] == 51 and data["version"] == 2
    assert data["state"] == 0  # VRRP_STATE_INIT before Startup
    assert data["base_priority"] == 150 and data["effective_priority"] == 150
    assert data["ifp_ifname"] == "eth0" and data["garp_refresh"] == 5
    # keepalived's format_ipaddress(); " set" once the VIPs are on the interface
    assert data["vips"] == [
        "198.18.0.100/24 dev eth0 scope global",
        "198.18.0.101/24 dev eth1 scope global",
    ]
    # keepalived runs (and shows) the script by its resolved path: /usr/bin/true where
    # /bin is a link to usr/bin.
    assert data["track_ifp"] == ["eth1"]
    assert data["script_master"] == os.path.realpath("/bin/true")
    assert data["accept"] == 1 and data["vipset"] is False
    for key in ("advert_rcvd", "advert_sent", "become_master", "release_master",
                "packet_len_err", "ip_ttl_err", "auth_failure", "pri_zero_rcvd",
                "pri_zero_sent"):  # fmt: skip
        assert stats[key] == 0, key
    # fastha's summary beside it, for tools that want names not numbers.
    assert entry["name"] == "VI_1" and entry["state"] == "INIT"
    assert entry["counters"]["drops"] == {}


def test_json_counts_drops_under_keepalived_names(instance: Instance) -> None:
    instance.counters.count_drop("TTL")
    instance.counters.count_drop("AUTH_FAILURE")
    instance.counters.count_drop("TOO_SHORT")
    stats = instance.status()["stats"]
    assert stats["ip_ttl_err"] == 1 and stats["auth_failure"] == 1
    assert stats["packet_len_err"] == 1
    assert instance.family == socket.AF_INET


def _unicast_instance(tmp_path: Path, peer_line: str) -> tuple[Instance, list[Any]]:
    spec = _spec(
        tmp_path,
        f"    unicast_src_ip 198.18.0.11\n    unicast_peer {{\n        {peer_line}\n    }}",
    )
    ctx: Any = Context(None, None, None, None, None)  # type: ignore[arg-type]
    inst = Instance(spec, ctx, "198.18.0.11")
    fed: list[Any] = []
    inst.feed = lambda event, now_ns=None: fed.append(event)  # type: ignore[method-assign]
    return inst, fed


def _advert_from_peer(ttl: int) -> tuple[memoryview, str, str, int, int]:
    from fastha.wire import encode_v2

    vips = [socket.inet_aton("198.18.0.100"), socket.inet_aton("198.18.0.101")]
    return memoryview(encode_v2(51, 100, 1, vips)), "198.18.0.12", "198.18.0.11", ttl, 2


@pytest.mark.unit
@pytest.mark.parametrize("ttl", [255, 64, 1])
def test_unicast_accepts_any_ttl_without_peer_bounds(tmp_path: Path, ttl: int) -> None:
    # keepalived checks TTL 255 for multicast only; keepalived 2.2.7 itself sends IPv6
    # unicast adverts with hop limit 64.
    inst, fed = _unicast_instance(tmp_path, "198.18.0.12")
    inst.on_packet(*_advert_from_peer(ttl))
    assert len(fed) == 1 and fed[0].priority == 100
    assert inst.counters.drops == {}


@pytest.mark.unit
@pytest.mark.parametrize(("ttl", "accepted"), [(250, True), (255, True), (249, False), (64, False)])
def test_unicast_peer_ttl_bounds(tmp_path: Path, ttl: int, accepted: bool) -> None:
    inst, fed = _unicast_instance(tmp_path, "198.18.0.12 min_ttl 250 max_ttl 255")
    inst.on_packet(*_advert_from_peer(ttl))
    assert bool(fed) is accepted
    assert inst.counters.drops == ({} if accepted else {"TTL": 1})


# -- issue 14: what keepalived 2.2.7 does at run time (tests/conformance has the labs) --------


def _specs(tmp_path: Path, text: str) -> list[InstanceSpec]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    result = load(conf)
    assert result.config is not None, [str(d) for d in result.diagnostics]
    return list(vrrp_spec(result.config).instances)


def _one(body: str, glob: str = "") -> str:
    return (
        f"global_defs {{\n{glob}\n}}\nvrrp_instance VI_1 {{\n    interface eth0\n"
        f"    virtual_router_id 51\n{body}\n"
        "    virtual_ipaddress {\n        198.18.0.100/24\n    }\n}\n"
    )


def test_state_master_without_priority_is_the_address_owner(tmp_path: Path) -> None:
    (spec,) = _specs(tmp_path, _one("    state MASTER"))
    assert spec.params.priority == 255  # vrrp_complete_instance: VRRP_PRIO_OWNER
    (spec,) = _specs(tmp_path, _one("    state BACKUP"))
    assert spec.params.priority == 100


def test_strict_mode_clears_authentication_and_resets_like_keepalived(tmp_path: Path) -> None:
    body = (
        "    authentication {\n        auth_type PASS\n        auth_pass secret1\n    }\n"
        "    lower_prio_no_advert false\n    higher_prio_send_advert true\n"
        "    garp_lower_prio_repeat 3\n    garp_lower_prio_delay 2"
    )
    (spec,) = _specs(tmp_path, _one(body, "    vrrp_strict"))
    assert (spec.auth_type, spec.auth_data) == (0, b"")
    params, _ = spec.params.normalised()
    assert params.lower_prio_no_advert is True and params.higher_prio_send_advert is False
    assert params.garp_lower_prio_repeat == 0 and params.garp_lower_prio_delay_ns == 0
    (spec,) = _specs(tmp_path, _one(body))  # not strict: all of it as written
    assert spec.auth_type == 1 and spec.auth_data == b"secret1"
    params, _ = spec.params.normalised()
    assert params.lower_prio_no_advert is False and params.higher_prio_send_advert is True
    assert params.garp_lower_prio_repeat == 3


def test_ipv6_addresses_are_added_without_dad_unless_minus_nodad(tmp_path: Path) -> None:
    text = _one("    virtual_ipaddress_excluded {\n        fd00::1/64\n        fd00::2/64 -nodad\n"
                "        198.18.0.200/24\n    }")  # fmt: skip
    (spec,) = _specs(tmp_path, text)
    assert [v.nodad for v in spec.excluded] == [True, False, False]


def test_notify_priority_changes_instance_group_global(tmp_path: Path) -> None:
    (spec,) = _specs(tmp_path, _one("", "    vrrp_notify_priority_changes"))
    assert spec.notify_priority_changes
    (spec,) = _specs(tmp_path, _one("    notify_priority_changes false",
                                    "    vrrp_notify_priority_changes"))  # fmt: skip
    assert not spec.notify_priority_changes
    (spec,) = _specs(tmp_path, _one(""))
    assert not spec.notify_priority_changes


class _Sock:
    tx = None  # no send queue: the Python send path, whose messages are recorded here
    ifindex = 0

    def __init__(self) -> None:
        self.each: list[list[bytes]] = []
        self.one: list[bytes] = []

    def send_each(self, payloads: list[bytes], frame: object = None, report: object = None) -> int:
        self.each.append(list(payloads))  # the VRRP messages, before any IP header
        return len(payloads)

    def send(self, payload: bytes, frame: object = None, report: object = None) -> int:
        self.one.append(payload)
        return 1


def _v3_checksum_ok(payload: bytes, src: str, dst: str) -> bool:
    import struct

    data = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(payload))
    data += payload
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_v3_unicast_each_peer_gets_its_own_checksum(tmp_path: Path) -> None:
    body = (
        "    priority 200\n    unicast_src_ip 198.18.0.11\n"
        "    unicast_peer {\n        198.18.0.12\n        198.18.0.13\n    }"
    )
    (spec,) = _specs(tmp_path, _one(body, "    vrrp_version 3"))
    ctx: Any = Context(None, None, None, None, None)  # type: ignore[arg-type]
    inst = Instance(spec, ctx, "198.18.0.11")
    sock = _Sock()
    inst.sock = sock  # type: ignore[assignment]
    inst._send(200)
    (copies,) = sock.each
    assert not sock.one and len(copies) == 2
    for payload, peer in zip(copies, ("198.18.0.12", "198.18.0.13"), strict=True):
        assert _v3_checksum_ok(payload, "198.18.0.11", peer), peer
    # the same bytes to both peers would fail at one of them (the issue's split brain)
    assert not _v3_checksum_ok(copies[0], "198.18.0.11", "198.18.0.13")


def test_stats_clear_zeroes_every_counter() -> None:
    from fastha.vrrp.counters import Counters

    c = Counters(advert_rcvd=5, advert_sent=7, become_master=1, pri_zero_sent=1)
    c.count_drop("TTL")
    c.clear()
    assert c == Counters()


def test_paced_bursts_as_keepalived_queues_them() -> None:
    """vrrp_gna_interval / vrrp_garp_interval: keepalived sends an interface's first frame
    at once and queues the rest with a flag per address, so repeat 2 sends the first
    address twice and the others once (seen in keepalived 2.2.7's -D log); without an
    interval every address goes repeat times at once."""
    from fastha.runtime.vrrp.gratuitous import paced

    eth0, eth1 = object(), object()
    frames = [(eth0, b"a", 0.01, True), (eth0, b"b", 0.01, True), (eth1, b"c", 0.02, False)]
    sends = [(frame, wait) for _sender, frame, wait in paced(frames, 2)]  # type: ignore[arg-type]
    assert sends == [(b"a", 0.0), (b"c", 0.0), (b"b", 0.01), (b"a", 0.01), (b"c", 0.02)]
    plain = [(s, f, 0.0, False) for s, f, _g, _v in frames]
    assert [f for _s, f, w in paced(plain, 2)] == [b"a", b"b", b"c"] * 2  # type: ignore[arg-type]


def test_a_burst_asked_for_while_one_runs_is_sent_too() -> None:
    """A new master hearing the old one's advert asks for the lower-priority burst right
    after its own: keepalived 2.2.7 sends both (4 NAs an address with repeat 2, seen in
    conformance v3_ipv6_globals); the second must not cancel the first before it ran."""
    import asyncio
    from types import SimpleNamespace

    from fastha.runtime.vrrp.gratuitous import Announcer
    from fastha.vrrp.states import State

    sent: list[bytes] = []
    sender = SimpleNamespace(mac_bytes=b"\x02\xfa\x00\x00\x00\x01", send=sent.append)
    vip = SimpleNamespace(dev=None, family=socket.AF_INET, address="198.18.0.100")
    spec = SimpleNamespace(vips=[vip], excluded=[], ifname="eth0", garp_interval_s=0.0,
                           gna_interval_s=0.0)  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ctx = SimpleNamespace(loop=loop, sender=lambda _dev: sender, gna_router=lambda _d: False)
        ann = Announcer(ctx, "VI_1", SimpleNamespace(state=State.MASTER))  # type: ignore[arg-type]
        await ann.announce(spec, 2, None)  # type: ignore[arg-type]
        await ann.announce(spec, 2, None)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert len(sent) == 4
