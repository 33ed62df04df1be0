"""The packet-fuzzing drill (issue 8): a fastha master and backup, a third namespace
sending N structure-aware mutated VRRP frames (tests/support/fuzzsend.py), and the
checks. Shared by tests/system/test_drill_fuzz.py (CI size) and benchmarks/drill_fuzz.py
(1,000,000 frames).

Checks, all counted as violations (0 expected):
  - a daemon exited, or logged a state transition during the drill;
  - become_master / release_master moved, or the master accepted an advert;
  - the VIP is not on the master alone afterwards;
  - a drop counter of the attacked instance grew by anything but what was sent for
    that reason (the bystander instance on another VRID: by nothing);
  - with no frame dropped by the kernel at a daemon's raw socket (/proc/net/raw
    "drops", reported as "socket overflow"), the per-reason equality above; with some,
    every reason may only fall short, and by no more than the overflow in all (those
    frames never reached the daemon: fastha ignores vrrp_rx_bufs_*, so the socket has
    the kernel's default 208 KiB, ~100-250 of these frames);
  - the master's advert schedule during the flood: mean interval off by more than 1 %
    of nominal, or more than 0.2 % (min 1) of the intervals 1.5 nominal or longer (an
    advert that late is one a backup may fail over on).
The p99 of |interval - nominal| before and during is printed, not checked: on a shared
2-core machine one scheduler delay of a few ms is noise, and with 1 s adverts a few
samples make the p99 (precision is benchmarks/drill_fuzz.py's and `fastha bench`'s).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastha.bench import lab, measure
from tests.support.flood import Target
from tests.support.fuzzsend import target_json
from tests.support.netns import PYTHON, Node, Topology
from tests.system.test_vrrp_hostile import (
    VIP,
    VIP2,
    VRID,
    VRID2,
    Daemon,
    addresses,
    conf,
    drop_delta,
    wait_for,
)

ATTACKER_IP = "198.18.0.3"


@dataclass
class FuzzFigures:
    version: int
    advert_int: float
    sent: int = 0
    send_seconds: float = 0.0
    send_rate: float = 0.0
    expected: dict[str, int] = field(default_factory=dict)
    unowned: int = 0
    cases: dict[str, int] = field(default_factory=dict)
    counted: dict[str, dict[str, int]] = field(default_factory=dict)
    kernel_drops: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    timing_before: dict[str, Any] = field(default_factory=dict)
    timing_during: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def report(self, rerun: str) -> str:
        def t(f: dict[str, Any]) -> str:
            if not f.get("n"):
                return "n=0"
            d = f["deviation_us"]
            return (
                f"n={f['n']} mean={f['mean_ms']:.3f} ms (slot {f['mean_per_slot_ms']:.3f}) "
                f"|dev| p50={d['p50']:.0f} us p99={d['p99']:.0f} us max={d['max']:.0f} us "
                f"missing={f['missing']}"
            )

        lines = [
            f"drill fuzz v{self.version} advert_int {self.advert_int:g} s",
            f"  trials (frames sent): {self.sent} in {self.send_seconds:.1f} s "
            f"({self.send_rate:.0f}/s); faults injected: {self.sent} "
            f"({sum(self.expected.values())} for the instance, {self.unowned} unowned VRID)",
            f"  expected per reason: {dict(sorted(self.expected.items()))}",
            *(f"  counted by {n}: {dict(sorted(c.items()))}" for n, c in self.counted.items()),
            f"  socket overflow (kernel drops): {self.kernel_drops}; daemon CPU during the flood: "
            + ", ".join(f"{n} {c:.1f} s" for n, c in self.cpu_s.items()),
            f"  master adverts before: {t(self.timing_before)}",
            f"  master adverts during: {t(self.timing_during)}",
            f"  violations: {len(self.violations)}",
            *(f"    - {v}" for v in self.violations[:20]),
            f"  rerun: {rerun}",
        ]
        return "\n".join(lines)


def raw_socket_drops(topo: Topology, node: Node) -> int:
    """Sum of the "drops" column of /proc/net/raw in the node's namespace."""
    out = topo.run(node, "cat", "/proc/net/raw").stdout.splitlines()[1:]
    return sum(int(line.split()[-1]) for line in out if line.strip())


def cpu_seconds(node: Node) -> float:
    """utime + stime of every process in the node's namespace, in seconds: the daemon's
    parent and its VRRP child (the child does the receiving)."""
    return sum(lab.cpu_ticks(p) for p in lab.ns_pids(node.ns)) / os.sysconf("SC_CLK_TCK")


def _intervals(path: Path, src: str) -> list[float]:
    return measure.advert_intervals_ms(measure.frames(path), src, VRID)


def run(
    topo: Topology,
    workdir: Path,
    *,
    version: int,
    advert_int: float,
    auth: str | None,
    count: int,
    rate: float,
    seed: int = 1,
    baseline_s: float = 5.0,
    global_extra: tuple[str, ...] = (),
) -> FuzzFigures:
    a = topo.node("a", ipv4="198.18.0.11/24")
    b = topo.node("b", ipv4="198.18.0.12/24")
    x = topo.node("x", ipv4=f"{ATTACKER_IP}/24")

    def text(prio: int, state: str) -> str:
        out = conf(version, advert_int, prio, state, auth)
        extra = "".join(f"    {line}\n" for line in global_extra)
        return out.replace("    enable_script_security\n", "    enable_script_security\n" + extra)

    master = Daemon(topo, a, text(150, "MASTER"), workdir)
    backup = Daemon(topo, b, text(100, "BACKUP"), workdir)
    both = [master, backup]
    instances = ("VI_1", "VI_2")
    fig = FuzzFigures(version, advert_int)
    v = fig.violations
    wait_for(
        "a MASTER and b BACKUP for both instances",
        lambda: all(master.state(i) == "MASTER" and backup.state(i) == "BACKUP" for i in instances),
        timeout=15,
        daemons=both,
    )
    time.sleep(max(0.5, 4 * advert_int))
    transitions = {d.node.name: d.transitions() for d in both}
    kdrops0 = {n.name: raw_socket_drops(topo, n) for n in (a, b)}
    cpu0 = {d.node.name: cpu_seconds(d.node) for d in both}
    before = {d.node.name: d.dump() for d in both}
    time.sleep(max(0.2, 2 * advert_int))  # the JSON dump is not part of the baseline

    bpf = f"ip proto 112 and src host {a.ipv4}"
    with topo.capture(x, bpf, name="baseline") as base:
        time.sleep(baseline_s)
    nominal_ms = advert_int * 1000
    fig.timing_before = measure.interval_figures(_intervals(base.path, a.ipv4 or ""), nominal_ms)

    target = Target(version, VRID, (VIP,), advert_int, auth_pass=auth)
    with topo.capture(x, bpf, name="during") as cap:
        out = topo.run(
            x, PYTHON, "-m", "tests.support.fuzzsend", "send", x.ifname, target_json(target),
            "--owned", f"{VRID},{VRID2}", "--count", str(count), "--rate", str(rate),
            "--seed", str(seed), timeout=60 + 3 * count / rate,
        )  # fmt: skip
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    fig.sent, fig.send_seconds, fig.send_rate = sent["sent"], sent["seconds"], sent["rate"]
    fig.expected, fig.unowned, fig.cases = sent["expected"], sent["unowned"], sent["cases"]
    fig.timing_during = measure.interval_figures(_intervals(cap.path, a.ipv4 or ""), nominal_ms)
    time.sleep(0.5)  # let the receivers drain their sockets
    fig.cpu_s = {d.node.name: cpu_seconds(d.node) - cpu0[d.node.name] for d in both}

    for d in both:
        if d.proc.poll() is not None:
            v.append(f"{d.node.name} exited with {d.proc.returncode}")
    if v:
        return fig
    after = {d.node.name: d.dump() for d in both}
    fig.kernel_drops = {n.name: raw_socket_drops(topo, n) - kdrops0[n.name] for n in (a, b)}
    if fig.sent != count:
        v.append(f"sent {fig.sent} of {count}")

    for d in both:
        if d.transitions() != transitions[d.node.name]:
            new = d.transitions()[len(transitions[d.node.name]) :]
            v.append(f"{d.node.name} changed state: {new}")
    for i in instances:
        if after["a"][i]["state"] != "MASTER" or after["b"][i]["state"] != "BACKUP":
            v.append(f"{i}: a {after['a'][i]['state']}, b {after['b'][i]['state']}")
        for node in ("a", "b"):
            c0, c1 = before[node][i]["counters"], after[node][i]["counters"]
            for k in ("become_master", "release_master"):
                if c1[k] != c0[k]:
                    v.append(f"{node} {i} {k} {c0[k]} -> {c1[k]}")
    a_addrs = addresses(topo, a)
    b_addrs = addresses(topo, b)
    if not {VIP, VIP2} <= a_addrs or {VIP, VIP2} & b_addrs:
        v.append(f"VIPs not on the master alone: a {sorted(a_addrs)}, b {sorted(b_addrs)}")
    for node in ("a", "b"):
        got = drop_delta(before[node]["VI_1"], after[node]["VI_1"])
        fig.counted[node] = got
        overflow = fig.kernel_drops[node]
        short = {r: n - got.get(r, 0) for r, n in fig.expected.items()}
        if not overflow and got != fig.expected:
            diff = {
                r: (fig.expected.get(r, 0), got.get(r, 0))
                for r in set(got) | set(fig.expected)
                if fig.expected.get(r, 0) != got.get(r, 0)
            }
            v.append(f"{node} VI_1 counters differ from sent (sent, counted): {diff}")
        elif overflow and (
            set(got) - set(fig.expected)
            or any(n < 0 for n in short.values())
            or sum(short.values()) > overflow
        ):
            # Frames the kernel dropped at a full socket buffer never reached the daemon:
            # then each reason may only fall short, by no more than the overflow in all.
            v.append(f"{node}: counted {got}, sent {fig.expected}, socket overflow {overflow}")
        other = drop_delta(before[node]["VI_2"], after[node]["VI_2"])
        if other:
            v.append(f"{node} VI_2 (VRID {VRID2}, not attacked) counted drops {other}")
    c0, c1 = before["a"]["VI_1"]["counters"], after["a"]["VI_1"]["counters"]
    if c1["advert_rcvd"] != c0["advert_rcvd"]:
        v.append(f"master accepted {c1['advert_rcvd'] - c0['advert_rcvd']} adverts")

    td = fig.timing_during
    if not td.get("n") or td["n"] < 0.8 * fig.send_seconds / advert_int:
        v.append(f"too few master adverts captured during the flood: {td.get('n')}")
    else:
        if abs(td["mean_per_slot_ms"] - nominal_ms) > 0.01 * nominal_ms:
            v.append(f"mean interval {td['mean_per_slot_ms']:.3f} ms (nominal {nominal_ms:g})")
        if td["missing"] > max(1, 0.002 * td["n"]):
            v.append(f"{td['missing']} adverts missing (>= 1.5 intervals) during the flood")
    return fig
