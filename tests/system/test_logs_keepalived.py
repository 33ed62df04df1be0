"""The lines operators grep, in keepalived 2.2.7's own words: the same scenario runs once
with keepalived and once with fastha as the subject node (the peer is keepalived both
times), from the same keepalived.conf, with the same flags (`-l -D`), and the subject's
normalised log lines are compared.

The scenario, on one VRRPv2 router (advert_int 1; a track_script on the subject):

1. the subject starts alone in BACKUP: `(VI_1) Entering BACKUP STATE (init)`, the
   advert timeout, `(VI_1) Entering MASTER STATE`;
2. a higher-priority keepalived peer starts: `Master received advert from ... with
   higher priority 150, ours 100`, `(VI_1) Entering BACKUP STATE`;
3. the peer stops (SIGTERM, priority 0): `Backup received priority 0 advertisement`,
   the advert timeout, MASTER again;
4. the track_script starts failing: `VRRP_Script(chk) failed (exited with status 1)`,
   `(VI_1) Entering FAULT STATE`; it recovers: `VRRP_Script(chk) succeeded`, BACKUP,
   MASTER;
5. its link goes down and up: `Netlink reports eth0 down`, FAULT, and back;
6. the subject stops (SIGTERM).

The lines compared are every line naming the instance (`(VI_1)`), the script
(`VRRP_Script(chk)`) or a link change (`Netlink reports`), in order, with the timestamp
and process prefix removed, each once per state (`once_per_state`). The `keepalived`
parameter compares keepalived with itself: it proves the scenario is deterministic
enough for the comparison to mean something.

Two more scenarios: a higher-priority subject meeting a lower-priority master
(`lower_priority_scenario`), and a lone IPv6 master whose adverts the kernel refuses
for a while (`refused_send_scenario`: `(VI_1): send advert error 1 (Operation not
permitted)`, unsolicited NA lines per address, `removing VIPs.` before the init state,
the lines for excluded addresses and virtual routes).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.netns import Topology
from tests.support.vrrp_nodes import NodeSpec, Router, TrackScript, VrrpCluster, need_impl

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

TIMEOUT = 15
# The lines compared: they name the instance or the track script.
WANTED = re.compile(r"\(VI_1\)|VRRP_Script\(chk\)|Netlink reports")
# keepalived lines fastha does not write, each with its reason (the operator greps for
# none of them; they describe keepalived's internals).
NOT_REPRODUCED = [
    # keepalived's effective-priority bookkeeping at start, before any state.
    re.compile(r"^\(VI_1\) Changing effective priority from \d+ to \d+$"),
    # fastha's own detail (debug: shown with -D).
    re.compile(r"^\(VI_1\) .* -> .*: "),
    re.compile(r"^\(VI_1\) (waiting for the first result of .*|Stopped)$"),
    re.compile(r"^\(VI_1\) (dropped advert|using VMAC|stats:)"),
    # fastha's VIP defence (docs/MIGRATING.md): keepalived 2.2.7 does not watch.
    re.compile(r"^\(VI_1\) \S+ announced by \S+, announcing it again in \d+ ms$"),
    # keepalived 2.2.7 -D prints its parsed config ("VRRP Instance = VI_1" etc.).
    re.compile(r"^ +"),
]
# `Tue Dec  1 19:03:01 2026: ` (keepalived -l) or `2026-12-01 19:03:01,123 fastha_vrrp[7]: `
_PREFIX = re.compile(r"^(?:\w{3} \w{3} +\d+ [\d:]+ \d{4}: |\d{4}-\d\d-\d\d [\d:,]+ \S+\[\d+\]: )")


def normalised(log: str) -> list[str]:
    out = []
    for raw in log.splitlines():
        line = _PREFIX.sub("", raw).rstrip()
        if not WANTED.search(line) or line.startswith("==="):
            continue
        if any(p.search(line) for p in NOT_REPRODUCED):
            continue
        out.append(line)
    return out


def once_per_state(lines: list[str]) -> list[str]:
    """Each line once between two state lines: how many adverts are heard or refused,
    or how many gratuitous ARP bursts go out (garp_master_delay, garp_lower_prio_repeat),
    while in one state is timing."""
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        if re.search(r" Entering \w+ STATE", line):
            seen = set()
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def run_scenario(topo: Topology, impl: str, flag: Path) -> list[str]:
    flag.write_text("up\n")
    script = TrackScript("chk", f"/usr/bin/test -e {flag}", interval=1, fall=1, rise=1)
    router = Router(version=2, advert_int=1)
    specs = [
        NodeSpec("subject", impl, 100, track_scripts=(script,)),  # type: ignore[arg-type]
        NodeSpec("peer", "keepalived", 150),
    ]
    with VrrpCluster(topo, router, specs, observer=False) as c:
        subject, peer = c["subject"], c["peer"]
        subject.peer.extra_args = ("-D",) if impl == "fastha" else ()
        c.start(subject)
        c.wait_state(subject, "MASTER", TIMEOUT)
        c.start(peer)
        c.wait_state(subject, "BACKUP", TIMEOUT)
        c.wait_state(peer, "MASTER", TIMEOUT)
        c.stop(peer)
        c.wait_state(subject, "MASTER", TIMEOUT)
        flag.unlink()
        c.wait_state(subject, "FAULT", TIMEOUT)
        flag.write_text("up\n")
        c.wait_state(subject, "MASTER", TIMEOUT)
        c.link_down(subject)
        c.wait_state(subject, "FAULT", TIMEOUT)
        c.link_up(subject)
        c.wait_state(subject, "MASTER", TIMEOUT)
        time.sleep(0.5)  # let the last lines of the transition reach the log
        c.stop(subject)
        return once_per_state(normalised(subject.peer.log()))


def compare(
    tmp_path: Path, impl: str, scenario: Callable[[Topology, str, Path], list[str]], *ran: str
) -> None:
    """`scenario` with keepalived as the subject, then with `impl`: the same lines, and
    every string of `ran` in keepalived's (the scenario did what it is about)."""
    need_impl("keepalived")
    need_impl(impl)  # type: ignore[arg-type]
    logs: dict[str, list[str]] = {}
    for run, who in (("oracle", "keepalived"), ("subject", impl)):
        with Topology(tmp_path / run) as topo:
            logs[run] = scenario(topo, who, tmp_path / f"{run}.flag")
    oracle, got = logs["oracle"], logs["subject"]
    for what in ran:
        assert any(what in line for line in oracle), oracle
    assert got == oracle, "\n".join(
        ["keepalived 2.2.7 logged:", *oracle, "", f"{impl} logged:", *got]
    )


@pytest.mark.parametrize("impl", ["keepalived", "fastha"])
def test_log_lines_match_keepalived(impl: str, tmp_path: Path) -> None:
    compare(tmp_path, impl, run_scenario, "Entering FAULT STATE")


def lower_priority_scenario(topo: Topology, impl: str, _flag: Path) -> list[str]:
    """The subject (150) starts after a keepalived peer (100) is master: a preempting
    BACKUP discarding the peer's adverts, then MASTER; then the peer stops hearing it
    (dropped on the peer's way in: the subject's sends still succeed), becomes master
    too, and the subject, still MASTER, hears the lower priority."""
    router = Router(version=2, advert_int=1)
    specs = [NodeSpec("subject", impl, 150), NodeSpec("peer", "keepalived", 100)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, specs, observer=False) as c:
        subject, peer = c["subject"], c["peer"]
        subject.peer.extra_args = ("-D",) if impl == "fastha" else ()
        c.start(peer)
        c.wait_state(peer, "MASTER", TIMEOUT)
        c.start(subject)
        c.wait_state(subject, "MASTER", TIMEOUT)
        c.wait_state(peer, "BACKUP", TIMEOUT)
        drop = "table inet t {\n chain i {\n type filter hook input priority 0\n ip protocol 112 drop\n }\n}\n"
        topo.run(peer.node, "nft", "-f", "-", input=drop)
        c.wait_state(peer, "MASTER", TIMEOUT)
        time.sleep(2.5)  # the subject hears two or three of the peer's adverts
        topo.run(peer.node, "nft", "delete", "table", "inet", "t")
        c.wait_state(peer, "BACKUP", TIMEOUT)
        c.stop(subject)
        return once_per_state(normalised(subject.peer.log()))


@pytest.mark.parametrize("impl", ["keepalived", "fastha"])
def test_lower_priority_lines_match_keepalived(impl: str, tmp_path: Path) -> None:
    compare(tmp_path, impl, lower_priority_scenario, "- discarding", "forcing new election")


# An excluded address and a virtual route: their own lines (E-VIPs, Virtual Routes).
EXCLUDED_AND_ROUTE = (
    "virtual_ipaddress_excluded {",
    "    fd00:198:18::200/64",
    "}",
    "virtual_routes {",
    "    fd00:198:19::/64 dev eth0",
    "}",
)


def refused_send_scenario(
    topo: Topology, impl: str, _flag: Path, *, unicast: bool = False
) -> list[str]:
    """The subject alone on a VRRPv3 IPv6 router with an excluded address and a virtual
    route (`unicast`: VRRPv2, IPv4, to a unicast peer that never starts, VIPs only): its
    startup (what a crashed run may have left is removed before the init state's line:
    routes, VIPs, E-VIPs), MASTER (a gratuitous ARP / unsolicited NA line per address),
    then its adverts refused by the kernel for a while (an nftables drop on their way
    out: sendmmsg fails with EPERM, and the instance logs each failure), and its stop."""
    router = Router(version=2, unicast=True) if unicast else Router(version=3, family=6)
    extra = () if unicast else EXCLUDED_AND_ROUTE
    specs = [NodeSpec("subject", impl, 100, extra=extra), NodeSpec("peer", "keepalived", 50)]  # type: ignore[arg-type]
    with VrrpCluster(topo, router, specs[: 2 if unicast else 1], observer=False) as c:
        subject = c["subject"]
        subject.peer.extra_args = ("-D",) if impl == "fastha" else ()
        c.start(subject)
        c.wait_state(subject, "MASTER", TIMEOUT)
        drop = "table inet t {\n chain o {\n type filter hook output priority 0\n meta l4proto 112 drop\n }\n}\n"
        topo.run(subject.node, "nft", "-f", "-", input=drop)
        time.sleep(2.5)  # two or three adverts refused
        topo.run(subject.node, "nft", "delete", "table", "inet", "t")
        c.stop(subject)
        return once_per_state(normalised(subject.peer.log()))


# keepalived as the subject once: the unicast variant differs by its config only.
@pytest.mark.parametrize(
    ("impl", "unicast"), [("keepalived", False), ("fastha", False), ("fastha", True)]
)
def test_refused_send_lines_match_keepalived(impl: str, unicast: bool, tmp_path: Path) -> None:
    if unicast:
        ran = ("Cant send advert to 198.18.0.12 (Operation not permitted)", "gratuitous ARPs")
    else:
        ran = ("send advert error 1 (Operation not permitted)", "Unsolicited Neighbour Adverts")
    compare(tmp_path, impl, functools.partial(refused_send_scenario, unicast=unicast), *ran)
