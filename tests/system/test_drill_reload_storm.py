"""Drill (issue 8): a reload storm under client traffic, VRRP part.

Two fastha nodes (`fastha daemon -P`: the supervising parent and its VRRP child), VRRPv3
at 100 ms: a (priority 150, MASTER) and b (100, BACKUP), and an observer pinging the VIP
198.18.0.100 every 10 ms. Then 100 SIGHUPs to a's parent, each with a's file rewritten
first, cycling through six kinds:

    unchanged | priority (120-200: never below b's 100, so mastership must not move) |
    VIP 198.18.0.101 added | broken syntax (an unclosed block) | VIP .101 removed |
    bad value (virtual_router_id 300)

A VRRPv3 advert carries the VIP list and keepalived (fastha too) drops adverts whose list
differs, so the VIP changes are written to b's file as well and b gets its SIGHUP at the
same moment (b's HUPs are not counted in the 100). Files are replaced by rename. The
first STEADY reloads wait for a's VRRP child to report the outcome before the next one;
the rest are a burst 2 ms apart, so the next HUP and file rewrite land while the parent
validates and the child reloads.

Violations (0 expected), judged from outside:
  - an address event for the untouched VIP 198.18.0.100 in a's namespace (`ip monitor
    address`), or .101 deleted/added other than by a removal/addition step;
  - a VRRP state change on either node (their logs);
  - a child restarted or replaced (status --json: pids and restart counters);
  - a broken file that reached a child (the parent must refuse it: no child outcome);
  - at the end: a's VIPs and priority other than the last valid file's (ip addr, status
    --json), or any VIP on b;
  - pings to the VIP unanswered (beyond the one in flight when ping stops).

DRILL_HUPS=N changes the count (CI: DRILL_HUPS=40).

    sudo .venv/bin/python -m pytest -s tests/system/test_drill_reload_storm.py
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.drill_daemon import (
    CHILD_FAILED,
    CHILD_FINISHED,
    PARENT_ACCEPTED,
    PARENT_REFUSED,
    Pinger,
    count,
    instance_view,
    status,
    wait_until,
)
from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, VrrpNode, keepalived_conf
from tests.system.test_vrrp_reload import AddressMonitor

pytestmark = pytest.mark.system

HUPS = int(os.environ.get("DRILL_HUPS", "100"))
STEADY = (HUPS * 4) // 5  # the rest is the burst
ADVERT = 0.1
VIP, EXTRA_VIP = "198.18.0.100", "198.18.0.101"
KINDS = ("unchanged", "priority", "add VIP", "broken syntax", "remove VIP", "bad value")
SEED = int(os.environ.get("DRILL_SEED", "8"))
TIMEOUT = 20.0  # hang guard per step
INPLACE = os.environ.get("DRILL_INPLACE") == "1"
# Known fastha bug (reported, issue 8 drill): the parent validates the file, then each
# child re-reads the file itself; what the child reads is not what the parent validated
# when the file changed in between. Rewritten in place during the burst, a child read a
# truncated (valid, empty) file and removed VI_1: VIP flap, b took over, 4 pings lost
# (seen once, the burst then waiting for the parent's verdict only). DRILL_INPLACE=1 writes
# in place; whether it hits depends on timing (it did not in three later runs).
KNOWN_BUG = "children re-read the file the parent validated (TOCTOU)"
RERUN = "sudo .venv/bin/python -m pytest -s tests/system/test_drill_reload_storm.py"


def _conf(c: VrrpCluster, n: VrrpNode, priority: int, vips: int) -> str:
    router = Router(version=3, advert_int=ADVERT, vip_count=vips)
    spec = NodeSpec(n.name, "fastha", priority, n.spec.state)
    return keepalived_conf(router, spec, n.node, [m.node for m in c if m is not n])


def _broken(text: str, kind: str) -> str:
    if kind == "broken syntax":
        return text.rstrip().rstrip("}") + "\n    priority 10\n"  # the block never closes
    return text.replace("virtual_router_id 51", "virtual_router_id 300")


def _write(path: Path, text: str) -> None:
    """As configuration management does (a rename): a reader sees the old file or the
    new one, never half of one. DRILL_INPLACE=1 rewrites in place (an editor, `cat >`):
    see KNOWN_BUG."""
    if INPLACE:
        path.write_text(text)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _grew(n: VrrpNode, before: str, *patterns: re.Pattern[str]) -> Callable[[], bool]:
    """True once the node's log holds more lines of any pattern than `before` did."""
    was = [count(p, before) for p in patterns]
    return lambda: any(count(p, n.peer.log()) > w for p, w in zip(patterns, was, strict=True))


def test_reload_storm_vrrp(topo: Topology) -> None:
    need_tool("ping")
    rng = random.Random(SEED)
    router = Router(version=3, advert_int=ADVERT)
    specs = [NodeSpec("a", "fastha", 150, "MASTER"), NodeSpec("b", "fastha", 100)]
    with VrrpCluster(topo, router, specs) as c:
        a, b = c["a"], c["b"]
        assert c.observer is not None
        c.start_all()
        c.wait_master(15, expect=a)
        c.wait_vip(a)
        st0 = wait_until(lambda: (s := status(topo, a)).get("vrrp", {}).get("instances") and s,
                         "a's status", TIMEOUT, c.logs)  # fmt: skip
        pids0 = {k: v["pid"] for k, v in st0["parent"]["children"].items()}
        b_pids0 = {k: v["pid"] for k, v in status(topo, b)["parent"]["children"].items()}
        states0 = (a.peer.states(), b.peer.states())

        violations: list[str] = []
        prio, vips = 150, 1  # the last valid file's
        applied = {k: 0 for k in KINDS}
        mon = AddressMonitor(topo, a.node, 77)
        pinger = Pinger(topo, c.observer, VIP, topo.tmp_path / "drill-storm-ping.log")
        expected_extra_events = 0
        deadline = time.monotonic() + 240
        t0 = time.monotonic()
        try:
            for i in range(HUPS):
                assert time.monotonic() < deadline, f"drill over its time budget at HUP {i}"
                kind = KINDS[i % len(KINDS)]
                applied[kind] += 1
                valid = kind not in ("broken syntax", "bad value")
                new_prio, new_vips = prio, vips
                if kind == "priority":
                    new_prio = rng.choice([p for p in range(120, 201, 5) if p != prio])
                elif kind == "add VIP":
                    new_vips = 2
                elif kind == "remove VIP":
                    new_vips = 1
                text = _conf(c, a, new_prio, new_vips)
                _write(a.conf, text if valid else _broken(text, kind))
                hup_b = valid and new_vips != vips
                if hup_b:
                    _write(b.conf, _conf(c, b, 100, new_vips))
                    expected_extra_events += 1
                log0 = a.peer.log()
                blog0 = b.peer.log()
                assert a.peer.proc is not None and b.peer.proc is not None
                a.peer.proc.send_signal(signal.SIGHUP)
                if hup_b:
                    b.peer.proc.send_signal(signal.SIGHUP)
                verdict = PARENT_ACCEPTED if valid else PARENT_REFUSED
                if i >= STEADY:
                    time.sleep(0.002)
                    if valid:
                        prio, vips = new_prio, new_vips
                    continue
                wait_until(_grew(a, log0, verdict), f"a's parent verdict on HUP {i} ({kind})",
                           TIMEOUT, c.logs)  # fmt: skip
                if valid:
                    wait_until(_grew(a, log0, CHILD_FINISHED, CHILD_FAILED),
                               f"a's child outcome on HUP {i}", TIMEOUT, c.logs)  # fmt: skip
                    if count(CHILD_FAILED, a.peer.log()) > count(CHILD_FAILED, log0):
                        violations.append(f"HUP {i} ({kind}): a's child refused a valid file")
                if hup_b:
                    wait_until(_grew(b, blog0, CHILD_FINISHED), f"b's reload on HUP {i}",
                               TIMEOUT, c.logs)  # fmt: skip
                if valid:
                    prio, vips = new_prio, new_vips
            storm_s = time.monotonic() - t0
            # Quiescence: every accepted HUP's child reload done (a HUP arriving while
            # the child reloads may be merged into the next re-read: wait for the count
            # of outcomes to stop moving, then for the file's state).
            accepted = count(PARENT_ACCEPTED, a.peer.log())
            want_vips = {VIP} | ({EXTRA_VIP} if vips == 2 else set())
            try:
                wait_until(lambda: instance_view(status(topo, a)).get("VI_1") == ("MASTER", prio)
                           and {x.get("local") for x in topo.addresses(a.node)} >= want_vips,
                           "the last valid file in force on a", TIMEOUT, c.logs)  # fmt: skip
            except AssertionError as exc:
                violations.append(f"end: last valid file not in force: {str(exc)[:300]}")
            time.sleep(5 * ADVERT)
        finally:
            sent, unanswered = pinger.stop()
            events = mon.stop()

        # Judges.
        vip_events = [e for e in events if f"inet {VIP}/" in e]
        violations += [f"untouched VIP event: {e}" for e in vip_events]
        extra_events = [e for e in events if f"inet {EXTRA_VIP}/" in e]
        if len(extra_events) != expected_extra_events:
            violations.append(
                f"{EXTRA_VIP}: {len(extra_events)} address events for {expected_extra_events} "
                f"add/remove steps: {extra_events}"
            )
        if (a.peer.states(), b.peer.states()) != states0:
            violations.append(f"VRRP state changes: a {a.peer.states()[len(states0[0]):]}, "
                              f"b {b.peer.states()[len(states0[1]):]}")  # fmt: skip
        st = status(topo, a)
        pids = {k: v["pid"] for k, v in st["parent"]["children"].items()}
        restarts = {k: v["restarts"] for k, v in st["parent"]["children"].items()}
        if pids != pids0 or any(restarts.values()):
            violations.append(f"a's children replaced: {pids0} -> {pids}, restarts {restarts}")
        b_st = status(topo, b)
        if {k: v["pid"] for k, v in b_st["parent"]["children"].items()} != b_pids0:
            violations.append("b's children replaced")
        have = {x.get("local") for x in topo.addresses(a.node)} & {VIP, EXTRA_VIP}
        if have != want_vips:
            violations.append(
                f"end: a holds {sorted(have)}, the last valid file {sorted(want_vips)}"
            )
        on_b = {x.get("local") for x in topo.addresses(b.node)} & {VIP, EXTRA_VIP}
        if on_b:
            violations.append(f"end: b holds {sorted(on_b)}")
        view = instance_view(st)
        if view.get("VI_1") != ("MASTER", prio):
            violations.append(f"end: a's VI_1 is {view.get('VI_1')}, want ('MASTER', {prio})")
        refused = count(PARENT_REFUSED, a.peer.log())
        reached = count(CHILD_FINISHED, a.peer.log()) + count(CHILD_FAILED, a.peer.log())
        if unanswered > 0:
            violations.append(f"{unanswered} of {sent} pings to the VIP unanswered")
        if a.peer.crashed or b.peer.crashed:
            violations.append("a daemon exited")

    print(
        f"\ndrill reload-storm (VRRP): HUPs {HUPS} to a's parent ({STEADY} waiting for the "
        f"child, {HUPS - STEADY} burst) in {storm_s:.1f} s, seed {SEED}; kinds "
        + ", ".join(f"{k} {v}" for k, v in applied.items())
        + f"\n  faults injected: {applied['broken syntax'] + applied['bad value']} invalid files"
        f"; parent accepted {accepted}, refused {refused}; a's child reloads {reached}"
        f"\n  VIP {VIP} address events {len(vip_events)}, {EXTRA_VIP} events "
        f"{len(extra_events)} (expected {expected_extra_events}); pings {sent}, unanswered "
        f"{unanswered}; final priority {prio}, VIPs {sorted(want_vips)}"
        f"\n  violations: {len(violations)}\n"
        + "".join(f"    - {v}\n" for v in violations[:20])
        + f"  rerun: {RERUN}  (DRILL_HUPS=N, DRILL_SEED=N; DRILL_INPLACE=1: {KNOWN_BUG})"
    )
    assert not violations, "\n".join(violations) + "\n" + c.logs()
