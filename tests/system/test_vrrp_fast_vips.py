"""A new master's VIPs by prebuilt RTM_NEWADDR requests (runtime/vrrp/vips over
drivers/rtnl_raw), inside namespaces, checked with iproute2's JSON output.

The oracle is the slow path the daemon used before (pyroute2's ``addr("add")`` through
drivers/netlink): the same VIPs, every option keepalived's virtual_ipaddress takes,
must come out identical in the kernel. A request the kernel refuses (an interface
removed under a cached index) is logged in keepalived's words and counted, and the
instance's other addresses are added all the same.
"""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path
from typing import Any

import pytest

from fastha.config.loader import load
from fastha.runtime.vrrp.from_config import vrrp_spec
from tests.support.drill_daemon import status
from tests.support.netns import PYTHON, Node, Topology
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, need_impl

pytestmark = pytest.mark.system
TIMEOUT = 10  # seconds: a hang guard far above the takeover (master_down ~0.7 s)

CONF = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
{vips}
    }}
{extra}
}}
"""
VIPS = """\
        198.18.0.100/24 brd 198.18.0.255 label eth0:vi1 preferred_lft 0 noprefixroute
        198.18.1.1 peer 198.18.1.2 scope link
        198.18.2.1/32 scope host
"""
EXCLUDED = """\
    virtual_ipaddress_excluded {
        198.18.3.3/24 brd + dev eth0
        fd00:198:18::100/64 -nodad home
        fd00:198:18::101/128
    }
"""
ADDRS = ("198.18.0.100", "198.18.1.1", "198.18.2.1", "198.18.3.3", "fd00:198:18::100",
         "fd00:198:18::101")  # fmt: skip


def _conf(tmp_path: Path, vips: str, extra: str = "") -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF.format(vips=vips, extra=extra))
    return path


def _fast(topo: Topology, node: Node, conf: Path, unlink: str = "", *more: str) -> tuple[Any, str]:
    args = (str(conf), unlink, *more) if unlink else (str(conf), *more)
    res = topo.run(node, PYTHON, "-m", "tests.support.fast_vips_peer", *args)
    return json.loads(res.stdout), res.stderr


def _ours(topo: Topology, node: Node) -> list[dict[str, Any]]:
    """The VIP entries of `ip -j addr`, without what differs between two namespaces."""
    out = []
    for a in topo.addresses(node):
        if a.get("local") in ADDRS:
            out.append({k: v for k, v in a.items() if k not in ("tentative",)})
    return sorted(out, key=lambda a: a["local"])


def test_fast_path_adds_what_pyroute2_adds(topo: Topology, tmp_path: Path) -> None:
    fast = topo.node("a", ipv4="198.18.0.1/24", ipv6="fd00:198:18::1/64")
    slow = topo.node("b", ipv4="198.18.0.2/24", ipv6="fd00:198:18::2/64")
    conf = _conf(tmp_path, VIPS, EXCLUDED)
    got, log = _fast(topo, fast, conf)
    assert got["fast"], log
    assert got["errors"] == [0] * len(ADDRS) and got["refused"] == 0, (got, log)
    assert got["sent"] == len(ADDRS) and got["installed"]
    # Each answer logged as the slow path logs it, then the instance's line.
    for addr in ADDRS:
        assert f"netlink address added {addr}/" in log, log
    assert log.index("netlink address added fd00:198:18::101/") < log.index("(VI_1) setting VIPs.")

    result = load(conf)
    assert result.config is not None and not result.diagnostics, result.diagnostics
    spec = vrrp_spec(result.config).instances[0]
    ops = [("add_address", dataclasses.asdict(v)) for v in (*spec.vips, *spec.excluded)]
    res = topo.run(slow, PYTHON, "-m", "tests.support.netlink_peer", "ops", input=json.dumps(ops))
    assert [json.loads(ln).get("result") for ln in res.stdout.splitlines()] == [True] * len(ADDRS)

    mine, theirs = _ours(topo, fast), _ours(topo, slow)
    assert [a["local"] for a in mine] == sorted(ADDRS)
    assert mine == theirs

    # Sent again (a second takeover without the removal, e.g. after a crash): the
    # kernel says EEXIST, logged as the slow path logs an address already there. Then
    # removed: from the first delete on, a deletion is ours, not one by hand (a master
    # again before the last ack went back to BACKUP on its own deletion).
    got, log = _fast(topo, fast, conf, "", "--remove")
    assert got["errors"] == [errno.EEXIST] * len(ADDRS) and got["refused"] == 0, got
    assert "netlink address already present 198.18.0.100/24 dev eth0" in log, log
    assert got["installed"] and not got["installed_while_removing"], got
    assert not got["installed_after_removing"] and _ours(topo, fast) == [], got


def test_refused_address_is_logged_and_counted(topo: Topology, tmp_path: Path) -> None:
    a = topo.node("a", ipv4="198.18.0.1/24")
    topo.run(a, "ip", "link", "add", "gone0", "type", "veth", "peer", "name", "gone1")
    vips = "        198.18.0.100/24\n        198.18.5.1/32 dev gone0\n        198.18.0.101/24\n"
    got, log = _fast(topo, a, _conf(tmp_path, vips), unlink="gone0")
    assert got["fast"], log
    # The stale index: the kernel refuses that one address; the others are in.
    assert got["errors"] == [0, errno.ENODEV, 0], (got, log)
    assert got["refused"] == 1 and got["sent"] == 3
    assert "Netlink: error: No such device(19), type=RTM_NEWADDR(20), seq=" in log, log
    assert "netlink address 198.18.5.1/32 dev gone0 not added: No such device" in log, log
    present = {x["local"] for x in topo.addresses(a)}
    assert {"198.18.0.100", "198.18.0.101"} <= present


def test_daemon_takes_its_vips_by_the_fast_path(topo: Topology) -> None:
    """A fastha master's VIPs went by the prebuilt requests (its status counts them),
    are in the kernel and answer the observer from its MAC, logged as before. (IPv6:
    the first test's excluded addresses; NA bursts: test_vrrp_features.)"""
    need_impl("fastha")
    router = Router(version=3, advert_int=0.2, vip_count=2)
    with VrrpCluster(topo, router, [NodeSpec("a", "fastha", priority=150)]) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        c.wait_vip("a", TIMEOUT)
        c.wait_observer_macs([c["a"].mac], TIMEOUT)
        counted = status(topo, c["a"])["vrrp"]["netlink"]
        assert counted == {
            "address_requests": len(router.vips),
            "address_refused": 0,
            "address_send_errors": 0,
            "address_acks_lost": 0,
        }, (counted, c.logs())
        held = {a["local"] for a in topo.addresses(c["a"].node)}
        assert set(router.vip_addresses) <= held, held
        log = c["a"].peer.log()
        for vip in router.vips:
            assert f"netlink address added {vip} dev " in log, log
        assert "(VI_1) setting VIPs." in log, log
