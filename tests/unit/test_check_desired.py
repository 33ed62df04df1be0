"""Config + health -> the desired IPVS table (pure), from real keepalived.conf text."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from fastha.check.desired import (
    RANGE_MAX,
    DesiredError,
    DesiredTable,
    desired_table,
    netmask_of,
)
from fastha.check.health import Health, Outcome
from fastha.check.spec import build_plan
from fastha.config.loader import load
from fastha.ipvs.model import Dest, Fwd, Service, SvcFlags, TunFlags, TunType
from fastha.ipvs.planner import OpKind, apply, plan

pytestmark = pytest.mark.unit

TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP

CONF = """\
virtual_server_group G1 {
    10.0.1.1-3 80
    fwmark 5
}
virtual_server 10.0.0.1 80 {
    delay_loop 1
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    quorum 3
    sorry_server 192.168.9.9 8080
    real_server 192.168.1.1 8080 {
        weight 3
        uthreshold 100
        lthreshold 10
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.168.1.2 8080 {
        weight 2
        inhibit_on_failure
        TCP_CHECK { connect_timeout 1 }
    }
}
virtual_server fwmark 7 {
    lvs_sched mh
    mh-port
    lvs_method DR
    real_server 2001:db8::7 {
        TCP_CHECK { connect_port 80 }
    }
}
virtual_server group G1 {
    lvs_sched rr
    protocol TCP
    lvs_method TUN type gue port 6080 csum
    real_server 192.168.2.1 {
        HTTP_GET { url { path /health status_code 200 } }
    }
}
virtual_server 2001:db8::1 443 {
    lvs_sched sh
    sh-fallback
    ops
    lvs_method DR
    protocol TCP
    persistence_timeout
    persistence_granularity 64
    real_server 2001:db8::10 443 {
        lvs_method TUN type gre csum
    }
}
virtual_server 10.0.0.2 53 {
    lvs_sched lc
    lvs_method DR
    protocol UDP
    ops
    real_server 192.168.3.1 53 {
    }
}
virtual_server 10.0.0.3 0 {
    lvs_method DR
    protocol TCP
    real_server 192.168.3.2 0 {
    }
}
"""


def config(tmp_path: Path, text: str = CONF):
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    res = load(path)
    assert res.ok, [str(d) for d in res.errors]
    return res.config


def by_name(services: list[Service]) -> dict[str, Service]:
    return {str(s): s for s in services}


def test_every_kind_of_virtual_server(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    h = Health(build_plan(cfg))
    h.start()
    got = by_name(desired_table(cfg, h))
    nat = Dest("192.168.1.1", 8080, 3, Fwd.MASQ, u_threshold=100, l_threshold=10)
    gue = Dest("192.168.2.1", 0, 1, Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6080,
               tun_flags=TunFlags.CSUM)  # fmt: skip
    gue80 = dataclasses.replace(gue, port=80)
    assert got == {
        "TCP 10.0.0.1:80": Service(
            "10.0.0.1", 80, TCP, scheduler="wrr", timeout=300, netmask=24,
            dests=(nat, Dest("192.168.1.2", 8080, 2, Fwd.MASQ))),
        "FWM 7 IPv6": Service(
            fwmark=7, af=socket.AF_INET6, scheduler="mh", flags=SvcFlags.SCHED2,
            dests=(Dest("2001:db8::7", 0, 1, Fwd.ROUTE),)),
        # unless NAT, a group entry's dests take its port (keepalived ipvs_group_cmd)
        "TCP 10.0.1.1:80": Service("10.0.1.1", 80, TCP, scheduler="rr", dests=(gue80,)),
        "TCP 10.0.1.2:80": Service("10.0.1.2", 80, TCP, scheduler="rr", dests=(gue80,)),
        "TCP 10.0.1.3:80": Service("10.0.1.3", 80, TCP, scheduler="rr", dests=(gue80,)),
        "FWM 5": Service(fwmark=5, scheduler="rr", dests=(gue,)),
        # ops is for UDP only (keepalived resets it); a bare persistence_timeout is 360
        "TCP [2001:db8::1]:443": Service(
            "2001:db8::1", 443, TCP, scheduler="sh", flags=SvcFlags.SCHED1, timeout=360,
            netmask=64, dests=(Dest("2001:db8::10", 443, 1, Fwd.TUNNEL, tun_type=TunType.GRE,
                                    tun_flags=TunFlags.CSUM),)),
        "UDP 10.0.0.2:53": Service(
            "10.0.0.2", 53, UDP, scheduler="lc", flags=SvcFlags.ONEPACKET,
            dests=(Dest("192.168.3.1", 53, 1, Fwd.ROUTE),)),
        # port 0 needs persistence: keepalived sets the default
        "TCP 10.0.0.3:0": Service(
            "10.0.0.3", 0, TCP, scheduler="wlc", timeout=360,
            dests=(Dest("192.168.3.2", 0, 1, Fwd.ROUTE),)),
    }  # fmt: skip
    assert got["TCP [2001:db8::1]:443"].af == socket.AF_INET6
    assert got["TCP 10.0.0.1:80"].flags & SvcFlags.PERSISTENT


def test_health_drives_weights_inhibit_and_sorry_server(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    p = build_plan(cfg)
    h = Health(p)
    h.start()
    table = DesiredTable(cfg)

    def vs0() -> dict[tuple[str, int], int]:
        (svc,) = table.services(0, h.desired(0))
        return {d.key: d.weight for d in svc.dests}

    assert vs0() == {("192.168.1.1", 8080): 3, ("192.168.1.2", 8080): 2}
    rs2 = p.virtual_servers[0].real_servers[1].checks[0]
    for _ in range(2):  # retry 1: the second failure takes it down
        h.feed(rs2, Outcome(False))
    # inhibit_on_failure: weight 0; 3 < quorum 3? no: 3 >= 3 holds quorum
    assert vs0() == {("192.168.1.1", 8080): 3, ("192.168.1.2", 8080): 0}
    rs1 = p.virtual_servers[0].real_servers[0].checks[0]
    for _ in range(2):
        h.feed(rs1, Outcome(False))
    # quorum lost: the sorry server alone carries traffic (NAT, the VS's method)
    assert vs0() == {("192.168.1.2", 8080): 0, ("192.168.9.9", 8080): 1}
    h.feed(rs1, Outcome(True))
    assert vs0() == {("192.168.1.1", 8080): 3, ("192.168.1.2", 8080): 0}


def test_owned_names_every_configured_dest_whatever_its_health(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    table = DesiredTable(cfg)
    owned = by_name(table.owned())
    assert {d.key for d in owned["TCP 10.0.0.1:80"].dests} == {
        ("192.168.9.9", 8080), ("192.168.1.1", 8080), ("192.168.1.2", 8080)}  # fmt: skip
    assert table.vs_of(owned["FWM 5"].key).name == "G1"
    assert table.vs_of(owned["TCP 10.0.0.1:80"].key).name == "[10.0.0.1]:tcp:80"


def test_plan_from_empty_kernel_builds_exactly_the_desired_table(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    h = Health(build_plan(cfg))
    h.start()
    want = desired_table(cfg, h)
    foreign = Service("10.9.9.9", 80, dests=(Dest("10.9.9.10", 80),))
    ops = plan(want, [foreign], previous=DesiredTable(cfg).owned())
    assert {o.kind for o in ops} <= {OpKind.ADD_SERVICE, OpKind.ADD_DEST}
    after = apply([foreign], ops)
    assert by_name(after) == {**by_name(want), "TCP 10.9.9.9:80": foreign}
    # a real server that goes down leaves: one DEL_DEST, nothing else touched
    p = build_plan(cfg)
    h2 = Health(p)
    h2.start()
    cid = p.virtual_servers[1].real_servers[0].checks[0]
    h2.feed(cid, Outcome(False))
    h2.feed(cid, Outcome(False))
    ops = plan(desired_table(cfg, h2), after, previous=DesiredTable(cfg).owned())
    assert [(o.kind, str(o.service)) for o in ops] == [(OpKind.DEL_DEST, "FWM 7 IPv6")]


def test_ipv6_range_and_ipv6_fwmark_in_a_group(tmp_path: Path) -> None:
    cfg = config(tmp_path, """\
virtual_server_group G6 {
    2001:db8::a-c 80
    fwmark 9 inet6
}
virtual_server group G6 {
    lvs_sched wlc
    lvs_method NAT
    protocol TCP
    real_server 2001:db8::100 8080 {
    }
}
""")  # fmt: skip
    got = by_name(DesiredTable(cfg).owned())
    assert sorted(got) == ["FWM 9 IPv6", "TCP [2001:db8::a]:80", "TCP [2001:db8::b]:80",
                           "TCP [2001:db8::c]:80"]  # fmt: skip
    assert {s.netmask for s in got.values()} == {128}


def test_netmask_of() -> None:
    assert netmask_of(None) is None
    assert netmask_of("255.255.255.0") == 24
    assert netmask_of("255.255.0.0") == 16
    assert netmask_of("48") == 48


def test_a_huge_range_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path, """\
virtual_server_group BIG {
    10.0.0.0/8 80
}
virtual_server group BIG {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    real_server 10.1.0.1 80 {
    }
}
""")  # fmt: skip
    with pytest.raises(DesiredError, match=str(RANGE_MAX)):
        DesiredTable(cfg)


def test_real_server_ports_unless_nat_follow_keepalived(tmp_path: Path) -> None:
    """keepalived resets a DR/TUN real server's port to the service's, clears it for a
    fwmark service, and keeps it in a group (warning only); health and table agree."""
    cfg = config(tmp_path, """\
virtual_server 10.0.0.1 80 {
    lvs_method DR
    protocol TCP
    real_server 192.168.1.1 8080 {
        TCP_CHECK { connect_port 8080 }
    }
}
virtual_server fwmark 3 {
    lvs_method TUN
    real_server 192.168.1.2 8080 {
    }
}
virtual_server 10.0.0.2 80 {
    lvs_method NAT
    protocol TCP
    real_server 192.168.1.3 8080 {
    }
}
""")  # fmt: skip
    p = build_plan(cfg)
    assert [str(v.real_servers[0].key) for v in p.virtual_servers] == [
        "[192.168.1.1]:80", "[192.168.1.2]:0", "[192.168.1.3]:8080"]  # fmt: skip
    assert p.checks[0].probe.endpoint.port == 8080
    got = by_name(DesiredTable(cfg).owned())
    assert [d.key for s in got.values() for d in s.dests] == [
        ("192.168.1.1", 80), ("192.168.1.2", 0), ("192.168.1.3", 8080)]  # fmt: skip


EMPTY_POOL = """\
virtual_server 10.0.0.1 443 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
}
virtual_server 10.0.0.1 80 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    real_server 10.0.1.1 80 {
    }
}
"""


@pytest.mark.keepalived
def test_a_virtual_server_with_no_real_servers_is_not_programmed(tmp_path: Path) -> None:
    """keepalived (check_data.c validate_check_config) frees it: "Virtual server
    [10.0.0.1]:tcp:443 has no real servers - ignoring". Neither the desired IPVS table
    nor the health plan has it; keepalived -t says the same words."""
    from tests.support import keepalived
    from tests.support.prereq import need_tool

    path = tmp_path / "keepalived.conf"
    path.write_text(EMPTY_POOL)
    ka = keepalived.check(path, binary=need_tool("keepalived"))
    said = "Virtual server [10.0.0.1]:tcp:443 has no real servers - ignoring"
    assert any(said in m for m in ka.messages), ka.messages
    res = load(path)
    assert any(said in d.message for d in res.diagnostics)
    assert int(res.exit_code) == ka.returncode
    cfg = res.config
    keys = {
        str(s) for vi in range(len(DesiredTable(cfg))) for s in DesiredTable(cfg).services(vi, {})
    }
    assert keys == {"TCP 10.0.0.1:80"}
    assert [v.name for v in build_plan(cfg).virtual_servers] == ["[10.0.0.1]:tcp:80"]
