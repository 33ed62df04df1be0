"""VRRP keyword tables and checks, through the real loader on small files."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from fastha.config.diagnostics import ExitCode, Severity
from fastha.config.loader import LoadResult, load
from fastha.config.model_vrrp import AuthType, ParamMatch, State
from fastha.config.validate import Host
from fastha.config.validate_unsupported import INSTANCE
from fastha.runtime.vrrp.from_config import vrrp_spec

# The scripts named here do not exist: script security has tests of its own
# (test_config_scripts.py).
HOST = Host(interfaces=frozenset({"eth0", "eth1", "lo"}), check_scripts=False)
pytestmark = pytest.mark.unit


def run(tmp_path: Path, text: str) -> LoadResult:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return load(path, host=HOST)


def messages(result: LoadResult) -> list[str]:
    return [d.message for d in result.diagnostics]


BASIC = """
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.10/24 dev eth0 label eth0:vip brd 192.0.2.255 scope global
        192.0.2.11
    }
}
"""


def test_basic_instance(tmp_path: Path) -> None:
    result = run(tmp_path, BASIC)
    assert result.diagnostics == ()
    assert result.exit_code == ExitCode.OK
    (vi,) = result.config.vrrp_instances
    assert vi.name == "VI_1" and vi.state is State.MASTER and vi.priority == 150
    assert vi.authentication.auth_type is AuthType.PASS
    vip = vi.virtual_ipaddresses[0]
    assert vip.address == ipaddress.ip_interface("192.0.2.10/24")
    assert (vip.dev, vip.label, vip.scope) == ("eth0", "eth0:vip", "global")
    assert vip.brd == ipaddress.ip_address("192.0.2.255")
    assert vi.virtual_ipaddresses[1].address.network.prefixlen == 32
    assert vi.where is not None and vi.where.line == 2


def test_defaults(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n"
        " virtual_ipaddress { 10.0.0.1 }\n}\n",
    )
    vi = result.config.vrrp_instances[0]
    assert vi.priority is None and vi.advert_int == 1.0 and not vi.nopreempt
    assert vi.state is None and vi.accept is None
    assert result.exit_code == ExitCode.OK


def test_all_instance_keywords_parse(tmp_path: Path) -> None:
    text = """
vrrp_script chk { script "/bin/true x"
 interval 2
 timeout 3
 weight -10 reverse
 rise 2
 fall 3
 user nobody nogroup
 init_fail }
track_file tf { file /run/tf
 weight 5 reverse
 init_file 3 overwrite }
vrrp_track_process tp { process haproxy -f /etc/h.cfg
 param_match partial
 weight 10
 quorum 2
 quorum_max 4
 delay 0.5
 full_command }
track_group TG { group { V } }
vrrp_instance V {
 state BACKUP
 interface eth0
 use_vmac vrrp.51 02:00:00:00:00:01
 vmac_xmit_base
 dont_track_primary
 track_interface { eth1 weight -20
 eth0 }
 track_script { chk weight 5 }
 track_file { tf weight 2 reverse }
 track_process { tp }
 unicast_src_ip 10.0.0.2
 unicast_peer { 10.0.0.3 min_ttl 1 max_ttl 5
 10.0.0.4 }
 unicast_ttl 10
 version 2
 virtual_router_id 51
 priority 100
 advert_int 2
 garp_master_delay 1
 garp_master_repeat 2
 garp_master_refresh 30
 garp_master_refresh_repeat 2
 garp_lower_prio_delay 3
 garp_lower_prio_repeat 4
 garp_extra_if all 60
 down_timer_adverts 5
 lower_prio_no_advert
 higher_prio_send_advert false
 virtual_ipaddress { 10.0.0.1/24 track_group TG
 10.0.0.9/24 -nodad noprefixroute home no_track }
 virtual_ipaddress_excluded { 10.1.0.1/24 }
 virtual_routes { src 10.0.0.1 to 10.2.0.0/16 via 10.0.0.254 dev eth0 table 5 metric 3
 blackhole 10.3.0.0/16
 default via 10.0.0.254 protocol static no_track }
 virtual_rules { from 10.0.0.0/24 table 5 priority 100
 to 10.9.0.0/16 lookup main iif eth0 fwmark 0x10/0xff }
 no_accept
 nopreempt
 preempt_delay 10
 skip_check_adv_addr on
 strict_mode off
 debug 2
 notify_master "/bin/notify master" nobody
 notify_backup /bin/notify
 notify_fault /bin/notify
 notify_stop /bin/notify
 notify /bin/notify root root
 notify_master_rx_lower_pri /bin/notify
 notify_priority_changes
 smtp_alert yes
 kernel_rx_buf_size 65536
 promote_secondaries
}
"""
    result = run(tmp_path, text)
    assert [d for d in result.diagnostics if d.severity is Severity.ERROR] == []
    cfg = result.config
    vs = cfg.vrrp_scripts[0]
    assert (vs.script, vs.interval, vs.timeout, vs.weight, vs.weight_reverse) == (
        "/bin/true x",
        2,
        3,
        -10,
        True,
    )
    assert (vs.rise, vs.fall, vs.user, vs.group, vs.init_fail) == (2, 3, "nobody", "nogroup", True)
    tf = cfg.track_files[0]
    assert (tf.weight, tf.weight_reverse, tf.init_file_value, tf.init_file_overwrite) == (
        5,
        True,
        3,
        True,
    )
    tp = cfg.vrrp_track_processes[0]
    assert tp.process == ("haproxy", "-f", "/etc/h.cfg")
    assert (tp.fork_delay, tp.terminate_delay, tp.quorum_max) == (0.5, 0.5, 4)
    vi = cfg.vrrp_instances[0]
    assert vi.use_vmac.name == "vrrp.51" and vi.use_vmac.mac == "02:00:00:00:00:01"
    assert [(t.name, t.weight) for t in vi.track_interfaces] == [("eth1", -20), ("eth0", None)]
    assert vi.track_files[0].reverse
    assert vi.mcast_src_ip == ipaddress.ip_address("10.0.0.2")
    assert [(p.min_ttl, p.max_ttl) for p in vi.unicast_peers] == [(1, 5), (None, None)]
    assert (vi.garp_extra_if, vi.garp_extra_if_all) == (60, True)
    assert vi.lower_prio_no_advert is True and vi.higher_prio_send_advert is False
    assert vi.virtual_ipaddresses[0].track_group == "TG"
    assert vi.virtual_ipaddresses[1].nodad and vi.virtual_ipaddresses[1].no_track
    routes = vi.virtual_routes
    assert routes[0].via == ipaddress.ip_address("10.0.0.254") and routes[0].table == 5
    assert routes[1].type == "blackhole" and routes[2].to is None
    # keepalived's protocol (18) on what it tracks; as given with no_track.
    assert routes[0].protocol == 18 and routes[2].protocol == 4
    rules = vi.virtual_rules
    assert rules[0].priority == 100 and (rules[1].fwmark, rules[1].fwmask) == (16, 255)
    assert vi.accept is False and vi.nopreempt and vi.skip_check_adv_addr
    assert vi.strict_mode is False and vi.debug == 2
    assert vi.notify_master.command == "/bin/notify master"
    assert vi.notify_master.username == "nobody"
    assert vi.notify.groupname == "root" and vi.smtp_alert is True


def test_sync_group_and_old_syntax(tmp_path: Path) -> None:
    base = BASIC + BASIC.replace("VI_1", "VI_2").replace("51", "52")
    new = run(
        tmp_path,
        base + "vrrp_sync_group G {\n group { VI_1\n VI_2 }\n"
        " notify_master /bin/m\n sync_group_tracking_weight\n}\n",
    )
    assert new.diagnostics == ()
    old = run(tmp_path, base + "vrrp_sync_group G {\n VI_1 VI_2\n global_tracking\n}\n")
    assert old.config.vrrp_sync_groups[0].group == ("VI_1", "VI_2")
    assert old.config.vrrp_sync_groups[0].sync_group_tracking_weight
    assert any("deprecated" in m and "group" in m for m in messages(old))
    assert any("'global_tracking' is deprecated" in m for m in messages(old))


def test_deprecated_spellings(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "vrrp_track_file f {\n file /x\n}\n"
        + BASIC.replace(
            "advert_int 1",
            "advert_int 1\n lvs_sync_daemon_interface eth0\n"
            " vmac_garp_intvl 30\n linkbeat_use_polling",
        ),
    )
    msgs = messages(result)
    assert "'vrrp_track_file' is deprecated, use 'track_file'" in msgs
    assert "'lvs_sync_daemon_interface' is deprecated, use 'lvs_sync_daemon'" in msgs
    assert "'vmac_garp_intvl' is deprecated, use 'garp_extra_if'" in msgs
    assert result.config.track_files[0].name == "f"
    assert result.config.vrrp_instances[0].garp_extra_if == 30
    assert not result.errors


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("virtual_router_id 0", "out of range"),
        ("virtual_router_id 256", "out of range"),
        ("priority 0", "out of range"),
        ("priority 256", "out of range"),
        ("advert_int 300", "out of range"),
        ("state UP", "not one of"),
        ("version 4", "out of range"),
        ("mcast_src_ip 10.0.0", "not a valid IP"),
        ("track_script { chk weight 254 }", "out of range"),
        ("virtual_ipaddress { 10.0.0.1/33 }", "not a valid"),
        ("virtual_ipaddress { 10.0.0.1 bogus }", "unknown option"),
        ("virtual_routes { 10.0.0.0/8 via 2001:db8::1 }", "Cannot mix IPv4 and IPv6"),
        ("virtual_rules { from 10.0.0.0/8 frobnicate 1 }", "Unknown rule option frobnicate"),
        ("virtual_routes { 10.0.0.0/8 from 10.1.0.0/16 }", "only supported with IPv6"),
        ("virtual_routes { 10.0.0.0/8 pref high }", "pref is only valid for IPv6"),
        ("virtual_routes { 2001:db8::/64 realms 1 }", "realms is only valid for IPv4"),
        ("virtual_routes { 10.0.0.0/8 rtt 1e3 }", "Invalid rtt 1e3"),
        ("virtual_routes { 10.0.0.0/8 rto_min 5m }", "Invalid rto_min 5m"),
    ],
)
def test_bad_values_are_errors(tmp_path: Path, line: str, fragment: str) -> None:
    result = run(tmp_path, BASIC.replace("advert_int 1", line))
    errors = [d for d in result.errors if fragment in d.message]
    assert errors, messages(result)
    assert result.exit_code == ExitCode.CONFIG


def two(extra1: str = "", extra2: str = "", vrid2: int = 51, vip2: str = "10.0.0.2") -> str:
    return (
        f"vrrp_instance V {{\n interface eth0\n virtual_router_id 51\n{extra1}\n"
        " virtual_ipaddress { 10.0.0.1 }\n}\n"
        f"vrrp_instance W {{\n interface eth0\n virtual_router_id {vrid2}\n{extra2}\n"
        f" virtual_ipaddress {{ {vip2} }}\n}}\n"
    )


def test_vrid_unique_per_interface_and_family(tmp_path: Path) -> None:
    result = run(tmp_path, two())
    assert [d.message for d in result.errors] == [
        "V and W both use VRID 51 with IPv4 on interface eth0"
    ]
    assert not run(tmp_path, two(vip2="fe80::1")).errors  # other family
    assert not run(tmp_path, two(extra2=" interface eth1")).errors  # other interface
    assert not run(tmp_path, two(vrid2=52)).errors


def test_missing_vrid(tmp_path: Path) -> None:
    result = run(
        tmp_path, "vrrp_instance V {\n interface eth0\n virtual_ipaddress { 10.0.0.1 }\n}\n"
    )
    assert "(V) the virtual router id must be set" in [d.message for d in result.errors]


def one(body: str, pre: str = "") -> str:
    return pre + "vrrp_instance V {\n interface eth0\n virtual_router_id 51\n" + body + "\n}\n"


VIP = " virtual_ipaddress { 10.0.0.1 }"


@pytest.mark.parametrize(
    ("text", "expected", "code"),
    [
        (
            one("advert_int 1.5\n" + VIP),
            "(V) VRRPv2 advertisement interval 1.500000s must be an integer. rounding",
            ExitCode.CONFIG,
        ),
        (
            one("version 3\n advert_int 0.015\n" + VIP),
            "(V) VRRPv3 advertisement interval 0.015000s must be in units of 10ms - rounding",
            ExitCode.CONFIG,
        ),
        (
            one("version 3\n advert_int 50\n" + VIP),
            "(V) VRRPv3 advertisement interval 50.00s "
            "is out of range. Must be less than 40.96s. Setting to 40.95s",
            ExitCode.CONFIG,
        ),
        (
            one("state MASTER\n priority 100\n nopreempt\n" + VIP),
            "(V) Warning - nopreempt will not work with initial state MASTER - clearing",
            ExitCode.CONFIG,
        ),
        (
            one("priority 255\n nopreempt\n" + VIP),
            "(V) nopreempt is incompatible with priority 255. resetting nopreempt",
            ExitCode.CONFIG,
        ),
        (
            one("state MASTER\n nopreempt\n" + VIP),
            "(V) nopreempt is incompatible with priority 255. resetting nopreempt",
            ExitCode.CONFIG,
        ),
        (
            one("state MASTER\n priority 100\n preempt_delay 10\n" + VIP),
            "(V) Warning - preempt delay will not work with initial state MASTER - clearing",
            ExitCode.CONFIG,
        ),
        (one(""), "(V) No VIP specified; at least one is sensible", ExitCode.CONFIG),
        (
            one(" virtual_ipaddress { 2001:db8::1 }"),
            "(V) the first IPv6 VIP address should be link local",
            ExitCode.OK,
        ),
        (
            one(" version 2\n strict_mode\n virtual_ipaddress { fe80::1 }"),
            "(V) cannot use IPv6 with VRRP version 2; setting version 3",
            ExitCode.CONFIG,  # keepalived -t: 5
        ),
        (
            one(" virtual_ipaddress { 10.0.0.1\n 2001:db8::1 }"),
            "(V): address family must match VRRP instance [2001:db8::1] - ignoring",
            ExitCode.CONFIG,
        ),
        (
            one(" version 3\n authentication { auth_type PASS\n auth_pass x }\n" + VIP),
            "(V) VRRP version 3 does not support authentication. Ignoring.",
            ExitCode.CONFIG,
        ),
        (
            one(" authentication { auth_type PASS\n auth_pass 0123456789 }\n" + VIP),
            "Truncating auth_pass to 8 characters",
            ExitCode.CONFIG,
        ),
        (
            one(
                " authentication { auth_type PASS\n auth_pass x }\n" + VIP,
                pre="global_defs { vrrp_strict }\n",
            ),
            "(V) Strict mode does not support authentication. Ignoring.",
            ExitCode.CONFIG,
        ),
        (
            one(" state MASTER\n priority 100\n strict_mode\n" + VIP),
            "(V) State MASTER must match being address owner",
            ExitCode.CONFIG,
        ),
        (
            one(" strict_mode on\n unicast_peer { 10.0.0.2 }\n" + VIP),
            "(V) Unicast peers are not supported in strict mode",
            ExitCode.CONFIG,
        ),
        (
            one(" mcast_dst_ip 224.0.0.19\n unicast_peer { 10.0.0.2 }\n" + VIP),
            "(V) multicast destination specified with unicast - ignoring",
            ExitCode.CONFIG,
        ),
        (
            one(" unicast_src_ip 2001:db8::1\n" + VIP),
            "Configuration error: VRRP instance[V] and "
            "src address[2001:db8::1] MUST be of the same family !!! Skipping...",
            ExitCode.CONFIG,
        ),
        (
            one(" vmac_xmit_base\n" + VIP),
            "(V) vmac_xmit_base is only valid with a vmac",
            ExitCode.CONFIG,
        ),
        (
            one(" interface nosuch0\n" + VIP),
            "WARNING - interface nosuch0 for vrrp_instance V doesn't exist",
            ExitCode.CONFIG,
        ),
        (
            one(" track_interface { nosuch9 }\n" + VIP),
            "(V) tracked interface nosuch9 doesn't exist",
            ExitCode.CONFIG,
        ),
        (
            one(
                " priority 255\n track_script { chk }\n" + VIP,
                pre="vrrp_script chk {\n script /bin/true\n weight 10\n}\n",
            ),
            "(V) ignoring tracked script chk with weights due to address_owner",
            ExitCode.CONFIG,
        ),
    ],
)
def test_instance_checks(tmp_path: Path, text: str, expected: str, code: ExitCode) -> None:
    result = run(tmp_path, text)
    assert expected in messages(result)
    assert result.exit_code == code


def test_references_all_reported(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        one(
            " track_script { noscript }\n track_file { nofile }\n track_process { noproc }\n"
            " track_bfd { nobfd }\n" + VIP
        ),
    )
    msgs = messages(result)
    for expected in (
        "(V) track script noscript not found, ignoring...",
        "(V) track file nofile not found, ignoring...",
        "(V) track process noproc not found, ignoring...",
        "(V) track bfd nobfd not found, ignoring...",
    ):
        assert expected in msgs
    assert all(d.where is not None and d.where.line > 1 for d in result.diagnostics)


def test_track_bfd_is_run_not_noted(tmp_path: Path) -> None:
    """fastha runs track_bfd (issue 18): no note that it is ignored, keepalived's verdict."""
    pre = "bfd_instance b1 {\n neighbor_ip 198.18.0.9\n}\n"
    result = run(tmp_path, one(" track_bfd { b1 }\n" + VIP, pre=pre))
    assert [d for d in result.diagnostics if "bfd" in d.message.lower()] == []
    assert result.exit_code == ExitCode.OK  # keepalived -t accepts it: so do we


def test_keywords_fastha_does_not_act_on_are_named_at_their_lines(tmp_path: Path) -> None:
    text = one(" promote_secondaries\n notify_priority_changes\n no_accept\n" + VIP)
    result = run(tmp_path, text)
    notes = {d.message: d.where.line for d in result.diagnostics if d.where is not None}
    lines = text.splitlines()
    for keyword in ("promote_secondaries",):
        [(msg, line)] = [(m, ln) for m, ln in notes.items() if m.startswith(f"(V) {keyword} ")]
        assert msg.endswith(f"({INSTANCE[keyword]})") and lines[line - 1].strip() == keyword
    assert not [m for m in notes if "no_accept" in m]  # enforced (drivers/firewall)
    # the MASTER_PRIORITY / BACKUP_PRIORITY FIFO lines (tests/conformance)
    assert not [m for m in notes if "notify_priority_changes" in m]
    assert result.exit_code == ExitCode.OK


def test_track_process_keywords_as_keepalived_reads_them(tmp_path: Path) -> None:
    pre = (
        "vrrp_track_process any {\n process haproxy\n param_match\n quorum_max 0\n}\n"
        "vrrp_track_process two {\n process haproxy\n quorum 2\n quorum_max 1\n}\n"
    )
    result = run(tmp_path, one(" track_process {\n any\n two\n }\n" + VIP, pre=pre))
    assert not [d for d in result.diagnostics if "track process" in d.message]
    any_, two = result.config.vrrp_track_processes
    assert any_.param_match is ParamMatch.EXACT and any_.quorum_max == 0
    assert (two.quorum, two.quorum_max) == (2, 1)
    assert "(two) quorum_max 1 < quorum 2 - ignoring" in messages(result)
    spec = vrrp_spec(result.config).track_processes
    assert (spec["any"].quorum, spec["any"].quorum_max) == (1, 0)  # the tracker makes it 0
    assert spec["any"].match.full_command  # param_match matches the command line
    assert (spec["two"].quorum, spec["two"].quorum_max) == (2, None)  # ignored, as keepalived


def test_sync_group_checks(tmp_path: Path) -> None:
    text = two(vrid2=52, extra1=" track_script { chk }") + (
        "vrrp_script chk {\n script /bin/true\n weight 10\n}\n"
        "vrrp_sync_group G {\n group { V W X }\n}\n"
        "vrrp_sync_group H {\n group { V }\n}\n"
    )
    msgs = messages(run(tmp_path, text))
    assert "Virtual router X specified in sync group G doesn't exist - ignoring" in msgs
    assert "Virtual router V cannot exist in more than one sync group; ignoring H" in msgs
    assert "Sync group H, no matching virtual router found in group declaration - removing" in msgs
    assert "(V) ignoring tracked script chk with weights due to SYNC group" in msgs


def test_interface_check_can_be_disabled(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(one(" interface nosuch0\n" + VIP))
    result = load(path, host=Host(interfaces=frozenset(), check_interfaces=False))
    assert result.diagnostics == ()


def test_static_and_root_blocks(tmp_path: Path) -> None:
    text = """
static_ipaddress {
    192.0.2.1/24 dev eth0 scope link
}
static_routes {
    10.0.0.0/8 via 192.0.2.254 dev eth0
}
static_routes {
    inet6 default via 2001:db8::1
}
static_rules {
    from 192.0.2.0/24 table 100 priority 100
}
linkbeat_interfaces {
    eth0
    eth1 MII
}
interface_up_down_delays {
    eth0 2 4
}
garp_group {
    garp_interval 0.01
    interfaces { eth0 eth1 }
}
"""
    result = run(tmp_path, text)
    assert result.diagnostics == ()
    cfg = result.config
    assert len(cfg.static_ipaddresses) == 1 and len(cfg.static_routes) == 2
    assert cfg.static_routes[1].family == 6 and cfg.static_routes[1].to is None
    assert cfg.static_rules[0].table == 100
    assert [(li.name, li.method) for li in cfg.linkbeat_interfaces] == [
        ("eth0", None),
        ("eth1", "MII"),
    ]
    assert cfg.interface_up_down_delays[0].up_delay == 4
    assert cfg.garp_groups[0].interfaces == ("eth0", "eth1")


def test_rules_without_priority_get_keepalived_s(tmp_path: Path) -> None:
    """vrrp_iprule.c: 16384, then one less per rule of the family, in line order, with
    keepalived's warning (so -t exits 5)."""
    result = run(
        tmp_path,
        "static_rules {\n from 192.0.2.0/24 table 100\n from 2001:db8::/64 table 100\n}\n"
        + one(" virtual_rules {\n from 192.0.3.0/24 table 100\n }\n" + VIP)
        + "static_rules {\n from 192.0.4.0/24 table 100 priority 7\n"
        " from 192.0.5.0/24 table 100\n}\n",
    )
    cfg = result.config
    assert [r.priority for r in cfg.static_rules] == [16384, 16384, 7, 16382]
    assert cfg.vrrp_instances[0].virtual_rules[0].priority == 16383
    assert sum("Rule has no preference specified" in m for m in messages(result)) == 4
    assert result.exit_code == ExitCode.CONFIG


def test_route_options_in_the_kernels_units(tmp_path: Path) -> None:
    """vrrp_iproute.c / get_time_rtt: rtt in 1/8 ms, rttvar in 1/4 ms, rto_min in ms,
    a bare number as given, clamped to 0.2 s .. 120 s; realms FROM/TO; pref words."""
    line = (
        "virtual_routes {\n 10.0.0.0/8 realms 1/2 rtt 100ms rttvar 1.5s rto_min 300 ttl-propagate enabled\n"
        " 2001:db8::/64 from 2001:db8:1::/64 pref low expires 30\n}"
    )
    result = run(tmp_path, BASIC.replace("advert_int 1", "advert_int 1\n" + line))
    v4, v6 = result.config.vrrp_instances[0].virtual_routes
    assert dict(v4.metrics) == {"rtt": 1600, "rttvar": 6000, "rto_min": 300}
    assert dict(v4.options) == {"realms": str(1 << 16 | 2), "ttl-propagate": "1"}
    assert dict(v6.options) == {"from": "2001:db8:1::/64", "pref": "3", "expires": "30"}
    assert not [m for m in messages(result) if "not installed by fastha" in m]


def test_route_or_is_two_next_hops(tmp_path: Path) -> None:
    """keepalived's deprecated `via A or B`: a multipath route (vrrp_iproute.c), said so."""
    line = "virtual_routes {\n 10.9.0.0/16 via 10.0.0.1 or 10.0.0.2 table 7\n}"
    result = run(tmp_path, BASIC.replace("advert_int 1", "advert_int 1\n" + line))
    (route,) = result.config.vrrp_instances[0].virtual_routes
    assert route.via is None and route.table == 7
    assert [str(h.via) for h in route.nexthops] == ["10.0.0.1", "10.0.0.2"]
    assert any("deprecated" in m and "nexthop" in m for m in messages(result))
