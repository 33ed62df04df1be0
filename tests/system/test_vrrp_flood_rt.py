"""A LAN host floods adverts for our VRID with bad checksums, as fast as one CPU sends
them, at a master and its backup (issue 15 item 3).

Such adverts pass the kernel's VRID filter and every header check; only the checksum
tells them from a priority-254 master's (one accepted would make the master step down).
Under ``vrrp_rt_priority`` the kernel SIGKILLs a real-time process that runs
RLIMIT_RTTIME (10 ms by default) of CPU without blocking, and a socket that is always
readable never lets the loop block: keepalived 2.2.7's VRRP child dies that way
("has rlimit_rttime been exceeded?"), is respawned, dies again, and the VIP flaps.

The junk goes to the master's MAC (still to the group address, which its kernel joined)
so that the backup, undisturbed, judges the master's adverts: had they stopped for its
Master_Down_Interval, it would have taken over. The flooder runs at SCHED_FIFO 40 (its
own core, as another host would have, yet below the daemons' 50). One more case floods
the group under real-time priority, both nodes reading the junk: no child may die there
either. (A backup flooded beyond what it can read loses its master's adverts in the
kernel's full receive queue, with or without real-time priority: a capacity limit, about
130k junk adverts/s on a 2-core VM, not this item's kill; on this VM the flooder, below
both daemons, does not get there.)

Asserted, after the flood: no VRRP child died (no "died" line from the supervisor or
keepalived's parent), every daemon runs; for the floods at the master also: neither
node changed state, the backup sent no advert (a capture on the bridge) and the VIP is
on the master only. Printed (figures, not asserted): the junk rate achieved, how many
junk adverts the master read (its CHECKSUM drop count), the worst interval between the
master's adverts in the capture, the backup's adverts.

keepalived runs the same drill with real-time priority. Its child is killed there (seen
on this VM every run), but whether it dies within the flood depends on how the kernel
schedules the flooder against it, so that case is ``xfail(strict=False)``: it records
keepalived's failure (XFAIL, its death line printed) without making CI depend on
keepalived failing.

    sudo .venv/bin/python -m pytest -s tests/system/test_vrrp_flood_rt.py
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

from fastha.bench import measure
from tests.support.drill_daemon import status
from tests.support.flood import GROUP_MAC, Target, checksum_junk, write_frames
from tests.support.netns import PYTHON, Node, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, need_impl

pytestmark = pytest.mark.system

ADVERT = 0.1
FLOOD_S = 5.0
FLOODER_RT = 40  # a whole core, yet below the daemons (50): they are never starved of CPU
ATTACKER = "198.18.0.3/24"
DIED = re.compile(r".*(?:died|rlimit_rttime).*")

CASES = [
    pytest.param("fastha", False, "master", id="fastha"),
    pytest.param("fastha", True, "master", id="fastha-rt"),
    # The flood to the group: both nodes read it; no child may die. Whether the backup
    # hears enough of its master's adverts through it is capacity (printed, not asserted).
    pytest.param("fastha", True, "group", id="fastha-rt-group"),
    pytest.param(
        "keepalived",
        True,
        "master",
        id="keepalived-rt",
        marks=pytest.mark.xfail(
            reason="keepalived 2.2.7's VRRP child is SIGKILLed by RLIMIT_RTTIME under the "
            "flood (it logs 'has rlimit_rttime been exceeded?'); not strict: its death "
            "depends on scheduling",
            strict=False,
        ),
    ),
]


def _mac(node: Node) -> bytes:
    return bytes.fromhex(node.mac.replace(":", ""))


def _flood(
    topo: Topology, x: Node, victim: Node | None, router: Router, workdir: Path
) -> tuple[int, float]:
    """Junk from x to the victim's MAC (None: the group's) for FLOOD_S; (sent, seconds)."""
    target = Target(router.version, router.vrid, tuple(router.vip_addresses), router.advert_int)
    assert x.ipv4 is not None
    path = workdir / "junk.bin"
    dst = GROUP_MAC if victim is None else _mac(victim)
    write_frames(path, checksum_junk(target, _mac(x), x.ipv4, dst_mac=dst))
    out = topo.run(
        x, PYTHON, "-m", "tests.support.flood", "blast", x.ifname, str(path), str(FLOOD_S),
        "--rt", str(FLOODER_RT), timeout=FLOOD_S + 30,
    )  # fmt: skip
    sent, elapsed = out.stdout.split()
    return int(sent), float(elapsed)


@pytest.mark.parametrize(("impl", "rt", "aim"), CASES)
def test_checksum_flood(topo: Topology, impl: str, rt: bool, aim: str) -> None:
    need_impl(impl)  # type: ignore[arg-type]
    need_tool("tcpdump")
    router = Router(
        version=3, advert_int=ADVERT, global_extra=("vrrp_rt_priority 50",) if rt else ()
    )
    specs = [NodeSpec("a", impl, 150, "MASTER"), NodeSpec("b", impl, 100)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, specs, observer=False) as c:
        a, b = c["a"], c["b"]
        x = topo.node("x", ipv4=ATTACKER)
        c.start_all()
        c.wait_master(15, expect=a)
        c.wait_vip(a)
        c.wait_state(b, "BACKUP", 10)
        time.sleep(4 * ADVERT)  # past the start-up GARP burst
        states = {n.name: n.peer.states() for n in (a, b)}
        bpf = f"ip proto 112 and (src host {a.node.ipv4} or src host {b.node.ipv4})"
        with c.bridge_capture(bpf) as cap:
            time.sleep(0.5)
            victim = a.node if aim == "master" else None
            sent, elapsed = _flood(topo, x, victim, router, c.workdir)
            time.sleep(1.0)  # the backup's Master_Down_Interval after the flood
        frames = [f for f in measure.frames(cap.path) if f.kind == "vrrp"]
        ts = [f.ts_ns for f in frames if f.src_ip == a.node.ipv4]
        gaps = [(q - p) / 1e9 for p, q in itertools.pairwise(ts)]
        worst = max(gaps, default=float("inf"))
        deaths = {n.name: DIED.findall(n.peer.log()) for n in (a, b)}
        from_b = [f for f in frames if f.src_ip == b.node.ipv4]
        read = ""
        if impl == "fastha" and not any(deaths.values()):
            drops = status(topo, a)["vrrp"]["instances"][0]["counters"]["drops"]
            read = f"; the master read {drops.get('CHECKSUM', 0)} of them (CHECKSUM)"
        print(
            f"\n[{impl}{' rt' if rt else ''} -> {aim}] junk: {sent} adverts in {elapsed:.2f} s"
            f" = {sent / elapsed:,.0f}/s{read}; master's adverts: {len(ts)}, worst interval "
            f"{worst * 1e3:.1f} ms (nominal {ADVERT * 1e3:.0f}); backup's adverts: "
            f"{len(from_b)}; child deaths: {deaths}"
        )
        assert not any(deaths.values()), f"a VRRP child died under the flood: {deaths}"
        for n in (a, b):
            assert n.peer.running, f"{n} exited\n{n.peer.tail()}"
        if aim == "group":
            return
        for n in (a, b):
            assert n.peer.running, f"{n} exited\n{n.peer.tail()}"
            assert n.peer.states() == states[n.name], f"{n} changed state\n{n.peer.tail()}"
        assert not from_b, f"the backup took over: {len(from_b)} adverts from it"
        assert c.vip_holders() == [a]
