"""Failover of one virtual router between real daemons in namespaces.

Every test runs with both nodes on keepalived (proving the harness and pinning the
behaviour fastha must match) and with both nodes on fastha. Bounds are protocol-level
and generous: "a master within 10 s" where the RFC needs 3 * advert_int + skew_time.
"""

from __future__ import annotations

import pytest

from tests.support.netns import Topology
from tests.support.vrrp_nodes import NodeSpec, Router, TrackScript, VrrpCluster, need_impl
from tests.support.vrrp_peer import FASTHA, command

pytestmark = pytest.mark.system

IMPLS = [
    pytest.param("keepalived", marks=pytest.mark.keepalived, id="keepalived"),
    pytest.param("fastha", id="fastha"),
]
# v3 with 0.2 s adverts: master_down_interval is about 0.7 s, so each step is quick.
FAST = Router(version=3, advert_int=0.2)
TIMEOUT = 10  # seconds: far above any master_down_interval used here


def _pair(topo: Topology, impl: str, router: Router = FAST, **hi: object) -> VrrpCluster:
    need_impl(impl)  # type: ignore[arg-type]
    return VrrpCluster(
        topo,
        router,
        [NodeSpec("a", impl, priority=150, **hi), NodeSpec("b", impl, priority=100)],  # type: ignore[arg-type]
    )


def _assert_sole_owner(c: VrrpCluster, name: str) -> None:
    """The VIP is on exactly ``name`` and the observer's ARP/ND is answered by its MAC."""
    c.wait_vip(name, TIMEOUT)
    assert [n.name for n in c.vip_holders()] == [name], c.logs()
    c.wait_observer_macs([c[name].mac], TIMEOUT)
    assert c.ping_vip(count=2), f"the VIP does not answer ping\n{c.logs()}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "router",
    [Router(version=2, advert_int=1), FAST, Router(version=3, family=6, advert_int=0.2)],
    ids=lambda r: r.label(),
)
def test_election_by_priority(topo: Topology, impl: str, router: Router) -> None:
    with _pair(topo, impl, router) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")
        assert c["b"].state() == "BACKUP"


@pytest.mark.parametrize("impl", IMPLS)
def test_failover_on_kill9_and_preemption_back(topo: Topology, impl: str) -> None:
    with _pair(topo, impl) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        c.kill("a")
        c.wait_master(TIMEOUT, expect="b")
        c.wait_vip("b", TIMEOUT)
        # A crashed daemon leaves its VIP configured: both nodes may answer now, but the
        # new master must be among them (it also sent gratuitous ARPs).
        assert c["b"].mac in c.observer_macs(), c.logs()
        c.start("a")  # a higher priority backup preempts (preempt is the default)
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")
        assert "MASTER" in c["b"].peer.states() and c["b"].state() == "BACKUP"


@pytest.mark.parametrize("impl", IMPLS)
def test_failover_on_sigterm_sends_priority_zero(topo: Topology, impl: str) -> None:
    with _pair(topo, impl) as c:
        with c.bridge_capture() as cap:
            c.start_all()
            c.wait_master(TIMEOUT, expect="a")
            assert c.stop("a") == 0, c.logs()
            c.wait_master(TIMEOUT, expect="b")
        _assert_sole_owner(c, "b")
        zero = cap.packets(f"vrrp.prio == 0 && eth.src == {c['a'].mac}", fields=("frame.number",))
        assert zero, (
            f"a stopping master sends an advert with priority 0 (RFC 5798 6.4.3)\n{c.logs()}"
        )


@pytest.mark.parametrize("impl", IMPLS)
def test_failover_on_link_down(topo: Topology, impl: str) -> None:
    with _pair(topo, impl) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        c.link_down("a")
        c.wait_state("a", "FAULT", TIMEOUT)
        c.wait_master(TIMEOUT, expect="b")
        _assert_sole_owner(c, "b")
        assert not c.has_any_vip("a"), "a node in FAULT keeps no VIP"
        c.link_up("a")
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")


@pytest.mark.parametrize("impl", IMPLS)
def test_preemption_when_higher_priority_joins(topo: Topology, impl: str) -> None:
    with _pair(topo, impl) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        c.start("a")
        c.wait_master(TIMEOUT, expect="a")
        assert c["a"].peer.states()[:1] == ["BACKUP"], "a joins as backup, then preempts"
        _assert_sole_owner(c, "a")


@pytest.mark.parametrize("impl", IMPLS)
def test_preempt_delay_still_preempts(topo: Topology, impl: str) -> None:
    with _pair(topo, impl, preempt_delay=1) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        c.start("a")
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")


@pytest.mark.parametrize("impl", IMPLS)
def test_nopreempt_keeps_the_lower_priority_master(topo: Topology, impl: str) -> None:
    with _pair(topo, impl, nopreempt=True) as c:
        c.start("b")
        c.wait_master(TIMEOUT, expect="b")
        c.start("a")
        c.wait_state("a", "BACKUP", TIMEOUT)
        # Many master_down_intervals (about 0.7 s each) without preemption.
        with pytest.raises(AssertionError, match="timed out"):
            c.wait_state("a", "MASTER", 5)
        _assert_sole_owner(c, "b")
        c.stop("b")  # only the master's departure hands over
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")


@pytest.mark.parametrize("impl", IMPLS)
def test_track_script_weight_moves_the_master(topo: Topology, impl: str) -> None:
    flag = topo.tmp_path / "a-is-sick"
    check = TrackScript("chk_a", f"/usr/bin/test ! -e {flag}", weight=-100)
    with _pair(topo, impl, track_scripts=(check,)) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        flag.touch()  # a: 150 - 100 = 50 < 100
        c.wait_master(TIMEOUT, expect="b")
        _assert_sole_owner(c, "b")
        flag.unlink()  # a: back to 150, preempts
        c.wait_master(TIMEOUT, expect="a")
        _assert_sole_owner(c, "a")


CONFIG_SHAPES = [
    Router(version=2, advert_int=1, auth_pass="fastha1", unicast=True),
    Router(version=3, family=6, advert_int=0.2, unicast=True),
    Router(version=3, advert_int=0.2, vip_count=3),
]


@pytest.mark.keepalived
@pytest.mark.parametrize("router", CONFIG_SHAPES, ids=lambda r: r.label())
def test_generated_configs_are_clean_for_both(topo: Topology, router: Router) -> None:
    """The harness's keepalived.conf passes `keepalived -t` (exit 0: not even a warning)
    and `fastha check-config`, each run inside the node so the interface exists."""
    need_impl("keepalived")
    check = TrackScript("chk", "/usr/bin/true", weight=-20)
    specs = [
        NodeSpec("a", priority=150, preempt_delay=2, track_scripts=(check,)),
        NodeSpec("b", priority=100, nopreempt=True),
        NodeSpec("c", priority=50, state="MASTER"),
    ]
    c = VrrpCluster(topo, router, specs, observer=False)
    for n in c:
        kt = [*command("keepalived", n.conf, c.workdir / n.name), "-t"]
        r = topo.run(n.node, *kt, check=False)
        assert r.returncode == 0, f"keepalived -t exit {r.returncode}\n{r.stdout}{r.stderr}"
        r = topo.run(n.node, str(FASTHA), "check-config", "-f", str(n.conf), check=False)
        assert r.returncode == 0, f"fastha check-config exit {r.returncode}\n{r.stdout}{r.stderr}"
