"""The reload plan: two keepalived.conf files -> which instances stay, change in place,
restart, stop or start (fastha.runtime.vrrp.from_config.diff_specs), and lvs_sync_daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastha.config.loader import load
from fastha.config.validate import Host
from fastha.drivers.firewall import ruleset
from fastha.runtime.vrrp.from_config import LvsSyncSpec, VrrpSpec, diff_specs, vrrp_spec

pytestmark = pytest.mark.unit


def instance(
    name: str = "VI_1",
    *,
    interface: str = "eth0",
    vrid: int = 51,
    priority: int = 100,
    advert_int: str = "1",
    vips: tuple[str, ...] = ("198.18.0.100/24",),
    extra: str = "",
) -> str:
    return (
        f"vrrp_instance {name} {{\n    interface {interface}\n    virtual_router_id {vrid}\n"
        f"    priority {priority}\n    advert_int {advert_int}\n{extra}"
        "    virtual_ipaddress {\n" + "".join(f"        {v}\n" for v in vips) + "    }\n}\n"
    )


def spec(tmp_path: Path, *blocks: str, name: str = "a.conf") -> VrrpSpec:
    conf = tmp_path / name
    conf.write_text("global_defs {\n    router_id t\n}\n" + "".join(blocks))
    # The interfaces named here (eth1...) need not exist on the test host.
    result = load(conf, host=Host(check_interfaces=False))
    assert result.ok, [str(d) for d in result.diagnostics]
    return vrrp_spec(result.config)


def test_same_file_is_an_empty_plan(tmp_path: Path) -> None:
    text = (instance(), instance("VI_2", vrid=52, vips=("198.18.0.102/24",)))
    d = diff_specs(spec(tmp_path, *text), spec(tmp_path, *text, name="b.conf"))
    assert d.empty
    assert d.unchanged == ("VI_1", "VI_2")
    assert not (d.changed or d.restarted or d.added or d.removed)


def test_priority_advert_int_and_vips_change_in_place(tmp_path: Path) -> None:
    old = spec(tmp_path, instance())
    new = spec(
        tmp_path,
        instance(priority=200, advert_int="2", vips=("198.18.0.100/24", "198.18.0.101/24")),
        name="b.conf",
    )
    d = diff_specs(old, new)
    assert not d.restarted and not d.unchanged
    (ch,) = d.changed
    assert ch.name == "VI_1"
    assert set(ch.changes) == {"priority", "advert_int", "virtual_ipaddress"}
    assert ch.new.params.priority == 200


@pytest.mark.parametrize(
    ("kwargs", "extra", "why"),
    [
        ({"interface": "eth1"}, "", "interface"),
        ({"vrid": 52}, "", "virtual_router_id"),
        ({"vips": ("fd00:198:18::100/64",)}, "", "family"),
        ({}, "    unicast_peer {\n        198.18.0.12\n    }\n", "unicast/multicast"),
    ],
)
def test_identity_change_restarts(
    tmp_path: Path, kwargs: dict[str, object], extra: str, why: str
) -> None:
    d = diff_specs(spec(tmp_path, instance()), spec(tmp_path, instance(**kwargs, extra=extra),
                                                       name="b.conf"))  # type: ignore[arg-type]  # fmt: skip
    assert not d.changed
    (ch,) = d.restarted
    assert why in ch.changes


def test_added_and_removed_instances(tmp_path: Path) -> None:
    old = spec(tmp_path, instance(), instance("VI_2", vrid=52))
    new = spec(tmp_path, instance(), instance("VI_3", vrid=53), name="b.conf")
    d = diff_specs(old, new)
    assert d.unchanged == ("VI_1",)
    assert [s.name for s in d.added] == ["VI_3"]
    assert [s.name for s in d.removed] == ["VI_2"]
    assert d.summary() == "1 unchanged, 0 changed, 0 restarted, 1 added, 1 removed"


def test_track_script_and_vrrp_script_changes(tmp_path: Path) -> None:
    script = 'vrrp_script chk {{\n    script "/bin/true"\n    weight {w}\n}}\n'
    tracked = "    track_script {\n        chk\n    }\n"
    old = spec(tmp_path, script.format(w=10), instance())
    new = spec(tmp_path, script.format(w=20), instance(extra=tracked), name="b.conf")
    d = diff_specs(old, new)
    assert d.scripts == ("chk",)
    (ch,) = d.changed
    assert ch.changes == ("track_scripts",)


def test_sync_group_change(tmp_path: Path) -> None:
    group = "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
    blocks = (instance(), instance("VI_2", vrid=52))
    d = diff_specs(spec(tmp_path, *blocks), spec(tmp_path, group, *blocks, name="b.conf"))
    assert d.groups
    assert {c.name for c in d.changed} == {"VI_1", "VI_2"}
    assert all(c.changes == ("sync_group",) for c in d.changed)


def test_lvs_sync_daemon_resolves_instance_and_syncid(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text(
        "global_defs {\n    lvs_sync_daemon eth0 VI_1 maxlen 1400 ttl 2 group 224.0.0.82\n}\n"
        + instance(vrid=42)
    )
    result = load(conf)
    assert result.ok, [str(d) for d in result.diagnostics]
    s = vrrp_spec(result.config)
    assert s.lvs_syncd == LvsSyncSpec(
        instance="VI_1", ifname="eth0", syncid=42, maxlen=1400, mcast_group="224.0.0.82",
        mcast_ttl=2,
    )  # fmt: skip
    old = spec(tmp_path, instance(vrid=42))
    d = diff_specs(old, s)
    assert d.lvs_syncd and d.unchanged == ("VI_1",)


def test_sync_group_tracking_reaches_every_member(tmp_path: Path) -> None:
    """keepalived applies a vrrp_sync_group's track_* to each member; a name the member
    tracks itself with a weight takes the group's line (add_vrrp_to_track_script)."""
    s = spec(
        tmp_path,
        "vrrp_script chk {\n    script /bin/true\n}\n",
        "vrrp_track_process tp {\n    process haproxy\n}\n",
        instance(extra="    track_script {\n        chk weight 5\n    }\n"),
        instance("VI_2", vrid=52, vips=("198.18.0.102/24",)),
        "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n"
        "    track_script {\n        chk\n    }\n    track_process {\n        tp\n    }\n"
        "    track_interface {\n        eth1\n    }\n}\n",
    )
    vi_1, vi_2 = s.instances
    assert [(t.name, t.weight) for t in vi_1.track_scripts] == [("chk", None)]
    assert [(t.name, t.weight) for t in vi_2.track_scripts] == [("chk", None)]
    assert (
        [t.name for t in vi_1.track_processes] == [t.name for t in vi_2.track_processes] == ["tp"]
    )
    assert vi_1.track_interfaces == vi_2.track_interfaces == (("eth1", 0, False),)
    assert vi_1.sync_group == vi_2.sync_group == "G"


def test_no_accept_addresses_are_those_of_instances_not_in_accept_mode(tmp_path: Path) -> None:
    s = spec(
        tmp_path,
        instance(
            extra="    no_accept\n    virtual_ipaddress_excluded {\n        198.18.1.1\n    }\n"
        ),
        instance("VI_2", vrid=52, vips=("198.18.0.102/24",)),  # accept: keepalived's default
        # The owner always accepts.
        instance("VI_3", vrid=53, priority=255, vips=("198.18.0.103/24",), extra="    no_accept\n"),
    )
    assert s.no_accept_addresses() == {"198.18.0.100", "198.18.1.1"}
    strict = spec(tmp_path, "global_defs {\n    vrrp_strict\n}\n", instance(), name="s.conf")
    assert strict.no_accept_addresses() == {"198.18.0.100"}
    assert (strict.nft_table, strict.nft_priority) == (None, -1)


def test_no_accept_ruleset() -> None:
    text = ruleset("t1", ["198.18.0.10", "fd00::1", "198.18.0.9", "198.18.0.10"], priority=-5)
    assert text.splitlines()[:2] == ["table inet t1 {}", "delete table inet t1"]
    assert "set vips4 { type ipv4_addr; elements = { 198.18.0.9, 198.18.0.10 }; }" in text
    assert "set vips6 { type ipv6_addr; elements = { fd00::1 }; }" in text
    assert text.count("priority -5; policy accept;") == 2
    assert "ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept" in text
    assert "set vips6 { type ipv6_addr; }" in ruleset("t1", ["198.18.0.1"])


def test_rules_without_preference_get_keepalived_countdown(tmp_path: Path) -> None:
    """keepalived's vrrp_iprule.c: a rule with no preference gets the next of a
    per-family countdown from 16384, in read order (static_rules first here)."""
    statics = (
        "static_rules {\n    from 198.19.100.0/24 table 1\n"
        "    from 2001:db8::/64 table 1\n    to 198.19.101.0/24 table 1 priority 500\n}\n"
    )
    rules = "    virtual_rules {\n        from 198.18.0.0/24 table 2\n    }\n"
    s = spec(tmp_path, statics, instance(extra=rules))
    assert [r.priority for r in s.static_rules] == [16384, 16384, 500]
    assert [r.priority for r in s.instances[0].rules] == [16383]
    # a reload of the same file plans no rule change
    again = spec(tmp_path, statics, instance(extra=rules), name="b.conf")
    assert diff_specs(s, again).empty


def test_vmac_xmit_base_reset_in_strict_mode(tmp_path: Path) -> None:
    """keepalived (vrrp.c): "xmit_base is incompatible with strict mode - resetting"."""
    extra = "    use_vmac\n    vmac_xmit_base\n"
    plain = spec(tmp_path, instance(extra=extra))
    strict = spec(tmp_path, instance(extra=extra + "    strict_mode true\n"), name="b.conf")
    assert plain.instances[0].vmac_xmit_base
    assert not strict.instances[0].vmac_xmit_base
    result = load(tmp_path / "b.conf")
    assert any(
        "xmit_base is incompatible with strict mode" in d.message for d in result.diagnostics
    )


def test_a_tracker_on_instance_and_sync_group_takes_the_groups_weight(tmp_path: Path) -> None:
    """keepalived's add_vrrp_to_track_script: "We will use the sync group's weight
    unless the vrrp setting is unweighted"."""
    scripts = (
        'vrrp_script s1 {\n    script "/bin/true"\n    weight -10\n}\n'
        'vrrp_script s2 {\n    script "/bin/true"\n}\n'
    )
    group = (
        "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n"
        "    track_script {\n        s1 weight -5\n        s2 weight 7\n    }\n"
        "    sync_group_tracking_weight\n}\n"
    )
    extra = "    track_script {\n        s1\n        s2\n    }\n"
    s = spec(tmp_path, scripts, group, instance(extra=extra))
    got = {t.name: t.weight for t in s.instances[0].track_scripts}
    assert got == {"s1": -5, "s2": None}  # s2's own weight is 0: unweighted, kept
