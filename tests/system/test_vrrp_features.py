"""keepalived features of the VRRP child, end to end between fastha nodes in namespaces.

The basics (election, kill -9, SIGTERM, link down, preemption, nopreempt, the keepalived
interop matrix) live in test_failover_basic.py and test_interop_keepalived.py. Here:
track_script weights, sync groups, unicast, IPv6 with NA, notify scripts and the
notify FIFO, the priority 255 owner, use_vmac, SIGTERM and -V, virtual routes/rules and
the JSON signal. The VIP is always checked from the observer namespace (ARP/ND, ping).
Bounds are protocol-level and generous.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import vrrp_peer
from tests.support.drill_daemon import status
from tests.support.netns import PYTHON, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import (
    NodeSpec,
    Router,
    TrackScript,
    VrrpCluster,
    keepalived_conf,
    need_impl,
)

pytestmark = pytest.mark.system

TIMEOUT = 15  # seconds: far above any master_down_interval used here
FAST3 = Router(version=3, advert_int=0.2)


@pytest.fixture(autouse=True)
def _fastha(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """fastha nodes write their JSON signal output to their own run directory
    (keepalived's fixed /tmp/keepalived.json would be shared by every node); the few
    tests that run keepalived as the oracle leave its command line alone."""
    need_impl("fastha")
    need_tool("tcpdump")
    need_tool("tshark")
    orig = vrrp_peer.command

    def command(impl: vrrp_peer.Impl, conf: Path, rundir: Path) -> list[str]:
        argv = orig(impl, conf, rundir)
        return argv if impl == "keepalived" else [*argv, "--json-file", str(rundir / "state.json")]

    monkeypatch.setattr(vrrp_peer, "command", command)
    yield


def _pair(topo: Topology, router: Router = FAST3, **hi: object) -> VrrpCluster:
    return VrrpCluster(
        topo,
        router,
        [NodeSpec("a", "fastha", priority=150, **hi), NodeSpec("b", "fastha", priority=100)],  # type: ignore[arg-type]
    )


def _wait(what: str, cond: Callable[[], bool], c: VrrpCluster, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; {c.states()}\n{c.logs()}")
        time.sleep(0.1)


def _assert_sole_owner(c: VrrpCluster, name: str, vip: str | None = None) -> None:
    vip = vip or c.router.vip
    _wait(f"{name} to hold {vip}", lambda: _has(c, name, vip), c)
    holders = [n.name for n in c if _has(c, n.name, vip)]
    assert holders == [name], c.logs()
    c.wait_observer_macs([c[name].mac], TIMEOUT) if vip == c.router.vip else None
    if vip != c.router.vip:
        _wait(f"{vip} answered by {name}", lambda: c.observer_macs(vip) == [c[name].mac], c)
    assert c.ping_vip(vip, count=2), f"{vip} does not answer ping\n{c.logs()}"


def _has(c: VrrpCluster, name: str, address: str, ifname: str | None = None) -> bool:
    n = c[name]
    return address in {a.get("local") for a in c.topo.addresses(n.node, ifname)}


def _json(c: VrrpCluster, name: str) -> list[dict[str, object]]:
    """keepalived's JSON signal (SIGRTMIN+2) and the file it writes."""
    peer = c[name].peer
    path = peer.workdir / "state.json"
    path.unlink(missing_ok=True)
    assert peer.proc is not None
    os.kill(peer.proc.pid, signal.SIGRTMIN + 2)
    _wait(f"{path}", path.exists, c, 5)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _instance(dump: list[dict[str, object]], name: str = "VI_1") -> dict[str, object]:
    for entry in dump:
        data = entry["data"]
        assert isinstance(data, dict)
        if data["iname"] == name:
            return entry
    raise AssertionError(f"{name} not in {dump}")


def _write_conf(c: VrrpCluster, name: str, body: str, global_extra: str = "") -> None:
    """Replace a node's generated keepalived.conf (before it starts)."""
    c[name].conf.write_text(
        "global_defs {\n"
        f"    router_id {name}\n"
        "    enable_script_security\n"
        "    script_user root\n"
        f"{global_extra}"
        "}\n\n" + body
    )


# -- 1. track_script weight: the seed scenario --------------------------------------------


def test_track_script_weight_moves_mastership_and_back(topo: Topology) -> None:
    """A (150) tracks chk_nginx (weight -60, fall 2, rise 2); the check failing drops it
    to 90 < B's 100: B takes over; the check recovering makes A preempt back."""
    sick = topo.tmp_path / "nginx-down"
    chk = TrackScript("chk_nginx", f"/usr/bin/test ! -e {sick}", interval=1, weight=-60,
                      fall=2, rise=2)  # fmt: skip
    with _pair(topo, Router(version=2, advert_int=1), track_scripts=(chk,)) as c:
        with c.bridge_capture() as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
            assert _instance(_json(c, "a"))["data"]["effective_priority"] == 150  # type: ignore[index]
            sick.touch()
            c.wait_master(TIMEOUT, expect="b")
            _assert_sole_owner(c, "b")
            data = _instance(_json(c, "a"))["data"]
            assert data["effective_priority"] == 90 and data["base_priority"] == 150, data  # type: ignore[index]
            sick.unlink()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
        a_prios = [
            int(p["vrrp.prio"])
            for p in cap.packets(f"vrrp && eth.src == {c['a'].mac}", fields=("vrrp.prio",))
        ]
        # The effective priority goes on the wire: 150, then 90 while A is still master
        # (until B's master-down timer fires), then 150 again after preempting back.
        assert 90 in a_prios, a_prios
        assert a_prios[0] == 150 and a_prios[-1] in (150, 0), a_prios
        assert "VRRP_Script(chk_nginx) failed" in c["a"].peer.log()


def test_track_process_moves_mastership_and_back(topo: Topology) -> None:
    """A (150) tracks a process (vrrp_track_process, weight -60): it dying drops A to
    90 < B's 100, B takes over; started again, A preempts back. The process is a copy
    of sleep under a name of its own; A's daemon runs in a network namespace, so this
    also covers the path where the kernel's process events are out of reach."""
    exe = topo.tmp_path / f"fhvrrp{os.getpid() % 10**6}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    tracked = ("vrrp_track_process tp {", f"    process {exe.name}", "    weight -60", "}")
    proc = subprocess.Popen([exe, "1000"])
    try:
        with _pair(topo, FAST3, root_extra=tracked, extra=("track_process {", "    tp", "}")) as c:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
            assert status(topo, c["a"])["vrrp"]["instances"][0]["effective_priority"] == 150
            proc.kill()
            proc.wait()
            c.wait_master(TIMEOUT, expect="b")
            _assert_sole_owner(c, "b")
            assert status(topo, c["a"])["vrrp"]["instances"][0]["effective_priority"] == 90
            # A reload that softens the weight: the tracker is rebuilt from a new scan
            # (still nothing running), and A at 130 preempts back.
            a = c["a"]
            spec = dataclasses.replace(a.spec, root_extra=(*tracked[:2], "    weight -20", "}"))
            a.conf.write_text(keepalived_conf(c.router, spec, a.node, [c["b"].node]))
            assert a.peer.proc is not None
            a.peer.proc.send_signal(signal.SIGHUP)
            _wait("a's reload", lambda: "Reload finished" in a.peer.log(), c)
            c.wait_master(TIMEOUT, expect="a")
            assert status(topo, a)["vrrp"]["instances"][0]["effective_priority"] == 130
            proc = subprocess.Popen([exe, "1000"])
            _wait("a back at 150", lambda: status(topo, a)["vrrp"]["instances"][0][
                "effective_priority"] == 150, c)  # fmt: skip
            _assert_sole_owner(c, "a")
            log = c["a"].peer.log()
            assert "VRRP_Track_Process(tp) lost quorum (0 running)" in log, log
            assert "VRRP_Track_Process(tp) has quorum (1 running)" in log, log
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("family", [4, 6])
def test_strict_master_drops_traffic_to_its_vips(topo: Topology, family: int) -> None:
    """vrrp_strict without accept (RFC 5798 §6.1 Accept_Mode off): the master answers ARP
    and Neighbor Solicitations for the VIP, so hosts send to it, but packets addressed to
    the VIP are dropped (keepalived's nftables rules; drivers/firewall); the node's own
    address still answers. The rules leave with the daemon."""
    need_tool("nft")
    router = Router(version=3, family=family, advert_int=0.2,  # type: ignore[arg-type]
                    global_extra=("vrrp_strict",))  # fmt: skip
    with _pair(topo, router) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        _wait("a to hold the VIP", lambda: _has(c, "a", router.vip), c)
        c.wait_observer_macs([c["a"].mac], TIMEOUT)  # ARP / ND still answered
        a = c["a"]
        own = a.node.ipv4 if family == 4 else a.node.ipv6
        assert own is not None and c.ping_vip(own, count=1), "a's own address must answer"
        assert not c.ping_vip(count=2), f"{router.vip} answered ping in no_accept mode"
        listed = topo.run(a.node, "nft", "list", "table", "inet", "fastha").stdout
        assert router.vip in listed, listed
        assert a.peer.log().count("no_accept: nftables table inet fastha drops") == 1
        c.stop("a")
        c.wait_master(TIMEOUT, expect="b")
        tables = topo.run(a.node, "nft", "list", "tables").stdout
        assert "fastha" not in tables, tables
        _wait("b to hold the VIP", lambda: _has(c, "b", router.vip), c)
        assert not c.ping_vip(count=1), "b in no_accept mode answered ping"


# -- 2. sync groups ------------------------------------------------------------------------


def _sync_conf(c: VrrpCluster, name: str, priority: int, track: bool) -> str:
    n = c[name].node
    out = ["vrrp_sync_group G1 {", "    group {", "        VI_1", "        VI_2", "    }", "}", ""]
    for inst, vrid, vip in (("VI_1", 51, "198.18.0.100"), ("VI_2", 52, "198.18.0.101")):
        out += [
            f"vrrp_instance {inst} {{",
            "    state BACKUP",
            f"    interface {n.ifname}",
            f"    virtual_router_id {vrid}",
            f"    priority {priority}",
            "    advert_int 0.2",
            "    virtual_ipaddress {",
            f"        {vip}/24",
            "    }",
        ]
        if track and inst == "VI_2":
            out += ["    track_interface {", "        trk0", "    }"]
        out += ["}", ""]
    return "\n".join(out)


def test_sync_group_member_fault_moves_the_whole_group(topo: Topology) -> None:
    with _pair(topo) as c:
        a = c["a"].node
        # A veth pair inside a's namespace (this kernel has no dummy module).
        topo.run(a, "ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
        topo.run(a, "ip", "link", "set", "trk1", "up")
        topo.run(a, "ip", "link", "set", "trk0", "up")
        _write_conf(c, "a", _sync_conf(c, "a", 150, track=True), "    vrrp_version 3\n")
        _write_conf(c, "b", _sync_conf(c, "b", 100, track=False), "    vrrp_version 3\n")
        c.start_all()
        for inst in ("VI_1", "VI_2"):
            _wait(f"a MASTER of {inst}", lambda i=inst: c["a"].peer.state(i) == "MASTER", c)
        _assert_sole_owner(c, "a", "198.18.0.100")
        _assert_sole_owner(c, "a", "198.18.0.101")

        topo.run(a, "ip", "link", "set", "trk0", "down")  # only VI_2 tracks it
        for inst in ("VI_1", "VI_2"):
            _wait(f"a FAULT in {inst}", lambda i=inst: c["a"].peer.state(i) == "FAULT", c)
            _wait(f"b MASTER of {inst}", lambda i=inst: c["b"].peer.state(i) == "MASTER", c)
        _assert_sole_owner(c, "b", "198.18.0.100")
        _assert_sole_owner(c, "b", "198.18.0.101")
        assert "VRRP_Group(G1)" in c["a"].peer.log()

        topo.run(a, "ip", "link", "set", "trk0", "up")
        for inst in ("VI_1", "VI_2"):
            _wait(f"a MASTER of {inst} again", lambda i=inst: c["a"].peer.state(i) == "MASTER", c)
        _assert_sole_owner(c, "a", "198.18.0.100")
        _assert_sole_owner(c, "a", "198.18.0.101")


# -- 3. unicast ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 3])
def test_unicast_election_and_failover(topo: Topology, version: int) -> None:
    router = Router(version=version, unicast=True, advert_int=1 if version == 2 else 0.2)  # type: ignore[arg-type]
    with _pair(topo, router) as c:
        with c.bridge_capture() as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
            assert c.stop("a") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="b")
            _assert_sole_owner(c, "b")
        a, b = c["a"].node, c["b"].node
        sent = cap.packets(f"vrrp && ip.src == {a.ipv4}", fields=("ip.dst", "ip.ttl", "vrrp.prio"))
        assert sent and {p["ip.dst"] for p in sent} == {b.ipv4}, sent  # never multicast
        assert {p["ip.ttl"] for p in sent} == {"255"}, sent
        assert sent[-1]["vrrp.prio"] == "0", "SIGTERM: a last advert with priority 0"
        from_b = cap.packets(f"vrrp && ip.src == {b.ipv4}", fields=("ip.dst", "vrrp.version"))
        assert from_b and {p["ip.dst"] for p in from_b} == {a.ipv4}
        assert {p["vrrp.version"] for p in from_b} == {str(version)}


# -- 4. IPv6 -------------------------------------------------------------------------------


def test_ipv6_vrrpv3_unsolicited_na_and_failover(topo: Topology) -> None:
    router = Router(version=3, family=6, advert_int=0.2)
    vip = router.vip
    with _pair(topo, router) as c:
        assert c.observer is not None
        with topo.capture(c.observer, "icmp6 or ip6 proto 112") as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a", vip)
            assert c.stop("a") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="b")
            _assert_sole_owner(c, "b", vip)
        # Unsolicited NA (RFC 4861 7.2.6): to all-nodes, Override set, not Solicited.
        na = cap.packets(
            f"icmpv6.type == 136 && icmpv6.nd.na.target_address == {vip} && ipv6.dst == ff02::1",
            fields=("eth.src", "ipv6.hlim", "icmpv6.nd.na.flag.o", "icmpv6.nd.na.flag.s"),
        )
        by = {p["eth.src"] for p in na}
        assert {c["a"].mac, c["b"].mac} <= by, f"unsolicited NA from each new master: {na}"
        assert all(p["ipv6.hlim"] == "255" for p in na), na
        assert all(p["icmpv6.nd.na.flag.o"] in ("1", "True") for p in na), na
        assert all(p["icmpv6.nd.na.flag.s"] in ("0", "False") for p in na), na
        adverts = cap.packets("vrrp", fields=("ipv6.src", "vrrp.prio", "_ws.expert.message"))
        assert adverts and all(p["ipv6.src"].startswith("fe80:") for p in adverts), adverts
        assert not [p for p in adverts if p.get("_ws.expert.message")], adverts  # checksums
        assert any(p["vrrp.prio"] == "0" for p in adverts)


# -- 5. notify scripts and the notify FIFO ---------------------------------------------------


def test_notify_scripts_generic_notify_and_fifo(topo: Topology) -> None:
    logf = topo.tmp_path / "notify.log"
    script = topo.tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {logf}\n')
    script.chmod(0o755)
    fifo = topo.tmp_path / "notify.fifo"
    os.mkfifo(fifo)
    fifo_out = topo.tmp_path / "fifo.out"
    extra = (
        f'notify_master "{script} a master"',
        f'notify_backup "{script} a backup"',
        f'notify_fault "{script} a fault"',
        f'notify_stop "{script} a stop"',
        f'notify "{script} a generic"',
    )
    router = Router(version=3, advert_int=0.2, global_extra=(f"notify_fifo {fifo}",))
    with _pair(topo, router, extra=extra) as c, fifo_out.open("wb") as out:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=out)
        try:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            c.link_down("a")
            c.wait_state("a", "FAULT", TIMEOUT)
            # b takes over only after its master-down interval: a link back up before
            # that leaves b BACKUP and no MASTER 100 line (the race CI hit under load).
            c.wait_state("b", "MASTER", TIMEOUT)
            c.link_up("a")
            c.wait_master(TIMEOUT, expect="a")
            assert c.stop("a") == 0
            assert c.stop("b") == 0
            reader.wait(timeout=10)  # every writer gone: EOF
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()

    def lines() -> list[str]:
        return logf.read_text().splitlines() if logf.exists() else []

    # Scripts run asynchronously; give the last ones (spawned at stop) a moment.
    want_a = ["a backup", "a master", "a fault", "a backup", "a master", "a stop"]
    deadline = time.monotonic() + 10
    while [ln for ln in lines() if "generic" not in ln] != want_a and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [ln for ln in lines() if "generic" not in ln] == want_a, lines()
    generic = [ln for ln in lines() if "generic" in ln]
    assert generic == [
        "a generic INSTANCE VI_1 BACKUP 150",
        "a generic INSTANCE VI_1 MASTER 150",
        "a generic INSTANCE VI_1 FAULT 150",
        "a generic INSTANCE VI_1 BACKUP 150",
        "a generic INSTANCE VI_1 MASTER 150",
        "a generic INSTANCE VI_1 STOP 150",
    ], generic
    # keepalived's FIFO lines: INSTANCE "name" STATE priority, from both nodes.
    fifo_lines = fifo_out.read_text().splitlines()
    assert fifo_lines[0] in ('INSTANCE "VI_1" BACKUP 150', 'INSTANCE "VI_1" BACKUP 100')
    assert 'INSTANCE "VI_1" MASTER 150' in fifo_lines
    assert 'INSTANCE "VI_1" FAULT 150' in fifo_lines
    assert 'INSTANCE "VI_1" STOP 150' in fifo_lines
    assert 'INSTANCE "VI_1" MASTER 100' in fifo_lines  # b while a was in FAULT
    assert 'INSTANCE "VI_1" STOP 100' in fifo_lines
    assert all(ln.startswith('INSTANCE "VI_1" ') for ln in fifo_lines), fifo_lines


# -- 6. preempt_delay and the priority 255 owner -----------------------------------------------


def test_preempt_delay_waits_before_preempting(topo: Topology) -> None:
    with _pair(topo, preempt_delay=3) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        c.start("a")
        c.wait_state("a", "BACKUP", TIMEOUT)
        started = time.monotonic()
        c.wait_master(TIMEOUT, expect="a")
        # Generous: master_down_interval is ~0.7 s, so without the delay A would preempt
        # well under 3 s after entering BACKUP.
        assert time.monotonic() - started > 1.5, c.logs()
        _assert_sole_owner(c, "a")


def test_priority_255_owner_takes_over_at_once(topo: Topology) -> None:
    with VrrpCluster(
        topo, FAST3, [NodeSpec("a", "fastha", priority=255), NodeSpec("b", "fastha", 100)]
    ) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        c.start("a")
        c.wait_master(TIMEOUT, expect="a")
        assert c["a"].peer.states()[0] == "MASTER", "the address owner never waits as BACKUP"
        _assert_sole_owner(c, "a")
        assert c["b"].state() == "BACKUP"


# -- 7. use_vmac --------------------------------------------------------------------------------


def test_use_vmac_master_sends_from_the_virtual_mac(topo: Topology) -> None:
    vmac = "00:00:5e:00:01:33"  # VRID 51
    with _pair(topo, Router(version=3, advert_int=0.2)) as c:
        for n in ("a", "b"):
            prio = 150 if n == "a" else 100
            me = c[n].node
            _write_conf(
                c, n,
                "vrrp_instance VI_1 {\n"
                f"    interface {me.ifname}\n    use_vmac\n    virtual_router_id 51\n"
                f"    priority {prio}\n    advert_int 0.2\n"
                "    virtual_ipaddress {\n        198.18.0.100/24\n    }\n}\n",
                "    vrrp_version 3\n",
            )  # fmt: skip
        with c.bridge_capture("arp or ip proto 112") as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _wait("the VIP on a's vrrp.51", lambda: _has(c, "a", "198.18.0.100", "vrrp.51"), c)
            link = json.loads(
                topo.run(c["a"].node, "ip", "-j", "-d", "link", "show", "vrrp.51").stdout
            )[0]
            assert link["address"] == vmac and link["linkinfo"]["info_kind"] == "macvlan", link
            _wait("the VIP answered from the VMAC", lambda: c.observer_macs() == [vmac], c)
            assert c.ping_vip(count=2)
            assert c.stop("a") == 0
            c.wait_master(TIMEOUT, expect="b")
            _wait("b answers from the VMAC", lambda: c.observer_macs() == [vmac], c)
        gone = topo.run(c["a"].node, "ip", "link", "show", "vrrp.51", check=False)
        assert gone.returncode != 0, "the VMAC interface is removed on stop"
        garps = cap.packets("arp.isgratuitous == 1", fields=("eth.src", "arp.src.hw_mac"))
        assert garps and {p["arp.src.hw_mac"] for p in garps} == {vmac}, garps
        adverts = cap.packets("vrrp", fields=("eth.src",))
        assert {p["eth.src"] for p in adverts} == {vmac}, "adverts go out from the VMAC"


# -- 8. SIGTERM and -V -----------------------------------------------------------------------


def test_sigterm_releases_vips_and_routes_and_dash_v_keeps_them(topo: Topology) -> None:
    extra = (
        "virtual_routes {",
        "    198.19.7.0/24 via 198.18.0.2",
        "}",
        "virtual_rules {",
        "    from 198.18.0.100 table 100",
        "}",
    )
    with VrrpCluster(
        topo,
        FAST3,
        [NodeSpec("a", "fastha", 150, extra=extra), NodeSpec("b", "fastha", 100, extra=extra)],
    ) as c:
        a = c["a"].node
        with c.bridge_capture() as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
            _wait("a's virtual route", lambda: "198.19.7.0/24" in _routes(topo, a), c)
            assert "198.19.7.0/24" not in _routes(topo, c["b"].node), "routes only on master"
            assert "198.18.0.100" in _rules(topo, a)
            assert c.stop("a") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="b")
        assert not c.has_any_vip("a")
        assert "198.19.7.0/24" not in _routes(topo, a)
        assert "198.18.0.100" not in _rules(topo, a)
        assert cap.packets(f"vrrp.prio == 0 && eth.src == {a.mac}", fields=("frame.number",))
        _wait("b's virtual route", lambda: "198.19.7.0/24" in _routes(topo, c["b"].node), c)

        # -V: a stopping master leaves its VIPs, routes and rules in place.
        c.stop("b")
        proc = topo.popen(
            a, *vrrp_peer.command("fastha", c["a"].conf, c["a"].peer.workdir), "-V",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait("a master again with its VIP", lambda: c.has_vip("a"), c)
            _wait("a's route again", lambda: "198.19.7.0/24" in _routes(topo, a), c)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        assert c.has_vip("a"), "-V keeps the VIPs"
        assert "198.19.7.0/24" in _routes(topo, a) and "198.18.0.100" in _rules(topo, a)


def _routes(topo: Topology, node: object) -> str:
    return topo.run(node, "ip", "route", "show").stdout  # type: ignore[arg-type]


def _rules(topo: Topology, node: object) -> str:
    return topo.run(node, "ip", "rule", "show").stdout  # type: ignore[arg-type]


# -- 9. runtime odds and ends -------------------------------------------------------------------


def test_json_signal_and_garp_refresh(topo: Topology) -> None:
    router = Router(
        version=3, advert_int=0.2, global_extra=("vrrp_garp_master_refresh 1",
                                                 "vrrp_garp_master_repeat 2")
    )  # fmt: skip
    with _pair(topo, router) as c:
        with c.bridge_capture("arp") as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            time.sleep(3.5)  # 3 refreshes
        garps = cap.packets(
            f"arp.isgratuitous == 1 && eth.src == {c['a'].mac}", fields=("frame.time_relative",)
        )
        # 2 at becoming master, 1 more per refresh (garp_master_refresh_repeat 1).
        assert len(garps) >= 4, garps
        dump = _json(c, "a")
        entry = _instance(dump)
        data, stats = entry["data"], entry["stats"]
        assert isinstance(data, dict) and isinstance(stats, dict)
        assert data["state"] == 2 and data["vrid"] == 51 and data["version"] == 3  # MASTER
        assert data["base_priority"] == 150 and data["effective_priority"] == 150
        assert data["vips"] == ["198.18.0.100/24"] or data["vips"][0].startswith("198.18.0.100")
        assert stats["become_master"] == 1 and stats["advert_sent"] > 0
        b = _instance(_json(c, "b"))
        assert b["data"]["state"] == 1 and b["stats"]["advert_rcvd"] > 0  # type: ignore[index]


def test_restart_after_crash_removes_stale_vips(topo: Topology) -> None:
    """kill -9 leaves the VIP configured; the next start (as BACKUP) removes it, as
    keepalived does at init, so only the master answers ARP for it."""
    with _pair(topo) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        _wait("b to hold the VIP", lambda: c.has_vip("b"), c)  # MASTER is logged before
        c.kill("b")
        assert c.has_vip("b"), "a crashed master leaves its VIP behind"
        c.start("a")
        c.wait_master(TIMEOUT, expect="a")
        c.start("b")
        c.wait_state("b", "BACKUP", TIMEOUT)
        _wait("b to drop the stale VIP", lambda: not c.has_any_vip("b"), c)
        _assert_sole_owner(c, "a")


def test_three_nodes_hand_over_by_priority(topo: Topology) -> None:
    specs = [
        NodeSpec("a", "fastha", 150),
        NodeSpec("b", "fastha", 100),
        NodeSpec("c", "fastha", 50),
    ]
    with VrrpCluster(topo, FAST3, specs) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")
        c.kill("a")
        c.wait_master(TIMEOUT, expect="b")
        assert c["c"].state() == "BACKUP", "the next priority takes over, not any backup"
        c.wait_observer_macs([c["b"].mac, c["a"].mac] if c.has_any_vip("a") else [c["b"].mac])
        assert c.stop("b") == 0
        c.wait_master(TIMEOUT, expect="c")
        _wait("c to hold the VIP", lambda: c.has_vip("c"), c)
        assert c.ping_vip(count=2)


@pytest.mark.parametrize("impl", ["fastha", "keepalived"])
def test_garp_repeat_and_interval(topo: Topology, impl: str) -> None:
    """vrrp_garp_master_repeat 4 with vrrp_garp_interval 0.2 and one VIP: keepalived sends
    the first GARP at once and queues the repeats with one flag per address, so the three
    repeats made while it is queued are one GARP, 0.2 s later (vrrp_arp.c queue_garp)."""
    router = Router(
        version=3,
        advert_int=0.2,
        global_extra=("vrrp_garp_master_repeat 4", "vrrp_garp_interval 0.2"),
    )
    nodes = [NodeSpec("a", impl, priority=150), NodeSpec("b", "fastha", priority=100)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, nodes) as c:
        with c.bridge_capture("arp") as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            _assert_sole_owner(c, "a")
            time.sleep(2)
        times = [
            float(p["frame.time_relative"])
            for p in cap.packets(
                f"arp.isgratuitous == 1 && eth.src == {c['a'].mac}",
                fields=("frame.time_relative",),
            )
        ]
        # The first burst only: vrrp_garp_master_delay's second one (5 s on) falls in the
        # capture when the start is slow.
        times = [t for t in times if times and t < times[0] + 4.5]
        assert len(times) == 2, times  # no refresh configured
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) > 0.1, f"vrrp_garp_interval 0.2 s spaces them: {gaps}"


def test_notify_fifo_script_reads_every_line(topo: Topology) -> None:
    """notify_fifo with notify_fifo_script: fastha creates the FIFO, runs the reader
    with the FIFO's name appended and loses no line written before it started."""
    fifo = topo.tmp_path / "events.fifo"
    out = topo.tmp_path / "events.out"
    reader = topo.tmp_path / "reader.sh"
    reader.write_text(f'#!/bin/sh\nexec cat "$1" >> {out}\n')
    reader.chmod(0o755)
    router = Router(
        version=3,
        advert_int=0.2,
        global_extra=(f"notify_fifo {fifo}", f"notify_fifo_script {reader}"),
    )
    with VrrpCluster(topo, router, [NodeSpec("a", "fastha", 150)]) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        want = ['INSTANCE "VI_1" BACKUP 150', 'INSTANCE "VI_1" MASTER 150']
        _wait("the reader to log both lines", lambda: out.exists() and
              out.read_text().splitlines() == want, c)  # fmt: skip
        assert c.stop("a") == 0
    assert fifo.exists() and os.path.exists(fifo)
    left = subprocess.run(["pgrep", "-f", f"cat {fifo}"], capture_output=True, text=True)
    assert not left.stdout.split(), "the reader is stopped with the daemon"


CLAIMER_MAC = "02:00:5e:00:aa:01"
CLAIM = """
import sys
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.sendrecv import sendp
mac, vip, iface = sys.argv[1:4]
if ":" in vip:
    frame = (Ether(src=mac, dst="33:33:00:00:00:01") / IPv6(dst="ff02::1", hlim=255)
             / ICMPv6ND_NA(tgt=vip, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=mac))
else:
    frame = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=vip, pdst=vip)
sendp(frame, iface=iface, count=3, inter=0.01, verbose=False)
"""
# tshark: the frames of a claim, their address field, and what makes one unsolicited
# (a solicited reply to a host probing its cache is not an announcement).
_CLAIM_FIELDS = {
    4: ("arp", "arp.src.proto_ipv4", "arp.isgratuitous == 1"),
    6: ("icmpv6.type == 136", "icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.s == 0"),
}


@pytest.mark.parametrize("family", [4, 6])
def test_master_re_announces_a_vip_another_mac_claims(topo: Topology, family: int) -> None:
    """A backup that was master for a moment (the master's adverts lost on the way to
    it) GARPs the VIP (or sends NAs), hears the master and steps down: hosts' neighbour
    caches point at a node without the VIP, and the master never heard that backup's
    advert. The master watches ARP and NAs and announces again when another MAC claims
    its VIP (drivers/arpwatch), one burst per advert interval, however many frames the
    claim had."""
    router = Router(version=3, family=family, advert_int=0.2,  # type: ignore[arg-type]
                    global_extra=("vrrp_garp_master_delay 0",))  # fmt: skip
    kind, addr_field, unsolicited = _CLAIM_FIELDS[family]
    with _pair(topo, router) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")
        assert c.observer is not None
        time.sleep(0.5)  # a's own take-over burst is over
        with c.bridge_capture("arp" if family == 4 else "icmp6") as cap:
            time.sleep(0.2)
            topo.run(c.observer, PYTHON, "-c", CLAIM, CLAIMER_MAC, router.vip,
                     c.observer.ifname)  # fmt: skip
            _wait("a's answer in its log", lambda: "announced by" in c["a"].peer.log(), c)
            time.sleep(0.5)
        fields = ("frame.time_relative", "eth.src", addr_field)
        claims = cap.packets(f"{kind} && eth.src == {CLAIMER_MAC}", fields=fields)
        answers = cap.packets(f"{kind} && {unsolicited} && eth.src == {c['a'].mac}"
                              f" && {addr_field} == {router.vip}", fields=fields)  # fmt: skip
        assert len(claims) == 3, claims
        first_claim = float(claims[0]["frame.time_relative"])
        assert [a[addr_field] for a in answers] == [router.vip] * 5, answers
        assert all(float(a["frame.time_relative"]) > first_claim for a in answers)
        if family == 4:
            assert not cap.packets(f"eth.src == {c['b'].mac}"), "the backup announced nothing"
        else:  # the backup may solicit (DAD, router/neighbour discovery), never advertise
            assert not cap.packets(f"{kind} && eth.src == {c['b'].mac}"), "the backup sent NAs"
        assert f"{router.vip} announced by {CLAIMER_MAC}" in c["a"].peer.log()
        # Every frame of the claim is counted, though one burst answered them all.
        counters = status(topo, c["a"])["vrrp"]["instances"][0]["counters"]
        assert counters["vip_claimed"] == len(claims), counters
        _assert_sole_owner(c, "a")
