"""fastha.drivers.netlink inside a namespace, checked with iproute2's JSON output."""

from __future__ import annotations

import json
import select
import subprocess
from typing import Any

import pytest

from tests.support.netns import PYTHON, Node, Topology

pytestmark = pytest.mark.system

HELPER = ("-m", "tests.support.netlink_peer")


def _ops(topo: Topology, node: Node, *ops: tuple[str, dict[str, Any]]) -> list[Any]:
    res = topo.run(node, PYTHON, *HELPER, "ops", input=json.dumps(ops))
    out = [json.loads(ln) for ln in res.stdout.splitlines()]
    errors = [o for o in out if "error" in o]
    assert not errors, (errors, res.stderr)
    return [o["result"] for o in out]


def _ipj(topo: Topology, node: Node, *args: str) -> Any:
    return json.loads(topo.run(node, "ip", "-j", *args).stdout or "[]")


def _addr(topo: Topology, node: Node, local: str) -> dict[str, Any] | None:
    return next((a for a in topo.addresses(node) if a.get("local") == local), None)


def test_vip_add_remove_with_options(topo: Topology) -> None:
    a = topo.node("a", ipv4="198.18.0.1/24", ipv6="fd00:198:18::1/64")
    vip = {"address": "198.18.0.100", "prefixlen": 24, "dev": "eth0", "broadcast": "198.18.0.255",
           "label": "eth0:vi1", "scope": "global", "preferred_lft": 0, "noprefixroute": True}  # fmt: skip
    ptp = {"address": "198.18.1.1", "dev": "eth0", "peer": "198.18.1.2", "scope": "link"}
    v6 = {
        "address": "fd00:198:18::100",
        "prefixlen": 64,
        "dev": "eth0",
        "nodad": True,
        "home": True,
    }
    assert _ops(topo, a, ("add_address", vip), ("add_address", vip), ("add_address", ptp),
                ("add_address", v6)) == [True, False, True, True]  # fmt: skip

    got = _addr(topo, a, "198.18.0.100")
    assert got is not None
    assert got["prefixlen"] == 24 and got["broadcast"] == "198.18.0.255"
    assert got["label"] == "eth0:vi1" and got["scope"] == "global"
    assert got.get("noprefixroute") and got.get("deprecated")  # preferred_lft 0
    got = _addr(topo, a, "198.18.1.1")
    assert got is not None and got["address"] == "198.18.1.2" and got["scope"] == "link"
    got = _addr(topo, a, "fd00:198:18::100")
    assert got is not None and got.get("nodad") and got.get("home")

    listed = _ops(topo, a, ("list_addresses", {"ifname": "eth0"}))[0]
    assert {x["address"] for x in listed} >= {"198.18.0.100", "198.18.1.1", "fd00:198:18::100"}

    assert _ops(topo, a, ("delete_address", vip), ("delete_address", vip), ("delete_address", ptp),
                ("delete_address", v6)) == [True, False, True, True]  # fmt: skip
    assert _addr(topo, a, "198.18.0.100") is None
    assert _addr(topo, a, "198.18.1.1") is None
    assert _addr(topo, a, "fd00:198:18::100") is None
    assert _addr(topo, a, "198.18.0.1") is not None  # the node's own address is untouched


def test_routes_and_rules(topo: Topology) -> None:
    a = topo.node("a", ipv4="198.18.0.1/24", ipv6="fd00:198:18::1/64")
    via = {"dst": "198.19.0.0/16", "via": "198.18.0.254", "dev": "eth0", "table": 100,
           "metric": 5, "proto": "static", "src": "198.18.0.1"}  # fmt: skip
    hole = {"dst": "198.19.1.0/24", "type": "blackhole"}
    unr6 = {"dst": "fd00:198:19::/48", "type": "unreachable", "table": 100}
    link = {"dst": "198.19.2.0/24", "dev": "eth0", "scope": "link", "table": 100}
    rule1 = {"from_": "198.18.0.0/24", "table": 100, "priority": 100}
    rule2 = {"to": "198.19.0.0/16", "table": 100, "priority": 101, "fwmark": 1, "fwmask": 255,
             "iif": "eth0"}  # fmt: skip
    results = _ops(topo, a, *(("add_route", r) for r in (via, hole, unr6, link, via)),
                   ("add_rule", rule1), ("add_rule", rule2), ("add_rule", rule1))  # fmt: skip
    assert results == [True, True, True, True, False, True, True, False]

    t100 = {r["dst"]: r for r in _ipj(topo, a, "route", "show", "table", "100")}
    assert t100["198.19.0.0/16"]["gateway"] == "198.18.0.254"
    assert t100["198.19.0.0/16"]["metric"] == 5
    assert t100["198.19.0.0/16"]["prefsrc"] == "198.18.0.1"
    assert t100["198.19.0.0/16"]["protocol"] == "static"
    assert t100["198.19.2.0/24"]["scope"] == "link"
    main = {r["dst"]: r for r in _ipj(topo, a, "route", "show")}
    assert main["198.19.1.0/24"]["type"] == "blackhole"
    t100v6 = {r["dst"]: r for r in _ipj(topo, a, "-6", "route", "show", "table", "100")}
    assert t100v6["fd00:198:19::/48"]["type"] == "unreachable"
    rules = {r["priority"]: r for r in _ipj(topo, a, "rule", "show")}
    assert rules[100]["src"] == "198.18.0.0" and rules[100]["srclen"] == 24
    assert rules[100]["table"] == "100"
    assert rules[101]["dst"] == "198.19.0.0" and rules[101]["iif"] == "eth0"
    assert rules[101]["fwmark"] == "0x1" and rules[101]["fwmask"] == "0xff"

    results = _ops(topo, a, *(("delete_route", r) for r in (via, hole, unr6, link, via)),
                   ("delete_rule", rule1), ("delete_rule", rule2), ("delete_rule", rule1))  # fmt: skip
    assert results == [True, True, True, True, False, True, True, False]
    assert _ipj(topo, a, "route", "show", "table", "100") == []
    assert "198.19.1.0/24" not in {r["dst"] for r in _ipj(topo, a, "route", "show")}
    assert not {100, 101} & {r["priority"] for r in _ipj(topo, a, "rule", "show")}


def _readline(proc: subprocess.Popen[str], timeout: float = 10) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no event from the link watcher"
    line = proc.stdout.readline()
    assert line, f"watcher exited: rc={proc.poll()}"
    return json.loads(line)


@pytest.mark.parametrize("where", ["interface", "bridge-port"])
def test_link_watcher_reports_down_and_up(topo: Topology, where: str) -> None:
    a = topo.node("a", ipv4="198.18.0.1/24")
    proc = topo.popen(a, PYTHON, *HELPER, "watch", stdout=subprocess.PIPE, text=True, bufsize=1)
    initial = _readline(proc)["initial"]
    assert initial == {"lo": True, "eth0": True}
    port = where == "bridge-port"  # carrier loss: IFF_UP stays, IFF_RUNNING goes
    topo.link_down(a, port=port)
    assert _readline(proc) == {"ifname": "eth0", "ifindex": a.ifindex, "up": False}
    topo.link_up(a, port=port)
    assert _readline(proc) == {"ifname": "eth0", "ifindex": a.ifindex, "up": True}


@pytest.mark.parametrize(("family", "mac"), [(4, "00:00:5e:00:01:33"), (6, "00:00:5e:00:02:33")])
def test_vmac_created_and_removed(topo: Topology, family: int, mac: str) -> None:
    a = topo.node("a", ipv4="198.18.0.1/24")
    fam = 10 if family == 6 else 2
    res = _ops(topo, a, ("create_vmac", {"ifname": "vrrp.51", "base": "eth0", "vrid": 51,
                                         "family": fam}))  # fmt: skip
    link = _ipj(topo, a, "-d", "link", "show", "dev", "vrrp.51")[0]
    assert link["ifindex"] == res[0]
    assert link["address"] == mac
    assert "UP" in link["flags"]
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "private"
    assert link["link"] == "eth0"
    assert _ops(topo, a, ("delete_vmac", {"ifname": "vrrp.51"}),
                ("delete_vmac", {"ifname": "vrrp.51"})) == [True, False]  # fmt: skip
    assert topo.run(a, "ip", "link", "show", "dev", "vrrp.51", check=False).returncode != 0
