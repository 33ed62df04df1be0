"""Drill (issue 8): crash recovery, VRRP part (the IPVS part runs inside UML:
tests/ipvs/inside/test_drill_crash_ipvs.py).

Two fastha nodes (`fastha daemon -P`: the parent and its VRRP child), VRRPv3 at 100 ms,
both `state BACKUP` + `nopreempt`: a (priority 150), b (100). Each trial kills -9 one
process chosen by a seeded RNG - a's or b's parent or VRRP child - after a random delay
(0-1.5 s); one trial in four kills the replacement again during its start-up (0-0.8 s
after it appeared). A killed parent takes its child with it (PR_SET_PDEATHSIG); the test
then starts the daemon again, as systemd would. A killed child is respawned by its parent.

After each trial, once one master is settled (status --json of both nodes), violations
(0 expected):
  - the master is not the node that was NOT killed: the killed node, restarted, must not
    take mastership back (nopreempt; when it was the master, the other took over);
  - the killed node entered MASTER after the kill (its log);
  - VIPs: any VIP on the backup, or the master not holding exactly the configured VIPs;
  - processes: a node's namespace holding anything but its parent and the child that
    parent reports (a leftover of a killed generation, a double spawn);
  - a parent's restart counter not equal to the child kills it saw.
At the end, the observer's ARP for the VIP must be answered by the master's MAC only.

DRILL_KILLS=N (default 24; with the UML part's kills >= 30 in total), DRILL_SEED=N.

    sudo .venv/bin/python -m pytest -s tests/system/test_drill_crash.py
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time

import pytest

from tests.support.drill_daemon import cmdline, instance_view, namespace_pids, try_status
from tests.support.netns import Topology
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, VrrpNode
from tests.support.vrrp_peer import STATE_RE

pytestmark = pytest.mark.system

KILLS = int(os.environ.get("DRILL_KILLS", "24"))
SEED = int(os.environ.get("DRILL_SEED", str(random.SystemRandom().randrange(10**6))))
ADVERT = 0.1
SETTLE = 90.0  # hang guard: a child's respawn backoff doubles up to 60 s
RERUN = "sudo .venv/bin/python -m pytest -s tests/system/test_drill_crash.py"


def _child_pid(topo: Topology, n: VrrpNode) -> int | None:
    st = try_status(topo, n)
    if st is None:
        return None
    return st["parent"]["children"]["vrrp"]["pid"]  # type: ignore[no-any-return]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait(cond, what: str, timeout: float, c: VrrpCluster):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{c.logs()}")
        time.sleep(0.05)


def _restart_parent(topo: Topology, c: VrrpCluster, n: VrrpNode) -> list[str]:
    """After a parent's kill -9: it and its child are gone (else a violation), then start
    it again as systemd would."""
    assert n.peer.proc is not None
    n.peer.proc.wait(timeout=10)
    problems = []
    deadline = time.monotonic() + 5
    while (left := namespace_pids(topo, n)) and time.monotonic() < deadline:
        time.sleep(0.02)
    if left:
        problems.append(f"{n.name}: left after the parent's kill: "
                        + ", ".join(f"{p} {cmdline(p)}" for p in sorted(left)))  # fmt: skip
        for p in left:
            _kill(p)
    n.peer.start()
    return problems


def _settled(topo: Topology, c: VrrpCluster) -> dict[str, dict] | None:  # type: ignore[type-arg]
    """Both nodes' status once one is MASTER, the other BACKUP and each child runs."""
    out = {}
    for n in c:
        st = try_status(topo, n)
        if st is None or not st["parent"]["children"]["vrrp"]["running"]:
            return None
        out[n.name] = st
    states = sorted(instance_view(st).get("VI_1", ("?", 0))[0] for st in out.values())
    return out if states == ["BACKUP", "MASTER"] else None


def test_crash_recovery_vrrp(topo: Topology) -> None:
    rng = random.Random(SEED)
    router = Router(version=3, advert_int=ADVERT)
    specs = [NodeSpec("a", "fastha", 150, nopreempt=True),
             NodeSpec("b", "fastha", 100, nopreempt=True)]  # fmt: skip
    violations: list[str] = []
    faults = {"parent": 0, "vrrp": 0}
    startup_kills = 0
    takeovers = 0
    t0 = time.monotonic()
    with VrrpCluster(topo, router, specs) as c:
        a, b = c["a"], c["b"]
        c.start(a)
        c.wait_master(15, expect=a)
        c.start(b)
        _wait(lambda: _settled(topo, c), "a MASTER, b BACKUP", 20, c)
        child_kills = {"a": 0, "b": 0}  # since the node's parent started
        deadline = time.monotonic() + 600
        for trial in range(KILLS):
            assert time.monotonic() < deadline, f"drill over its time budget at trial {trial}"
            st = _wait(lambda: _settled(topo, c), "one master", SETTLE, c)
            master = next(n for n in c if instance_view(st[n.name])["VI_1"][0] == "MASTER")
            victim = c[rng.choice("ab")]
            other = next(n for n in c if n is not victim)
            kind = rng.choice(("parent", "vrrp"))
            twice = rng.random() < 0.25
            time.sleep(rng.uniform(0, 1.5))
            mark = len(victim.peer.log(all_runs=True))
            if kind == "parent":
                assert victim.peer.proc is not None
                _kill(victim.peer.proc.pid)
                violations += _restart_parent(topo, c, victim)
                child_kills[victim.name] = 0
                if twice:  # during the new parent's start-up
                    time.sleep(rng.uniform(0, 0.8))
                    _kill(victim.peer.proc.pid)
                    violations += _restart_parent(topo, c, victim)
                    startup_kills += 1
                    faults["parent"] += 1
            else:
                old = _child_pid(topo, victim)
                assert old is not None, f"{victim.name}'s child not running before trial {trial}"
                _kill(old)
                child_kills[victim.name] += 1
                if twice:  # the respawned child, during its start-up
                    new = _wait(lambda o=old, v=victim: (p := _child_pid(topo, v)) not in (None, o)
                                and p, "the respawned child", SETTLE, c)  # fmt: skip
                    time.sleep(rng.uniform(0, 0.8))
                    _kill(new)
                    child_kills[victim.name] += 1
                    startup_kills += 1
                    faults["vrrp"] += 1
            faults[kind] += 1

            st = _wait(lambda: _settled(topo, c), f"one master after trial {trial}", SETTLE, c)
            new_master = next(n for n in c if instance_view(st[n.name])["VI_1"][0] == "MASTER")
            where = f"trial {trial} (kill {kind} of {victim.name}{' twice' if twice else ''}, " \
                    f"master was {master.name})"  # fmt: skip
            takeovers += new_master is not master
            if new_master is not other:
                violations.append(f"{where}: {new_master.name} is master (nopreempt)")
            entered = [m["state"] for m in STATE_RE.finditer(victim.peer.log(all_runs=True)[mark:])]
            if "MASTER" in entered:
                violations.append(f"{where}: {victim.name} went through {entered}")
            for n in c:
                have = [x.get("local") for x in topo.addresses(n.node)]
                vips = [v for v in have if v in router.vip_addresses]
                want = router.vip_addresses if n is new_master else []
                if sorted(vips) != sorted(want):
                    violations.append(f"{where}: {n.name} holds VIPs {vips}, want {want}")
                parent = st[n.name]["parent"]
                procs = namespace_pids(topo, n)
                expect = {parent["pid"], parent["children"]["vrrp"]["pid"]}
                if procs != expect:
                    violations.append(f"{where}: {n.name} runs " + ", ".join(
                        f"{p} {cmdline(p)}" for p in sorted(procs - expect)) or "too few")  # fmt: skip
                if parent["children"]["vrrp"]["restarts"] != child_kills[n.name]:
                    violations.append(f"{where}: {n.name}'s parent counts "
                                      f"{parent['children']['vrrp']['restarts']} restarts for "
                                      f"{child_kills[n.name]} child kills")  # fmt: skip
        final = _wait(lambda: _settled(topo, c), "one master at the end", SETTLE, c)
        master = next(n for n in c if instance_view(final[n.name])["VI_1"][0] == "MASTER")
        macs = c.observer_macs()
        if macs != [master.mac]:
            violations.append(f"end: the VIP's ARP answered by {macs}, master {master.mac}")
        for n in c:
            if n.peer.crashed:
                violations.append(f"end: {n.name}'s daemon exited ({n.peer.returncode})")
    elapsed = time.monotonic() - t0
    print(
        f"\ndrill crash (VRRP): trials {KILLS}, seed {SEED}, faults injected "
        f"{faults['parent'] + faults['vrrp']} kill -9 (parent {faults['parent']}, VRRP child "
        f"{faults['vrrp']}; {startup_kills} during a replacement's start-up), mastership "
        f"moves {takeovers}, {elapsed:.0f} s\n"
        f"  violations: {len(violations)}\n"
        + "".join(f"    - {v}\n" for v in violations[:20])
        + f"  rerun: DRILL_SEED={SEED} {RERUN}  (DRILL_KILLS=N)"
    )
    assert not violations, "\n".join(violations)
