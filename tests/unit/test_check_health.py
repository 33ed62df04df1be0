"""Checker and virtual-server health (pure): retry counting, alpha, quorum with
hysteresis, sorry server, inhibit_on_failure, misc_dynamic weights, fan-out, omega."""

from __future__ import annotations

import ipaddress

import pytest

from fastha.check.health import (
    TRANSITIONS,
    Changed,
    CheckerHealth,
    CheckState,
    Health,
    IllegalTransition,
    Log,
    Notify,
    Outcome,
)
from fastha.check.spec import Check, Endpoint, Plan, RsKey, RsPlan, TcpSpec, VsPlan
from fastha.config.model_lvs import NotifyScript

pytestmark = pytest.mark.unit

OK, FAIL = Outcome(True), Outcome(False, "refused")


def key(n: int) -> RsKey:
    return RsKey(ipaddress.ip_address(f"10.0.0.{n}"), 80)


def tcp(n: int, *, retry: int = 1, alpha: bool = False) -> Check:
    ep = Endpoint(host=key(n).address, port=80)
    return Check(probe=TcpSpec(endpoint=ep), retry=retry, alpha=alpha, delay_loop=1.0)


def plan(
    n: int = 3,
    *,
    retry: int = 1,
    alpha: bool = False,
    weights: tuple[int, ...] | None = None,
    inhibit: bool = False,
    sorry: bool = False,
    sorry_inhibit: bool = False,
    quorum: int = 1,
    hysteresis: int = 0,
    notify: bool = False,
    omega: bool = False,
    vss: int = 1,
) -> Plan:
    checks = tuple(tcp(i + 1, retry=retry, alpha=alpha) for i in range(n))
    ws = weights or (1,) * n
    rss = tuple(
        RsPlan(
            key=key(i + 1),
            weight=ws[i],
            inhibit_on_failure=inhibit,
            checks=(i,),
            notify_up=NotifyScript(command=f"/up {i + 1}") if notify else None,
            notify_down=NotifyScript(command=f"/down {i + 1}") if notify else None,
        )
        for i in range(n)
    )
    vs = tuple(
        VsPlan(
            name=f"[192.0.2.{v + 1}]:tcp:80",
            quorum=quorum,
            hysteresis=hysteresis,
            quorum_up=NotifyScript(command="/qup") if notify else None,
            quorum_down=NotifyScript(command="/qdown") if notify else None,
            sorry_server=RsKey(ipaddress.ip_address("10.9.9.9"), 80) if sorry else None,
            sorry_server_inhibit=sorry_inhibit,
            omega=omega,
            real_servers=rss,
        )
        for v in range(vss)
    )
    return Plan(virtual_servers=vs, checks=checks)


def logs(actions: list) -> list[str]:
    return [a.text for a in actions if isinstance(a, Log)]


def notifies(actions: list) -> list[str]:
    return [a.script.command for a in actions if isinstance(a, Notify) and a.script is not None]


# ---------------------------------------------------------------- checker


def test_transitions_table_is_enforced() -> None:
    c = CheckerHealth()
    assert CheckState.PENDING_UP not in TRANSITIONS[CheckState.UP]
    c.state = CheckState.UP
    with pytest.raises(IllegalTransition):
        c._go(CheckState.PENDING_DOWN)


@pytest.mark.parametrize("retry", [0, 1, 2, 5])
def test_up_checker_goes_down_after_retry_plus_one_failures(retry: int) -> None:
    c = CheckerHealth(retry=retry)
    for i in range(retry):
        s = c.feed(False)
        assert s.retrying and not s.edge and c.up and s.retry_it == i + 1
    s = c.feed(False)
    assert s.edge and not s.up and not s.retrying and s.retry_it == retry
    assert c.state is CheckState.DOWN and c.retry_it == 0


def test_down_checker_is_not_retried_and_one_success_brings_it_up() -> None:
    c = CheckerHealth(retry=3)
    for _ in range(4):
        c.feed(False)
    assert not c.up
    for _ in range(5):  # already known dead: no retries, no edges
        s = c.feed(False)
        assert not s.retrying and not s.edge
    s = c.feed(True)
    assert s.edge and s.up and c.state is CheckState.UP


def test_success_resets_the_retry_count() -> None:
    c = CheckerHealth(retry=2)
    assert c.feed(False).retrying
    assert c.feed(False).retrying
    assert not c.feed(True).edge  # still up, count reset
    assert c.feed(False).retrying and c.retry_it == 1


def test_alpha_starts_down_and_first_success_is_an_edge() -> None:
    c = CheckerHealth(retry=1, alpha=True)
    assert not c.up and not c.has_run
    s = c.feed(True)
    assert s.edge and c.up


def test_alpha_failures_are_retried_then_down_without_edge() -> None:
    c = CheckerHealth(retry=2, alpha=True)
    assert c.feed(False).retrying
    assert c.feed(False).retrying
    s = c.feed(False)
    assert not s.edge and not s.retrying and c.state is CheckState.DOWN


def test_non_alpha_first_success_is_not_an_edge() -> None:
    c = CheckerHealth()
    s = c.feed(True)
    assert not s.edge and c.state is CheckState.UP


# ---------------------------------------------------------------- real servers


def test_initial_pool_holds_every_server_without_alpha() -> None:
    h = Health(plan(3))
    acts = h.start()
    assert Changed(0) in acts
    assert h.desired(0) == {key(1): 1, key(2): 1, key(3): 1}


def test_alpha_pool_starts_empty_without_quorum_events() -> None:
    """keepalived starts every virtual server without quorum: an alpha pool short of it
    and without a sorry server is no event (no quorum_down); the first real server up
    gains it. tests/conformance/ipvs.py alpha_omega runs the same against keepalived."""
    h = Health(plan(2, alpha=True, notify=True))
    acts = h.start()
    assert h.desired(0) == {}
    assert not any("quorum" in t for t in logs(acts))
    assert notifies(acts) == []
    _, acts = h.feed(0, OK)
    assert h.desired(0) == {key(1): 1}
    assert "Adding service [10.0.0.1]:tcp:80 to VS [192.0.2.1]:tcp:80" in logs(acts)
    assert notifies(acts) == ["/up 1", "/qup"]


def test_removed_after_retries_and_readded() -> None:
    h = Health(plan(2, retry=2, notify=True))
    h.start()
    for _ in range(2):
        _, acts = h.feed(0, FAIL)
        assert acts == []
    _, acts = h.feed(0, FAIL)
    assert "Removing service [10.0.0.1]:tcp:80 from VS [192.0.2.1]:tcp:80" in logs(acts)
    assert Changed(0) in acts and notifies(acts) == ["/down 1"]
    assert h.desired(0) == {key(2): 1}
    _, acts = h.feed(0, OK)
    assert notifies(acts) == ["/up 1"] and h.desired(0) == {key(1): 1, key(2): 1}


def test_inhibit_on_failure_keeps_weight_zero() -> None:
    h = Health(plan(2, retry=0, inhibit=True, weights=(5, 7)))
    h.start()
    _, acts = h.feed(1, FAIL)
    assert "Disabling service [10.0.0.2]:tcp:80 from VS [192.0.2.1]:tcp:80" in logs(acts)
    assert h.desired(0) == {key(1): 5, key(2): 0}
    _, acts = h.feed(1, OK)
    assert "Enabling service [10.0.0.2]:tcp:80 to VS [192.0.2.1]:tcp:80" in logs(acts)
    assert h.desired(0) == {key(1): 5, key(2): 7}


def test_server_with_two_checkers_needs_both() -> None:
    p = plan(2, retry=0)
    rs = p.virtual_servers[0].real_servers
    both = RsPlan(key=rs[0].key, weight=1, checks=(0, 1))
    p = Plan(
        virtual_servers=(VsPlan(name="vs", real_servers=(both,)),),
        checks=p.checks,
    )
    h = Health(p)
    h.start()
    h.feed(0, FAIL)
    h.feed(1, FAIL)
    assert h.desired(0) == {}
    h.feed(0, OK)
    assert h.desired(0) == {}  # still one checker down
    h.feed(1, OK)
    assert h.desired(0) == {key(1): 1}


def test_misc_dynamic_weight_changes_an_alive_server() -> None:
    h = Health(plan(2, weights=(3, 3)))
    h.start()
    _, acts = h.feed(0, Outcome(True, weight=10))
    assert "Changing weight from 3 to 10 for active service [10.0.0.1]:tcp:80" in logs(acts)[0]
    assert Changed(0) in acts
    assert h.desired(0)[key(1)] == 10
    _, acts = h.feed(0, Outcome(True))  # exit 0: weight unchanged
    assert acts == [] and h.desired(0)[key(1)] == 10
    _, acts = h.feed(0, Outcome(True, weight=0))  # exit 2: drain, still alive
    assert h.desired(0)[key(1)] == 0 and h.alive(0, key(1))


def test_misc_dynamic_exit_0_or_a_failure_restores_the_configured_weight() -> None:
    """keepalived check_misc.c: exit 0 sets cur_weight 0 (the configured weight again);
    a failure drops the dynamic weight too (conformance: http_and_misc_checks)."""
    h = Health(plan(1, retry=0, weights=(3,)))
    h.start()
    h.feed(0, Outcome(True, weight=7, dynamic=True))
    assert h.desired(0) == {key(1): 7}
    h.feed(0, Outcome(True, dynamic=True))  # exit 0
    assert h.desired(0) == {key(1): 3}
    h.feed(0, Outcome(True, weight=7, dynamic=True))
    h.feed(0, Outcome(False, dynamic=True))  # exit 1: down, dynamic weight dropped
    assert h.desired(0) == {}
    h.feed(0, Outcome(True, dynamic=True))
    assert h.desired(0) == {key(1): 3}


def test_file_offset_moves_the_weight_and_clamps_at_zero() -> None:
    h = Health(plan(1, weights=(5,)))
    h.start()
    h.feed(0, Outcome(True, offset=-3))
    assert h.desired(0) == {key(1): 2}
    h.feed(0, Outcome(True, offset=-30))
    assert h.desired(0) == {key(1): 0}


# ---------------------------------------------------------------- quorum


# (weights, quorum, hysteresis, sequence of (server index, ok), expected quorum_up after each)
QUORUM_TABLE = [
    # quorum 2 of three weight-1 servers, no hysteresis
    ((1, 1, 1), 2, 0, [(0, False), (1, False), (1, True), (0, True)], [True, False, True, True]),
    # hysteresis 1: lost below 2-1=1 (i.e. at 0), regained only at 2+1=3
    (
        (1, 1, 1),
        2,
        1,
        [(0, False), (1, False), (2, False), (0, True), (1, True), (2, True)],
        [True, True, False, False, False, True],
    ),
    # weights count, not heads: quorum 5 with weights 4 and 2
    ((4, 2), 5, 0, [(1, False), (1, True), (0, False)], [False, True, False]),
]


@pytest.mark.parametrize(("weights", "quorum", "hyst", "seq", "expect"), QUORUM_TABLE)
def test_quorum_table(
    weights: tuple[int, ...],
    quorum: int,
    hyst: int,
    seq: list[tuple[int, bool]],
    expect: list[bool],
) -> None:
    h = Health(plan(len(weights), retry=0, weights=weights, quorum=quorum, hysteresis=hyst))
    h.start()
    got = []
    for idx, ok in seq:
        h.feed(idx, OK if ok else FAIL)
        got.append(h.vss[0].quorum_up)
    assert got == expect


def test_zero_weight_sum_loses_quorum_even_with_hysteresis() -> None:
    h = Health(plan(1, retry=0, weights=[2], quorum=1, hysteresis=1))  # gains 2 >= 1+1
    h.start()
    _, acts = h.feed(0, FAIL)
    assert "Lost quorum 1-1=0 > 0 for VS [192.0.2.1]:tcp:80" in logs(acts)


def test_sorry_server_replaces_the_pool_without_quorum() -> None:
    h = Health(plan(2, retry=0, sorry=True, quorum=2, notify=True))
    h.start()
    sorry = RsKey(ipaddress.ip_address("10.9.9.9"), 80)
    _, acts = h.feed(0, FAIL)
    assert "Adding sorry server [10.9.9.9]:tcp:80 to VS [192.0.2.1]:tcp:80" in logs(acts)
    assert notifies(acts) == ["/down 1", "/qdown"]
    assert h.desired(0) == {sorry: 1}  # the alive server leaves too
    _, acts = h.feed(0, OK)
    assert "Removing sorry server [10.9.9.9]:tcp:80 from VS [192.0.2.1]:tcp:80" in logs(acts)
    assert h.desired(0) == {key(1): 1, key(2): 1}


def test_sorry_server_inhibit_and_inhibited_servers() -> None:
    h = Health(plan(2, retry=0, sorry=True, sorry_inhibit=True, inhibit=True, quorum=2))
    h.start()
    sorry = RsKey(ipaddress.ip_address("10.9.9.9"), 80)
    assert h.desired(0) == {key(1): 1, key(2): 1, sorry: 0}
    _, acts = h.feed(1, FAIL)
    assert "Enabling sorry server [10.9.9.9]:tcp:80 to VS [192.0.2.1]:tcp:80" in logs(acts)
    assert h.desired(0) == {key(1): 0, key(2): 0, sorry: 1}
    _, acts = h.feed(1, OK)
    assert "Disabling sorry server [10.9.9.9]:tcp:80 from VS [192.0.2.1]:tcp:80" in logs(acts)
    assert h.desired(0) == {key(1): 1, key(2): 1, sorry: 0}


def test_alpha_with_sorry_server_starts_on_the_sorry_server() -> None:
    h = Health(plan(2, alpha=True, sorry=True))
    h.start()
    sorry = RsKey(ipaddress.ip_address("10.9.9.9"), 80)
    assert h.desired(0) == {sorry: 1}
    h.feed(0, OK)
    assert h.desired(0) == {key(1): 1}


# ---------------------------------------------------------------- fan-out, omega


def test_one_check_fans_out_to_every_virtual_server() -> None:
    h = Health(plan(2, retry=0, vss=3, notify=True))
    h.start()
    assert h.users[0] == [(0, 0), (1, 0), (2, 0)]
    _, acts = h.feed(0, FAIL)
    assert {a.vs for a in acts if isinstance(a, Changed)} == {0, 1, 2}
    assert notifies(acts) == ["/down 1"] * 3
    assert all(h.desired(v) == {key(2): 1} for v in range(3))


def test_omega_runs_down_notifiers_at_stop() -> None:
    h = Health(plan(2, retry=0, notify=True, omega=True))
    h.start()
    h.feed(0, FAIL)
    assert notifies(h.stop()) == ["/down 2", "/qdown"]
    assert Health(plan(2, notify=True)).stop() == []
