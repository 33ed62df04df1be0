"""validate_lvs: keepalived's whole-model LVS checks, in keepalived's wording."""

from __future__ import annotations

import pytest
from tests.unit.test_config_lvs import checks, load

pytestmark = pytest.mark.unit


def vs(body: str, header: str = "10.0.0.1 80", before: str = "") -> list[str]:
    root, diags = load(f"{before}\nvirtual_server {header} {{\n{body}\n}}")
    assert [d for d in diags if d.severity == "error"] == []
    return checks(root)


BASE = "lvs_sched rr\nlvs_method NAT\nprotocol TCP\n"
RS = "real_server 10.0.0.2 80 {\n}\n"


def test_clean_config_has_no_findings() -> None:
    assert vs(BASE + RS) == []


def test_unset_protocol_scheduler_and_method_are_reported_as_keepalived_does() -> None:
    assert vs(RS) == [
        "t.conf:2: warning: Virtual server [10.0.0.1]:none:80: no protocol set - defaulting to UDP",
        "t.conf:2: warning: Virtual server [10.0.0.1]:none:80: no scheduler set, setting default 'wlc'",
        "t.conf:2: warning: Virtual server [10.0.0.1]:none:80: no forwarding method set, setting default NAT",
    ]


def test_no_real_servers() -> None:
    assert vs(BASE) == [
        "t.conf:2: warning: Virtual server [10.0.0.1]:tcp:80 has no real servers - ignoring"
    ]


def test_missing_group() -> None:
    assert vs(BASE + RS, header="group NOPE") == [
        "t.conf:2: warning: Virtual server group NOPE specified but not configured"
        " - ignoring virtual server NOPE"
    ]


def test_group_resolves_and_empty_group_is_removed() -> None:
    before = "virtual_server_group G1 {\n10.0.0.1-3 80\n}\nvirtual_server_group E {\n}"
    assert vs(BASE + RS, header="group G1", before=before) == [
        "t.conf:4: warning: virtual server group E has no entries - removing"
    ]


def test_group_family_must_match_ip_family() -> None:
    before = "virtual_server_group G1 {\n10.0.0.1 80\n}"
    out = vs(
        BASE + "ip_family inet6\n" + "real_server 2001::2 80 {\nlvs_method TUN\n}",
        "group G1",
        before,
    )
    assert "t.conf:4: warning: G1: address family doesn't match virtual server G1 - ignoring" in out


def test_real_server_family_mismatch_skips_it() -> None:
    out = vs(BASE + RS + "real_server 2001:db8::2 80 {\n}\n")
    assert out == [
        "t.conf:8: warning: Address family of virtual server and real server 2001:db8::2"
        " don't match - skipping real server."
    ]


def test_tunnelled_real_server_may_differ_in_family() -> None:
    assert vs(BASE + RS + "real_server 2001:db8::2 80 {\nlvs_method TUN\n}\n") == []


def test_sorry_server_family_mismatch() -> None:
    out = vs(BASE + "sorry_server 2001:db8::9 80\n" + RS)
    assert out == [
        "t.conf:2: warning: Address family of virtual server and sorry server 2001:db8::9"
        " don't match - skipping sorry server."
    ]


def test_sorry_server_options_without_sorry_server() -> None:
    assert vs(BASE + "sorry_server_inhibit\nsorry_server_lvs_method DR\n" + RS) == [
        "t.conf:2: warning: Ignoring sorry_server inhibit used before or without sorry_server",
        "t.conf:2: warning: sorry_server forwarding used without sorry_server",
    ]


def test_duplicate_real_servers_in_one_virtual_server() -> None:
    # The second has no port: it takes the virtual server's, so it is the same server.
    out = vs(BASE + RS + "real_server 10.0.0.2 {\n}\n")
    assert out == [
        "t.conf:8: warning: VS [10.0.0.1]:tcp:80: real server [10.0.0.2]:tcp:80 is duplicated"
        " - removing second rs"
    ]


def test_duplicate_virtual_servers() -> None:
    root, _ = load(
        f"virtual_server 10.0.0.1 80 {{\n{BASE}{RS}}}\nvirtual_server 10.0.0.1 80 {{\n{BASE}{RS}}}"
    )
    assert checks(root) == [
        "t.conf:8: warning: Virtual server [10.0.0.1]:tcp:80 is duplicated (first at t.conf:1)"
        " - ignoring"
    ]


def test_quorum_above_total_weight_and_hysteresis() -> None:
    out = vs(BASE + "quorum 5\nhysteresis 3\nreal_server 10.0.0.2 80 {\nweight 2\n}\n")
    assert out == [
        "t.conf:2: warning: Warning - quorum 5 for [10.0.0.1]:tcp:80 exceeds total weight of"
        " real servers 2, reducing quorum to 2",
        "t.conf:2: warning: Virtual server [10.0.0.1]:tcp:80: hysteresis 3 >= quorum 2;"
        " setting hysteresis to 1",
    ]


def test_quorum_counts_inherited_weight() -> None:
    assert vs(BASE + "weight 3\nquorum 3\n" + RS) == []


def test_zero_port_needs_persistence() -> None:
    assert vs(BASE + RS, header="10.0.0.1") == [
        "t.conf:2: warning: Virtual server [10.0.0.1]:tcp:0: zero port only valid for"
        " persistent services - setting"
    ]
    assert vs(BASE + "persistence_timeout\n" + RS, header="10.0.0.1") == []


def test_fwmark_service_rules() -> None:
    out = vs("lvs_sched rr\nlvs_method DR\nprotocol TCP\nha_suspend\n" + RS, header="fwmark 1")
    assert out == [
        "t.conf:2: warning: Virtual server FWM 1: cannot use ha_suspend with fwmarks - clearing ha_suspend",
        "t.conf:2: warning: Warning: Virtual server FWM 1: protocol specified for fwmark - protocol will be ignored",
        "t.conf:7: warning: WARNING - fwmark virtual server FWM 1, real server [10.0.0.2]:tcp:80"
        " has port specified - clearing",
    ]


def test_dr_port_mismatch() -> None:
    out = vs("lvs_sched rr\nlvs_method DR\nprotocol TCP\nreal_server 10.0.0.2 8080 {\n}")
    assert out == [
        "t.conf:6: warning: WARNING - virtual server [10.0.0.1]:tcp:80 and real server"
        " [10.0.0.2]:tcp:8080 ports don't match - resetting"
    ]


def test_ops_requires_udp_and_scheduler_flags() -> None:
    assert vs(BASE + "ops\nsh-port\nmh-port\n" + RS) == [
        "t.conf:2: warning: Virtual server [10.0.0.1]:tcp:80: one packet scheduling requires UDP - resetting",
        "t.conf:2: warning: sh-port only applies to sh scheduler - ignoring",
        "t.conf:2: warning: mh-port only applies to mh scheduler - ignoring",
    ]


def test_persistence_granularity_family() -> None:
    out = vs(BASE + "persistence_granularity 64\n" + RS)
    assert out == [
        "t.conf:2: warning: Virtual server [10.0.0.1]:tcp:80: persistence_granularity 64 does"
        " not match the virtual server's address family"
    ]


def test_checker_references_and_completeness() -> None:
    body = BASE + (
        "real_server 10.0.0.2 80 {\n"
        "HTTP_GET {\n}\n"
        "MISC_CHECK {\n}\n"
        "FILE_CHECK {\ntrack_file nope\n}\n"
        "FILE_CHECK {\ntrack_file tf\n}\n"
        "BFD_CHECK {\nname B9\n}\n"
        "BFD_CHECK {\n}\n"
        "UDP_CHECK {\nmin_reply_length 10\nmax_reply_length 5\n}\n"
        "}\n"
    )
    root, _ = load(f"virtual_server 10.0.0.1 80 {{\n{body}}}")
    out = checks(root, track_files=("tf",))
    assert out == [
        "t.conf:6: warning: HTTP/SSL_GET checker has no urls specified - ignoring",
        "t.conf:8: warning: No misc_path specified for MISC_CHECK - ignoring",
        "t.conf:19: warning: ([10.0.0.2]:tcp:80) No name has been specified for BFD_CHECKER - skipping",
        "t.conf:21: warning: UDP_CHECK min_reply_length 10 > max_reply_length 5",
        "t.conf:10: warning: track_file nope not found",
        "t.conf:16: warning: ([10.0.0.2]:tcp:80) BFD_CHECK - BFD B9 not configured",
    ]


def test_bfd_check_resolves() -> None:
    body = BASE + "real_server 10.0.0.2 80 {\nBFD_CHECK {\nname B1\n}\n}\n"
    root, _ = load(
        f"bfd_instance B1 {{\nneighbor_ip 10.0.0.2\n}}\nvirtual_server 10.0.0.1 80 {{\n{body}}}"
    )
    assert checks(root) == []


def test_every_problem_is_collected() -> None:
    root, _ = load(
        "virtual_server group NOPE {\n" + RS + "}\n"
        "virtual_server 10.0.0.1 80 {\n" + BASE + "}\n"
        "virtual_server 10.0.0.2 80 {\n" + RS + "}\n"
    )
    assert len(checks(root)) == 5
