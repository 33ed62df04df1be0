"""Hostile input: a third namespace floods a fastha master and backup with malformed
adverts (issue 4, "Hostile input").

Every packet is built by hand (tests/support/flood.py) and labelled with the drop
reason a correct receiver counts it under. Afterwards:
  - neither node changed state (logs and the JSON signal's state agree), the VIPs are
    on the master only;
  - each node's per-reason drop counters (keepalived's JSON signal, SIGRTMIN+2) grew by
    exactly what was sent per reason; packets for a VRID nobody owns reached no
    instance (a second instance on another VRID sees nothing at all);
  - no hostile advert was accepted (the master's advert_rcvd did not move);
  - the master's advert schedule is unchanged: in a capture taken during the flood no
    advert is missing and the mean interval is the configured one (generous tolerance:
    this is a correctness property, not a timing figure).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fastha.bench import measure
from tests.support.flood import Target, hostile_frames, write_frames
from tests.support.netns import PYTHON, Node, Topology
from tests.support.prereq import need_root, need_tool
from tests.support.vrrp_peer import STATE_RE, fastha_binary

pytestmark = pytest.mark.system

SIGJSON = signal.SIGRTMIN + 2
ROUNDS = 200  # rounds of every malformed case: ~3,000-4,000 packets per run
VRID, VRID2 = 51, 61  # the attacked instance, and a bystander on the same interface
VIP, VIP2 = "198.18.0.100", "198.18.0.101"
ATTACKER_IP = "198.18.0.3"


def conf(version: int, advert_int: float, priority: int, state: str, auth: str | None) -> str:
    def instance(name: str, vrid: int, vip: str) -> str:
        lines = [
            f"vrrp_instance {name} {{",
            f"    state {state}",
            "    interface eth0",
            f"    virtual_router_id {vrid}",
            f"    priority {priority}",
            f"    advert_int {advert_int:g}",
        ]
        if auth:
            lines += [
                "    authentication {",
                "        auth_type PASS",
                f"        auth_pass {auth}",
                "    }",
            ]
        lines += ["    virtual_ipaddress {", f"        {vip}/24", "    }", "}", ""]
        return "\n".join(lines)

    return "\n".join(
        [
            "global_defs {",
            f"    vrrp_version {version}",
            "    enable_script_security",
            "}",
            "",
            instance("VI_1", VRID, VIP),
            instance("VI_2", VRID2, VIP2),
        ]
    )


class Daemon:
    """fastha daemon -P in a namespace, with a log file and a JSON file of its own."""

    def __init__(self, topo: Topology, node: Node, text: str, workdir: Path) -> None:
        self.topo, self.node = topo, node
        self.conf = workdir / f"{node.name}.conf"
        self.conf.write_text(text)
        self.log_path = workdir / f"{node.name}.log"
        self.json_path = workdir / f"{node.name}.json"
        exe = fastha_binary()
        assert exe is not None, "fastha is not installed in .venv: pip install -e ."
        cmd = [
            exe,
            "daemon",
            "-P",
            "-n",
            "-l",
            "-f",
            str(self.conf),
            "--json-file",
            str(self.json_path),
        ]
        with self.log_path.open("w") as log:
            self.proc = topo.popen(
                node, *cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def transitions(self) -> list[tuple[str, str]]:
        return [(m["instance"], m["state"]) for m in STATE_RE.finditer(self.log())]

    def state(self, instance: str) -> str | None:
        seen = [s for i, s in self.transitions() if i == instance]
        return seen[-1] if seen else None

    def dump(self) -> dict[str, dict[str, Any]]:
        """Every instance's status via keepalived's JSON signal (SIGRTMIN+2)."""
        assert self.proc.poll() is None, f"{self.node.name} exited\n{self.log()}"
        self.json_path.unlink(missing_ok=True)
        os.kill(self.proc.pid, SIGJSON)  # `ip netns exec` execs: this pid is fastha's
        deadline = time.monotonic() + 10
        while not self.json_path.exists():
            assert time.monotonic() < deadline, f"no JSON from {self.node.name}\n{self.log()}"
            time.sleep(0.02)
        return dict(normalise(i) for i in json.loads(self.json_path.read_text()))


def normalise(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, {"state", "counters": {..., "drops"}}) from either JSON layout: fastha's
    first one ({"name", "state", "counters"}) or keepalived's vrrp_json.c one
    ({"data": {"iname", ...}, "stats": {...}, "fastha": {"state", "drops"}})."""
    if "name" in entry and "counters" in entry:  # fastha's summary (beside keepalived's)
        return entry["name"], entry
    if "data" in entry:
        extra = entry.get("fastha", {})
        counters = {**entry["stats"], "drops": extra.get("drops", {})}
        return entry["data"]["iname"], {"state": extra.get("state"), "counters": counters}
    return entry["name"], entry


def wait_for(what: str, cond: Any, timeout: float, daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        for d in daemons:
            assert d.proc.poll() is None, (
                f"{d.node.name} exited while waiting for {what}\n{d.log()}"
            )
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d.node.name}\n{d.log()[-3000:]}" for d in daemons)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


def addresses(topo: Topology, node: Node) -> set[str]:
    return {a.get("local") for a in topo.addresses(node)}


def drop_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    b, a = before["counters"]["drops"], after["counters"]["drops"]
    return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0)}


@pytest.mark.parametrize(
    ("version", "advert_int", "auth", "rate"),
    [(3, 0.1, None, 1000.0), (2, 1.0, "s3cret", 500.0)],
    ids=["v3-100ms", "v2-1s-pass"],
)
def test_flood_of_malformed_adverts(
    topo: Topology, tmp_path: Path, version: int, advert_int: float, auth: str | None, rate: float
) -> None:
    need_root()
    need_tool("tcpdump")
    a = topo.node("a", ipv4="198.18.0.11/24")
    b = topo.node("b", ipv4="198.18.0.12/24")
    x = topo.node("x", ipv4=f"{ATTACKER_IP}/24")
    master = Daemon(topo, a, conf(version, advert_int, 150, "MASTER", auth), tmp_path)
    backup = Daemon(topo, b, conf(version, advert_int, 100, "BACKUP", auth), tmp_path)
    both = [master, backup]
    instances = ("VI_1", "VI_2")
    wait_for(
        "a MASTER and b BACKUP for both instances",
        lambda: all(master.state(i) == "MASTER" and backup.state(i) == "BACKUP" for i in instances),
        timeout=15,
        daemons=both,
    )
    time.sleep(4 * advert_int)  # past the first GARP burst and any start-up advert
    transitions = {d.node.name: d.transitions() for d in both}
    before = {d.node.name: d.dump() for d in both}

    target = Target(version, VRID, (VIP,), advert_int, auth_pass=auth)
    mac = bytes.fromhex(x.mac.replace(":", ""))
    flood = hostile_frames(target, mac, ATTACKER_IP, rounds=ROUNDS, seed=version)
    expected = Counter(h.reason for h in flood if h.reason is not None)
    unowned = sum(1 for h in flood if h.reason is None)
    assert unowned and len(expected) >= 8, "the flood must cover the cases it claims"
    frames_file = tmp_path / "flood.bin"
    write_frames(frames_file, flood)

    with topo.capture(x, f"ip proto 112 and src host {a.ipv4}", name="adverts") as cap:
        time.sleep(2 * advert_int)
        out = topo.run(
            x, PYTHON, "-m", "tests.support.flood", "send", x.ifname, str(frames_file),
            "--rate", str(rate), timeout=120,
        )  # fmt: skip
        assert int(out.stdout.strip()) == len(flood)
        time.sleep(2 * advert_int)
    time.sleep(0.3)  # let the receivers drain their sockets
    after = {d.node.name: d.dump() for d in both}

    # No state change, in the logs or in the daemon's own view.
    for d in both:
        assert d.transitions() == transitions[d.node.name], (
            f"{d.node.name} changed state\n{d.log()}"
        )
    for i in instances:
        assert after["a"][i]["state"] == "MASTER", after["a"][i]
        assert after["b"][i]["state"] == "BACKUP", after["b"][i]
        for node in ("a", "b"):
            c0, c1 = before[node][i]["counters"], after[node][i]["counters"]
            assert c1["become_master"] == c0["become_master"], (node, i, c0, c1)
            assert c1["release_master"] == c0["release_master"], (node, i, c0, c1)
    # The VIPs stayed on the master only.
    assert {VIP, VIP2} <= addresses(topo, a)
    assert not {VIP, VIP2} & addresses(topo, b)

    # Dropped and counted, per reason, by both receivers; nothing reached VI_2.
    for node in ("a", "b"):
        got = drop_delta(before[node]["VI_1"], after[node]["VI_1"])
        assert got == dict(expected), (
            f"{node} VI_1 drop counters grew by {got}, sent {dict(expected)} "
            f"(+{unowned} for VRID {target.unowned}, which no instance owns)"
        )
        assert drop_delta(before[node]["VI_2"], after[node]["VI_2"]) == {}, (
            node,
            after[node]["VI_2"],
        )
        assert (
            after[node]["VI_2"]["counters"]["advert_rcvd"]
            >= before[node]["VI_2"]["counters"]["advert_rcvd"]
        )
    # No hostile advert was accepted by the master (it hears no other sender).
    assert (
        after["a"]["VI_1"]["counters"]["advert_rcvd"]
        == before["a"]["VI_1"]["counters"]["advert_rcvd"]
    ), (before["a"]["VI_1"], after["a"]["VI_1"])

    # The master's schedule during the flood: every advert there, at the configured pace.
    ts = [f.ts_ns for f in measure.frames(cap.path) if f.kind == "vrrp" and f.vrid == VRID]
    intervals = [(q - p) / 1e9 for p, q in itertools.pairwise(ts)]
    flood_s = len(flood) / rate
    assert len(intervals) >= flood_s / advert_int, (flood_s, intervals)
    late = [i for i in intervals if not 0.5 * advert_int <= i <= 1.5 * advert_int]
    assert not late, f"adverts missing or doubled during the flood: {late}"
    mean = sum(intervals) / len(intervals)
    assert abs(mean - advert_int) <= 0.1 * advert_int, (mean, advert_int)
