"""LVS side of the keyword table, model and validation, through parser.parse on built Lines."""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, replace
from typing import Any

import pytest

from fastha.config import model_lvs as m
from fastha.config import validate_lvs
from fastha.config.diagnostics import Diagnostic, Severity
from fastha.config.keywords_lvs import LVS_ROOT_KEYWORDS
from fastha.config.parser import parse
from fastha.config.schema import Block
from fastha.config.source import Line, Where
from fastha.config.validate import Host

pytestmark = pytest.mark.unit


@dataclass(frozen=True, slots=True, kw_only=True)
class _TrackFile:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Root:
    """Stand-in for the root Config: only the LVS fields (plus track_files for refs)."""

    where: Where | None = None
    virtual_server_groups: tuple[m.VirtualServerGroup, ...] = ()
    virtual_servers: tuple[m.VirtualServer, ...] = ()
    ssl: m.SslConfig | None = None
    bfd_instances: tuple[m.BfdInstance, ...] = ()
    track_files: tuple[_TrackFile, ...] = ()


ROOT = Block("root", _Root, keywords=LVS_ROOT_KEYWORDS)


def lines(text: str) -> list[Line]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        # A trivial splitter: shell-like quoting is enough here (the lexer is tested apart).
        words = tuple(shlex.split(raw.split("#", 1)[0]))
        if words:
            out.append(Line(words, Where("t.conf", n)))
    return out


def load(text: str) -> tuple[_Root, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    root = parse(lines(text), ROOT, diags)
    return root, diags


def vs1(text: str) -> tuple[m.VirtualServer, list[Diagnostic]]:
    root, diags = load(text)
    assert len(root.virtual_servers) == 1, diags
    return root.virtual_servers[0], diags


def checks(root: Any, track_files: tuple[str, ...] = ()) -> list[str]:
    if track_files:
        root = _Root(
            **{f: getattr(root, f) for f in ("virtual_server_groups", "virtual_servers", "ssl")},
            bfd_instances=root.bfd_instances,
            track_files=tuple(_TrackFile(name=n) for n in track_files),
        )
    host = Host(interfaces=frozenset(), check_interfaces=False)
    out = []
    for fn in (
        validate_lvs.check_virtual_server_groups,
        validate_lvs.check_virtual_servers,
        validate_lvs.check_checker_references,
        validate_lvs.check_bfd_instances,
    ):
        out.extend(str(d) for d in fn(root, host))
    return out


def msgs(diags: list[Diagnostic]) -> list[str]:
    return [str(d) for d in diags]


def errors(diags: list[Diagnostic]) -> list[str]:
    return [str(d) for d in diags if d.severity is Severity.ERROR]


GOOD = """
virtual_server 10.0.0.1 80 {
    delay_loop 6
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""


# ---------------------------------------------------------------- virtual_server basics


def test_minimal_virtual_server_is_clean() -> None:
    root, diags = load(GOOD)
    assert diags == []
    assert checks(root) == []
    vs = root.virtual_servers[0]
    assert vs.address == ipaddress.ip_address("10.0.0.1") and vs.port == 80
    assert vs.delay_loop == 6.0 and vs.lvs_sched is m.Scheduler.RR
    assert vs.protocol is m.Protocol.TCP
    rs = vs.real_servers[0]
    assert rs.weight == 2 and isinstance(rs.checkers[0], m.TcpCheck)
    assert rs.checkers[0].connect_timeout == 3.0
    assert vs.where == Where("t.conf", 2) and rs.where == Where("t.conf", 7)


def test_documented_defaults() -> None:
    vs, _ = vs1("virtual_server 10.0.0.1 80 {\n}")
    assert vs.delay_loop == 60.0
    assert vs.connect_timeout == 5.0
    assert vs.quorum == 1 and vs.hysteresis == 0 and vs.weight == 1
    assert vs.alpha is False and vs.omega is False and vs.ha_suspend is False
    assert vs.effective_sched is m.Scheduler.WLC
    assert vs.effective_method == m.LvsMethod(method=m.Method.NAT)
    # keepalived: "no protocol set - defaulting to UDP" (the kernel's default for 0).
    assert vs.effective_protocol is m.Protocol.UDP


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        ("10.0.0.1 80", {"address": ipaddress.ip_address("10.0.0.1"), "port": 80}),
        ("2001:db8::1 443", {"address": ipaddress.ip_address("2001:db8::1"), "port": 443}),
        ("10.0.0.1", {"address": ipaddress.ip_address("10.0.0.1"), "port": None}),
        ("fwmark 7", {"fwmark": 7, "address": None}),
        ("group G1", {"group": "G1", "address": None}),
    ],
)
def test_virtual_server_headers(header: str, fields: dict[str, Any]) -> None:
    vs, diags = vs1(f"virtual_server {header} {{\n}}")
    assert errors(diags) == []
    for key, value in fields.items():
        assert getattr(vs, key) == value


@pytest.mark.parametrize(
    "header", ["", "10.0.0.300 80", "10.0.0.1 99999", "fwmark x", "group", "10.0.0.1 80 9"]
)
def test_bad_virtual_server_headers(header: str) -> None:
    root, diags = load(f"virtual_server {header} {{\n}}")
    assert root.virtual_servers == ()
    assert errors(diags) and errors(diags)[0].startswith("t.conf:1: error: virtual_server:")


@pytest.mark.parametrize("sched", [s.value for s in m.Scheduler])
def test_every_scheduler(sched: str) -> None:
    vs, diags = vs1(f"virtual_server 10.0.0.1 80 {{\nlvs_sched {sched}\n}}")
    assert diags == [] and vs.lvs_sched == m.Scheduler(sched)


def test_unknown_scheduler_is_an_error() -> None:
    _, diags = load("virtual_server 10.0.0.1 80 {\nlvs_sched bogus\n}")
    assert errors(diags) == [
        "t.conf:2: error: lvs_sched: 'bogus' is not one of "
        + ", ".join(s.value for s in m.Scheduler)
    ]


def test_old_names_parse_to_new_fields_with_deprecation() -> None:
    vs, diags = vs1(
        """virtual_server 10.0.0.1 80 {
lb_algo sh
lb_kind DR
real_server 10.0.0.2 80 {
HTTP_GET {
nb_get_retry 4
url {
path /
}
}
}
}"""
    )
    assert vs.lvs_sched is m.Scheduler.SH
    assert vs.lvs_method == m.LvsMethod(method=m.Method.DR)
    assert vs.real_servers[0].checkers[0].retry == 4
    assert msgs(diags) == [
        "t.conf:2: warning: 'lb_algo' is deprecated, use 'lvs_sched'",
        "t.conf:3: warning: 'lb_kind' is deprecated, use 'lvs_method'",
        "t.conf:6: warning: 'nb_get_retry' is deprecated, use 'retry'",
    ]


def test_flags_collect_in_order() -> None:
    vs, diags = vs1(
        "virtual_server 10.0.0.1 80 {\nlvs_sched sh\nsh-port\nsh-fallback\nops\nflag-1\n"
        "flag-2\nflag-3\nhashed\nmh-port\nmh-fallback\n}"
    )
    assert diags == []
    assert vs.flags == (
        m.SchedFlag.SH_PORT,
        m.SchedFlag.SH_FALLBACK,
        m.SchedFlag.OPS,
        m.SchedFlag.FLAG_1,
        m.SchedFlag.FLAG_2,
        m.SchedFlag.FLAG_3,
        m.SchedFlag.HASHED,
        m.SchedFlag.MH_PORT,
        m.SchedFlag.MH_FALLBACK,
    )


def test_every_virtual_server_option() -> None:
    vs, diags = vs1(
        """virtual_server 10.0.0.1 80 {
delay_loop 2.5
lvs_sched wlc
lvs_method TUN type gue port 6080 csum
persistence_engine sip
persistence_timeout 600
persistence_granularity 255.255.255.0
protocol sctp
ha_suspend
smtp_alert no
virtualhost www.example.com
snmp_name web
alpha
omega
quorum 3
quorum_up "/bin/up arg" alice staff
quorum_down /bin/down
hysteresis 1
ip_family inet
sorry_server 10.0.0.9 8080
sorry_server_inhibit
sorry_server_lvs_method DR
connect_timeout 7
retry 3
delay_before_retry 2
warmup 0
weight 4
inhibit_on_failure
}"""
    )
    assert diags == []
    assert vs.delay_loop == 2.5
    assert vs.lvs_method == m.LvsMethod(
        method=m.Method.TUN,
        tun_type=m.TunnelType.GUE,
        tun_port=6080,
        tun_csum=m.TunnelCsum.CSUM,
    )
    assert vs.persistence_engine == "sip" and vs.persistence_timeout == 600
    assert vs.persistence_granularity == "255.255.255.0"
    assert vs.protocol is m.Protocol.SCTP
    assert vs.ha_suspend and vs.alpha and vs.omega and vs.inhibit_on_failure
    assert vs.smtp_alert is False
    assert vs.virtualhost == "www.example.com" and vs.snmp_name == "web"
    assert vs.quorum == 3 and vs.hysteresis == 1
    assert vs.quorum_up == m.NotifyScript(command="/bin/up arg", user="alice", group="staff")
    assert vs.quorum_down == m.NotifyScript(command="/bin/down")
    assert vs.ip_family is m.Family.INET
    assert vs.sorry_server is not None and vs.sorry_server.port == 8080
    assert vs.sorry_server_inhibit
    assert vs.sorry_server_lvs_method == m.LvsMethod(method=m.Method.DR)
    assert m.sorry_server_method(vs).method is m.Method.DR
    assert (vs.connect_timeout, vs.retry, vs.delay_before_retry, vs.warmup) == (7, 3, 2, 0)
    assert vs.weight == 4


def test_bare_persistence_timeout_is_six_minutes() -> None:
    vs, _ = vs1("virtual_server 10.0.0.1 80 {\npersistence_timeout\n}")
    assert vs.persistence_timeout == 360


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("255.0.255.0", "IPv4 persistence_granularity netmask is not solid - 255.0.255.0"),
        ("129", "Invalid IPv6 persistence_granularity specified - 129"),
    ],
)
def test_bad_persistence_granularity(value: str, message: str) -> None:
    _, diags = load(f"virtual_server 10.0.0.1 80 {{\npersistence_granularity {value}\n}}")
    assert errors(diags) == [f"t.conf:2: error: persistence_granularity: {message}"]


# ---------------------------------------------------------------- lvs_method


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("NAT", m.LvsMethod(method=m.Method.NAT)),
        ("DR", m.LvsMethod(method=m.Method.DR)),
        ("TUN", m.LvsMethod(method=m.Method.TUN)),
        ("TUN type ipip", m.LvsMethod(method=m.Method.TUN, tun_type=m.TunnelType.IPIP)),
        (
            "TUN type gre nocsum",
            m.LvsMethod(
                method=m.Method.TUN, tun_type=m.TunnelType.GRE, tun_csum=m.TunnelCsum.NOCSUM
            ),
        ),
        (
            "TUN type gue port 5555 remcsum",
            m.LvsMethod(
                method=m.Method.TUN,
                tun_type=m.TunnelType.GUE,
                tun_port=5555,
                tun_csum=m.TunnelCsum.REMCSUM,
            ),
        ),
    ],
)
def test_lvs_method_forms(words: str, expected: m.LvsMethod) -> None:
    vs, diags = vs1(f"virtual_server 10.0.0.1 80 {{\nlvs_method {words}\n}}")
    assert diags == [] and vs.lvs_method == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("DR type gre", "tunnel options (type gre) are only valid with TUN"),
        ("NAT csum", "tunnel options (csum) are only valid with TUN"),
        ("TUN type gue", "gue tunnel requires a port"),
        ("TUN type gre port 5", "tunnel port is only valid with type gue"),
        ("TUN type ipip csum", "csum is only valid with tunnel type gue or gre"),
        ("TUN type gre remcsum", "remcsum is not valid with tunnel type gre"),
        ("TUN type vxlan", "'vxlan' is not one of ipip, gue, gre"),
        ("nat", "'nat' is not one of NAT, DR, TUN"),
    ],
)
def test_lvs_method_errors(words: str, message: str) -> None:
    _, diags = load(f"virtual_server 10.0.0.1 80 {{\nlvs_method {words}\n}}")
    assert errors(diags) == [f"t.conf:2: error: lvs_method: {message}"]


# ---------------------------------------------------------------- real_server


def test_real_server_options_and_inheritance() -> None:
    vs, diags = vs1(
        """virtual_server 10.0.0.1 80 {
delay_loop 10
retry 5
real_server 10.0.0.2 {
lvs_method DR
inhibit_on_failure
notify_up /bin/up
notify_down "/bin/down x" bob
uthreshold 100
lthreshold 10
smtp_alert
virtualhost rs.example
snmp_name rs1
alpha off
connect_timeout 2
delay_before_retry 4
warmup 1
delay_loop 3
}
}"""
    )
    assert diags == []
    rs = vs.real_servers[0]
    assert rs.port is None and rs.weight is None
    assert m.real_server_weight(vs, rs) == 1
    assert m.real_server_method(vs, rs).method is m.Method.DR
    assert rs.inhibit_on_failure is True
    assert rs.notify_up == m.NotifyScript(command="/bin/up")
    assert rs.notify_down == m.NotifyScript(command="/bin/down x", user="bob")
    assert (rs.uthreshold, rs.lthreshold) == (100, 10)
    assert rs.smtp_alert is True and rs.alpha is False
    assert rs.virtualhost == "rs.example" and rs.snmp_name == "rs1"
    assert (rs.connect_timeout, rs.delay_before_retry, rs.warmup, rs.delay_loop) == (2, 4, 1, 3)
    assert rs.retry is None  # inherits the virtual server's 5


def test_real_server_weight_range() -> None:
    """keepalived's range is 0 to IPVS_WEIGHT_MAX (INT32_MAX), not 16 bits."""
    cfg, diags = load("virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\nweight 70000\n}\n}")
    assert errors(diags) == [] and cfg.virtual_servers[0].real_servers[0].weight == 70000
    _, diags = load(
        "virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\nweight 2147483648\n}\n}"
    )
    assert errors(diags) == ["t.conf:3: error: weight: 2147483648 is out of range [0-2147483647]"]


def test_checker_timing_inheritance_and_per_type_defaults() -> None:
    vs, _ = vs1(
        """virtual_server 10.0.0.1 80 {
delay_loop 20
real_server 10.0.0.2 80 {
connect_timeout 9
TCP_CHECK {
}
DNS_CHECK {
}
MISC_CHECK {
misc_path /bin/true
}
HTTP_GET {
retry 7
delay_loop 4
url {
path /
}
}
}
}"""
    )
    rs = vs.real_servers[0]
    tcp, dns, misc, http = (m.checker_timing(vs, rs, c) for c in rs.checkers)  # type: ignore[arg-type]
    assert (tcp.retry, tcp.delay_before_retry, tcp.connect_timeout, tcp.delay_loop) == (1, 1, 9, 20)
    assert tcp.warmup == 20 and tcp.alpha is False
    assert (dns.retry, dns.delay_before_retry) == (3, 20)
    assert misc.retry == 0
    assert (http.retry, http.delay_before_retry, http.delay_loop, http.warmup) == (7, 3, 4, 4)


# ---------------------------------------------------------------- checkers


def _checker(body: str, rs_extra: str = "") -> tuple[Any, list[Diagnostic]]:
    vs, diags = vs1(
        f"virtual_server 10.0.0.1 80 {{\nreal_server 10.0.0.2 80 {{\n{rs_extra}{body}\n}}\n}}"
    )
    return vs.real_servers[0].checkers[0], diags


COMMON = """connect_ip 10.0.0.3
connect_port 8080
bindto 10.0.0.1
bind_port 4000
bind_if eth0
fwmark 5
alpha
connect_timeout 1.5
retry 2
delay_before_retry 0.5
warmup 3
delay_loop 9
log_all_failures yes
"""


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("TCP_CHECK", m.TcpCheck),
        ("PING_CHECK", m.PingCheck),
        ("SMTP_CHECK", m.SmtpCheck),
        ("DNS_CHECK", m.DnsCheck),
        ("UDP_CHECK", m.UdpCheck),
        ("HTTP_GET", m.HttpGet),
        ("SSL_GET", m.SslGet),
    ],
)
def test_connection_options_on_every_connecting_checker(kind: str, cls: type) -> None:
    checker, diags = _checker(f"{kind} {{\n{COMMON}}}")
    assert diags == []
    assert type(checker) is cls and checker.kind == kind
    assert checker.connect_ip == ipaddress.ip_address("10.0.0.3")
    assert checker.connect_port == 8080
    assert checker.bindto == ipaddress.ip_address("10.0.0.1")
    assert (checker.bind_port, checker.bind_if, checker.fwmark) == (4000, "eth0", 5)
    assert checker.alpha is True and checker.log_all_failures is True
    assert (checker.connect_timeout, checker.retry, checker.delay_before_retry) == (1.5, 2, 0.5)
    assert (checker.warmup, checker.delay_loop) == (3, 9)


def test_misc_check_has_no_connection_options() -> None:
    checker, diags = _checker(
        'MISC_CHECK {\nmisc_path "/bin/check x"\nmisc_timeout 5\nmisc_dynamic\n'
        "user nobody nogroup\nretry 2\nconnect_ip 1.2.3.4\n}"
    )
    assert isinstance(checker, m.MiscCheck)
    assert checker.misc_path == "/bin/check x" and checker.misc_timeout == 5
    assert checker.misc_dynamic and (checker.user, checker.group) == ("nobody", "nogroup")
    assert checker.retry == 2
    assert msgs(diags) == ["t.conf:9: warning: unknown keyword 'connect_ip'"]


def test_http_get_urls() -> None:
    checker, diags = _checker(
        """HTTP_GET {
http_protocol 1.1
virtualhost www.example
fast_recovery
enable_sni
tls_compliant
url {
path /health
digest 9B3A0C85A887A256D6939DA88AABD8CD
status_code 200-299 404 503
virtualhost other.example
regex ^ok
regex_no_match
regex_options caseless multiline
regex_stack 32768 65536
regex_min_offset 0
regex_max_offset 100
}
url {
path /
}
}"""
    )
    assert diags == []
    assert isinstance(checker, m.HttpGet)
    assert checker.http_protocol is m.HttpProtocol.V1_1
    assert checker.fast_recovery and checker.enable_sni and checker.tls_compliant
    first, second = checker.urls
    assert first.path == "/health"
    assert first.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert first.status_code == (
        m.StatusRange(lo=200, hi=299),
        m.StatusRange(lo=404, hi=404),
        m.StatusRange(lo=503, hi=503),
    )
    assert first.regex == "^ok" and first.regex_no_match
    assert first.regex_options == ("caseless", "multiline")
    assert first.regex_stack == (32768, 65536)
    assert (first.regex_min_offset, first.regex_max_offset) == (0, 100)
    assert second.effective_status == (m.StatusRange(lo=200, hi=299),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("status_code 99", "status_code: 99 is out of range [100-599]"),
        ("status_code 300-200", "status_code: status code range 300-200 is backwards"),
        ("digest 1234", "digest: digest '1234' is not an MD5 hex string (32 hex digits)"),
        ("regex_options fancy", "regex_options: unknown regex option 'fancy'"),
    ],
)
def test_bad_url_values(line: str, message: str) -> None:
    _, diags = load(
        f"virtual_server 10.0.0.1 80 {{\nreal_server 10.0.0.2 80 {{\nHTTP_GET {{\nurl {{\n"
        f"path /\n{line}\n}}\n}}\n}}\n}}"
    )
    assert errors(diags) == [f"t.conf:6: error: {message}"]


def test_smtp_check_and_deprecated_host_blocks() -> None:
    checker, diags = _checker(
        """SMTP_CHECK {
helo_name mail.example
host {
connect_ip 10.0.0.7
connect_port 2525
bindto 10.0.0.1
}
host {
connect_ip 10.0.0.8
}
}"""
    )
    assert isinstance(checker, m.SmtpCheck)
    assert checker.helo_name == "mail.example"
    assert [h.connect_ip for h in checker.hosts] == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("10.0.0.8"),
    ]
    assert checker.hosts[0].connect_port == 2525
    assert msgs(diags) == [
        "t.conf:5: warning: 'host' is deprecated, use 'a separate SMTP_CHECK with connect_ip'",
        "t.conf:10: warning: 'host' is deprecated, use 'a separate SMTP_CHECK with connect_ip'",
    ]


def test_dns_check() -> None:
    checker, diags = _checker("DNS_CHECK {\ntype aaaa\nname example.com\n}")
    assert diags == []
    assert checker.type is m.DnsType.AAAA and checker.name == "example.com"
    default, _ = _checker("DNS_CHECK {\n}")
    assert default.type is m.DnsType.SOA and default.name == "."


def test_udp_check_hex_strings() -> None:
    checker, diags = _checker(
        "UDP_CHECK {\npayload Ab12f 3 456 546443123\nrequire_reply 0aXx 1\n"
        "min_reply_length 2\nmax_reply_length 64\n}"
    )
    assert diags == []
    # keepalived.conf(5): "Ab12f 3 456 546443123" is AB 12 0F 03 45 06 54 64 43 12 03.
    assert checker.payload == bytes.fromhex("ab120f03450654644312 03".replace(" ", ""))
    assert checker.require_reply == "0axx01"
    assert (checker.min_reply_length, checker.max_reply_length) == (2, 64)
    bare, _ = _checker("UDP_CHECK {\nrequire_reply\n}")
    assert bare.require_reply == "" and bare.payload is None
    assert bare.max_reply_length == 255


def test_udp_payload_rejects_non_hex() -> None:
    _, diags = load(
        "virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\nUDP_CHECK {\npayload 12zz\n}\n}\n}"
    )
    assert errors(diags) == ["t.conf:4: error: payload: '12zz' is not a hex string"]


def test_file_and_bfd_checks() -> None:
    vs, diags = vs1(
        """virtual_server 10.0.0.1 80 {
real_server 10.0.0.2 80 {
FILE_CHECK {
track_file tf1
dynamic
weight -5 reverse
}
BFD_CHECK {
name bfd1
alpha
weight 10
}
}
}"""
    )
    # keepalived 2.2.7's BFD_CHECK knows name and alpha only (check_bfd.c).
    assert [(d.where.line if d.where else None, d.message) for d in diags] == [
        (11, "unknown keyword 'weight'")
    ]
    fc, bc = vs.real_servers[0].checkers
    assert isinstance(fc, m.FileCheck) and fc.track_file == "tf1" and fc.dynamic
    assert fc.weight == m.Weight(value=-5, reverse=True)
    assert isinstance(bc, m.BfdCheck) and bc.name == "bfd1" and bc.alpha is True


def test_several_checkers_keep_their_order() -> None:
    vs, _ = vs1(
        "virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\nTCP_CHECK {\n}\n"
        "PING_CHECK {\n}\nTCP_CHECK {\nconnect_port 81\n}\n}\n}"
    )
    kinds = [c.kind for c in vs.real_servers[0].checkers]
    assert kinds == ["TCP_CHECK", "PING_CHECK", "TCP_CHECK"]


# ---------------------------------------------------------------- virtual_server_group


def test_virtual_server_group_entries() -> None:
    root, diags = load(
        """virtual_server_group G1 {
10.0.0.1 80
10.0.0.1-10 80
192.168.200.250-192.168.201.10 443
192.168.202.8/29 8080
2001:db8::1-ff 80
10.9.9.9
fwmark 7
fwmark 8 inet6
}"""
    )
    assert diags == []
    (vsg,) = root.virtual_server_groups
    ip = ipaddress.ip_address
    assert vsg.name == "G1"
    r = vsg.items
    assert (r[0].first, r[0].last, r[0].port) == (ip("10.0.0.1"), ip("10.0.0.1"), 80)
    assert (r[1].first, r[1].last) == (ip("10.0.0.1"), ip("10.0.0.10"))
    assert (r[2].first, r[2].last) == (ip("192.168.200.250"), ip("192.168.201.10"))
    assert (r[3].first, r[3].last, r[3].port) == (ip("192.168.202.8"), ip("192.168.202.15"), 8080)
    assert (r[4].first, r[4].last) == (ip("2001:db8::1"), ip("2001:db8::ff"))
    assert r[5].port is None
    assert r[6] == m.VsgFwmark(where=Where("t.conf", 8), fwmark=7)
    assert r[7].family is m.Family.INET6
    assert r[1].where == Where("t.conf", 3)
    assert vsg.has_ipv4 and vsg.has_ipv6


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.10-1 80", "'10.0.0.10-1': range end is before its start"),
        ("10.0.0.1-300 80", "'10.0.0.1-300' is not a valid address range"),
        ("10.0.0.1-2001::1 80", "'10.0.0.1-2001::1': range ends in a different address family"),
        ("10.0.0.1 80 90", "extra words: 90"),
        ("fwmark 7 inet5", "'inet5' is not one of inet, inet6"),
        ("nonsense 80", "'nonsense' is not a valid IP address"),
    ],
)
def test_bad_virtual_server_group_entries(entry: str, message: str) -> None:
    root, diags = load(f"virtual_server_group G1 {{\n{entry}\n10.0.0.1 80\n}}")
    assert errors(diags) == [f"t.conf:2: error: virtual_server_group: {message}"]
    assert len(root.virtual_server_groups[0].items) == 1  # the good entry is kept


# ---------------------------------------------------------------- SSL and bfd_instance


def test_ssl_block() -> None:
    root, diags = load("SSL {\npassword secret\nca /etc/ca.pem\ncertificate /c.pem\nkey /k.pem\n}")
    assert diags == []
    assert root.ssl == m.SslConfig(
        where=Where("t.conf", 1),
        password="secret",
        ca="/etc/ca.pem",
        certificate="/c.pem",
        key="/k.pem",
    )


def test_bfd_instance() -> None:
    root, diags = load(
        """bfd_instance B1 {
neighbour_ip 10.0.0.2
source_ip 10.0.0.1
min_rx 5.5
min_tx 20
idle_tx 2000
multiplier 3
passive
ttl 64
hoplimit 32
max_hops 2
weight -20 reverse
checker
}
bfd_instance B2 {
neighbor_ip 2001:db8::2
}"""
    )
    assert diags == []
    b1, b2 = root.bfd_instances
    assert b1.name == "B1" and b1.neighbor_ip == ipaddress.ip_address("10.0.0.2")
    assert (b1.min_rx, b1.min_tx, b1.idle_tx, b1.multiplier) == (5.5, 20, 2000, 3)
    assert b1.passive and b1.checker and not b1.vrrp
    # `hoplimit` is `ttl` under another name (bfd_parser.c): the last one written wins.
    assert (b1.ttl, b1.hops, b1.max_hops) == (32, 32, 2)
    assert b1.weight == m.Weight(value=-20, reverse=True)
    assert b1.to_checker and not b1.to_vrrp and b2.to_vrrp and b2.to_checker
    # keepalived's defaults; the hop count is the family's (255 IPv4, 64 IPv6).
    assert (b2.min_rx, b2.min_tx, b2.idle_tx, b2.multiplier, b2.ttl) == (10, 10, 1000, 5, None)
    assert b2.hops == 64
    # keepalived's uint8_t max_hops: -1 is 255 ("no check"), cut to the hop count.
    for max_hops, hops, used in ((-1, 255, 255), (-1, 64, 64), (9, 5, 5), (3, 5, 3)):
        b = replace(b2, max_hops=max_hops, ttl=hops)
        assert b.max_hops_used == used
    assert checks(root) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("multiplier 0", "multiplier: 0 is out of range [1-255]"),
        ("idle_tx 10", "idle_tx: number '10' outside range [1000.000, 4294967.000]"),
        ("weight 254", "weight: 254 is out of range [-253-253]"),
        ("weight 5 sideways", "weight: unknown weight option sideways"),
        ("min_rx 0.5", "min_rx: number '0.5' outside range [1.000, 4294967.000]"),
        ("min_tx 1.2345", "min_tx: number '1.2345' has too many decimal places"),
        ("max_hops -2", "max_hops: -2 is out of range [-1-255]"),
    ],
)
def test_bad_bfd_values(line: str, message: str) -> None:
    _, diags = load(f"bfd_instance B1 {{\nneighbor_ip 10.0.0.2\n{line}\n}}")
    assert errors(diags) == [f"t.conf:3: error: {message}"]


def test_bfd_instance_checks() -> None:
    root, _ = load(
        "bfd_instance B1 {\n}\nbfd_instance B1 {\nneighbor_ip 10.0.0.1\n}\n"
        "bfd_instance B2 {\nneighbor_ip 10.0.0.1\nsource_ip 2001::1\n}"
    )
    assert checks(root) == [
        # keepalived's end handler speaks at the block's closing line
        "t.conf:2: warning: Configuration error: BFD instance B1 has no neighbor address set,"
        " disabling instance",
        "t.conf:3: warning: Configuration error: BFD instance B1 already configured - ignoring",
        "t.conf:9: warning: Configuration error: BFD instance B2 source address 2001::1 and"
        " neighbor address 10.0.0.1 are not of the same family, disabling instance",
        "t.conf:3: warning: BFD B1 already specified",
    ]
