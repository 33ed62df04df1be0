"""`fastha bench bfd`: BFD (RFC 5880/5881) detection time, cost and steadiness, measured
on the wire, fastha's BFD child and keepalived's side by side.

Each implementation runs against itself: a lab (bench/lab, BFD only, no VRRP instance)
with two directors, a and b, the same ``bfd_instance`` blocks on both (min_rx = min_tx
= the interval, multiplier M). tcpdump on a director's bridge port in the switch
namespace sees every BFD packet to and from it (kernel receive timestamps, ns); the
figures come from that capture, never from the daemons' logs. Three parts:

``detect`` -- per interval (default 1, 3 and 10 ms) the two implementations' labs are up
  at once and take turns, trial by trial, so both share the machine's noise. Per trial,
  once session B1 has been Up both ways for a while, a is ``kill``-ed (kill -9 of its
  process group) or its ``link`` is cut (its bridge port down). Detection time: from the
  last packet of a that reached b's port to b's first packet with state Down and
  diagnostic 1 (Control Detection Time Expired). The bound is RFC 5880 6.8.4's
  Detection Time, M x interval; b can say Down on the wire only when it next sends, so
  an implementation that waits for its next transmit slot shows up to one interval more.
``sessions`` -- N sessions (default 1, 10, 100) at ``--session-interval`` (10 ms), each
  implementation alone (one after the other, as ``bench scale``: at this load both at
  once would measure their contention): CPU of a's processes in ns (bench/cpu) per 1,000
  BFD packets a sent and received, and a's transmit lateness: each interval between two
  of its packets of one session minus the negotiated interval (RFC 5880 6.8.7 jitter
  makes intervals 0-25% short, never long, so a positive value is a late packet).
``steady`` -- one session at ``--steady-interval`` (1 ms) x M for ``--duration`` seconds
  per phase, both labs at once: ``idle``; ``load``, CPU hogs in the directors'
  namespaces as ``bench jitter`` runs them (``--hogs`` per lab, default one per CPU);
  ``load-rt``, the same hogs with ``bfd_rt_priority`` and ``bfd_rlimit_rttime`` set
  (a real-time BFD process).
  False Downs: transitions of a sender's state from Up to anything else in its packets
  (neither side was stopped, so each is false); and the longest gap between a's packets.

Figures are printed, never asserted; ratios are fastha / keepalived of the same run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from fastha.bench import cpu, measure, report
from fastha.bench.lab import (
    BfdSpec,
    Director,
    Impl,
    Lab,
    LabError,
    LabSpec,
    keepalived_binary,
    live_run,
    need_tools,
    ns_pids,
    unique_name,
)
from fastha.bench.measure import BFD_DIAG_EXPIRED, BFD_DOWN, BFD_UP, BfdPacket

PARTS = ("detect", "sessions", "steady")
KINDS = ("kill", "link")
PHASES = ("idle", "load", "load-rt")
BPF = "udp dst port 3784 or udp dst port 4784"
RT_PRIORITY = 50  # bfd_rt_priority of the load-rt phase (SCHED_RR)
# ... and its bfd_rlimit_rttime: with keepalived's default (10 ms) its BFD child at 1 ms
# was SIGKILLed ("has rlimit_rttime been exceeded?") within a second, over and over.
RLIMIT_RTTIME_US = 1_000_000
UP_FOR_MS = 50.0  # a session counts as Up once both sides said Up for this long (or 20 intervals)
SETTLE_S = 0.05


def fastha_has_bfd() -> bool:
    """This fastha runs a BFD child (issue 18): its runtime package is installed."""
    try:
        return importlib.util.find_spec("fastha.runtime.bfd") is not None
    except ModuleNotFoundError:
        return False


def check_impls(impls: Iterable[str]) -> list[Impl]:
    out: list[Impl] = []
    for impl in ("fastha", "keepalived"):
        if impl not in impls:
            continue
        if impl == "keepalived" and keepalived_binary() is None:
            raise click.ClickException(
                "keepalived is not installed (Debian: apt-get install keepalived)"
            )
        if impl == "fastha" and not fastha_has_bfd():
            raise click.ClickException(
                "this fastha has no BFD child (fastha.runtime.bfd); measure keepalived alone "
                "with --impl keepalived"
            )
        out.append(impl)
    return out


# -- one lab: a pair of directors running BFD ---------------------------------------------


@dataclass
class Pair:
    """One implementation's lab (a and b running ``bfd``) and its capture on a port."""

    impl: Impl
    bfd: BfdSpec
    lab: Lab
    tail: measure.PcapTail[BfdPacket | None]
    pkts: list[BfdPacket] = field(default_factory=list)

    def pull(self) -> list[BfdPacket]:
        new = [p for p in self.tail.read() if p is not None]
        self.pkts.extend(new)
        return new

    def addr(self, director: int, session: int = 0) -> str:
        return self.bfd.address(director, session)

    def forget(self, before_ns: int) -> None:
        self.pkts = [p for p in self.pkts if p.ts_ns >= before_ns]


def open_pair(
    stack: contextlib.ExitStack, impl: Impl, bfd: BfdSpec, workdir: Path, stem: str, port: str
) -> Pair:
    """``impl`` on a and b with ``bfd``, up for the life of ``stack``; tcpdump on the
    bridge port of director ``port`` ("a" or "b")."""
    spec = LabSpec(
        name=unique_name(f"{stem}{impl[0]}"),
        directors=(Director("a", impl, 150), Director("b", impl, 100)),
        instances=0,
        client=False,
        bfd=bfd,
    )
    lab = stack.enter_context(Lab(spec))
    pcap = workdir / f"{spec.name}.pcap"
    stack.enter_context(lab.capture(pcap, BPF, port, at_port=True))
    return Pair(impl, bfd, lab, measure.PcapTail(pcap, measure.bfd_packet))


def up_since(pkts: list[BfdPacket], src: str, dst: str, since_ns: int, least: int) -> bool:
    """``src`` sent ``dst`` at least ``least`` packets since ``since_ns``, all Up."""
    recent = [p for p in pkts if p.src == src and p.dst == dst and p.ts_ns >= since_ns]
    return len(recent) >= least and all(p.state == BFD_UP for p in recent)


def wait_up(pair: Pair, timeout: float = 30.0) -> None:
    """Until session B1 has been Up both ways for UP_FOR_MS (or 20 intervals)."""
    span_ns = int(max(UP_FOR_MS, 20 * pair.bfd.interval_ms) * 1e6)
    a, b = pair.addr(0), pair.addr(1)

    def ready() -> bool:
        pair.pull()
        since = time.time_ns() - span_ns
        return up_since(pair.pkts, a, b, since, 5) and up_since(pair.pkts, b, a, since, 5)

    pair.lab.wait(f"{pair.impl}: BFD session Up", ready, timeout)
    pair.forget(time.time_ns() - 2 * span_ns)


def wait_all_up(pair: Pair, sessions: int, timeout: float) -> int:
    """Until every session was seen Up from both sides at least once (under load a
    session may fall again; the window counts that), for at most ``timeout`` seconds.
    Returns how many sessions had been Up both ways."""
    pairs = [(pair.addr(0, k), pair.addr(1, k)) for k in range(sessions)]
    want = {x for a, b in pairs for x in ((a, b), (b, a))}
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + timeout

    def ready() -> bool:
        seen.update((p.src, p.dst) for p in pair.pull() if p.state == BFD_UP)
        return want <= seen or time.monotonic() > deadline

    pair.lab.wait(f"{pair.impl}: {sessions} BFD sessions Up", ready, timeout + 10)
    return sum(1 for a, b in pairs if (a, b) in seen and (b, a) in seen)


# -- detect --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    ms: float | None
    problem: str = ""


def detection(
    pkts: list[BfdPacket],
    *,
    dead: str,
    us: str,
    event_ns: int,
    settled_ns: int,
    bound_ms: float,
) -> Detection:
    """From the last packet of ``dead`` to ``us`` to ``us``'s first Down (diagnostic
    Control Detection Time Expired) after ``event_ns``. ``us`` must have said Up from
    ``settled_ns`` until then, and ``dead``'s packets must not have paused for longer
    than ``bound_ms`` before its last one: either is a false Down before the event (the
    session fell for a stall, not for the kill or the cut), not a detection."""
    down = next(
        (p for p in pkts if p.src == us and p.ts_ns >= event_ns and p.state == BFD_DOWN), None
    )
    if down is None:
        return Detection(None, "no Down from the survivor after the event")
    if down.diag != BFD_DIAG_EXPIRED:
        return Detection(None, f"Down with diagnostic {down.diag}, not 1 (detection time)")
    before = [p for p in pkts if p.src == us and settled_ns <= p.ts_ns < down.ts_ns]
    if any(p.state != BFD_UP for p in before):
        return Detection(None, "the session was not Up until the event")
    theirs = [
        p.ts_ns
        for p in pkts
        if p.src == dead and p.dst == us and settled_ns <= p.ts_ns <= down.ts_ns
    ]
    if not theirs:
        return Detection(None, "no packet from the dead peer before the Down")
    stall = max(((y - x) / 1e6 for x, y in itertools.pairwise(theirs)), default=0.0)
    if stall > bound_ms:
        return Detection(None, f"the peer paused {stall:.1f} ms (> bound) before its last packet")
    return Detection((down.ts_ns - theirs[-1]) / 1e6)


def _detect_trial(pair: Pair, kind: str) -> Detection:
    lab, bfd = pair.lab, pair.bfd
    try:
        wait_up(pair)
    except LabError as e:
        return Detection(None, str(e).splitlines()[0])
    settled_ns = time.time_ns() - int(UP_FOR_MS * 1e6)
    event_ns = time.time_ns()  # CLOCK_REALTIME: the capture's clock
    if kind == "kill":
        lab.kill("a")
    else:
        lab.link_down("a")
    a, b = pair.addr(0), pair.addr(1)

    def seen_down() -> bool:
        pair.pull()
        return any(p.src == b and p.ts_ns >= event_ns and p.state == BFD_DOWN for p in pair.pkts)

    try:
        pair.lab.wait(f"{pair.impl}: b's Down", seen_down, 5 + 10 * bfd.bound_ms / 1000)
    except LabError as e:
        got = Detection(None, str(e).splitlines()[0])
    else:
        got = detection(
            pair.pkts,
            dead=a,
            us=b,
            event_ns=event_ns,
            settled_ns=settled_ns,
            bound_ms=bfd.bound_ms,
        )
    if kind == "kill":
        lab.start("a")
    else:
        lab.link_up("a")
    pair.forget(time.time_ns())
    return got


def detect_result(rows: list[Detection], bound_ms: float) -> dict[str, Any]:
    vals = [r.ms for r in rows if r.ms is not None]
    s = measure.summary(vals)
    return {
        **s,
        "bound_ms": bound_ms,
        "p99_minus_bound": s["p99"] - bound_ms if vals else None,
        "over_bound": sum(1 for v in vals if v > bound_ms),
        "samples": vals,
        "problems": [r.problem for r in rows if r.problem],
    }


def run_detect(
    impls: list[Impl],
    intervals: tuple[float, ...],
    multiplier: int,
    kinds: tuple[str, ...],
    trials: int,
    workdir: Path,
    progress: Callable[[str | None], None],
    results: dict[str, dict[str, Any]],
) -> None:
    for iv in intervals:
        bfd = BfdSpec(interval_ms=iv, multiplier=multiplier)
        rows: dict[tuple[str, str], list[Detection]] = {}
        with contextlib.ExitStack() as stack:
            pairs = [open_pair(stack, impl, bfd, workdir, "fhbd", "b") for impl in impls]
            for i in range(trials):
                for kind in kinds:
                    for pair in pairs:
                        progress(f"detect {iv:g} ms: {pair.impl} {kind} {i + 1}/{trials}")
                        rows.setdefault((pair.impl, kind), []).append(_detect_trial(pair, kind))
                        progress(None)
        for impl in impls:
            results[impl].setdefault("detect", {})[f"{iv:g}"] = {
                kind: detect_result(rows.get((impl, kind), []), bfd.bound_ms) for kind in kinds
            }


# -- sessions -------------------------------------------------------------------------------


def session_figures(
    pkts: list[BfdPacket], bfd: BfdSpec, n: int, t0: int, t1: int
) -> dict[str, Any]:
    """a's packets (sent and received) in [t0, t1] and its transmit lateness."""
    mine = {bfd.address(0, k) for k in range(n)}
    win = [p for p in pkts if t0 <= p.ts_ns <= t1]
    sent = [p for p in win if p.src in mine]
    received = sum(1 for p in win if p.dst in mine)
    nominal_us = bfd.interval_ms * 1000
    by_session: dict[str, list[BfdPacket]] = {}
    for p in sent:
        by_session.setdefault(p.src, []).append(p)
    # Only between two Up packets: a session that fell sends at idle_tx (1 s), by design.
    late = [
        (y.ts_ns - x.ts_ns) / 1000 - nominal_us
        for ps in by_session.values()
        for x, y in itertools.pairwise(ps)
        if x.state == y.state == BFD_UP
    ]
    return {
        "sent": len(sent),
        "received": received,
        "sessions_seen": len(by_session),
        "not_up": sum(1 for p in win if p.state != BFD_UP),
        "false_downs": sum(false_downs(win, src, t0, t1) for src in by_session),
        "lateness_us": measure.summary(late),
        "over_bound": sum(1 for v in late if v + nominal_us > bfd.bound_ms * 1000),
        "lateness_samples_us": late,
    }


def run_sessions(
    impls: list[Impl],
    counts: tuple[int, ...],
    interval_ms: float,
    multiplier: int,
    seconds: float,
    workdir: Path,
    progress: Callable[[str | None], None],
    results: dict[str, dict[str, Any]],
) -> None:
    for n in counts:
        bfd = BfdSpec(interval_ms=interval_ms, multiplier=multiplier, sessions=n)
        for impl in impls:
            progress(f"sessions: {impl}, {n} at {interval_ms:g} ms, {seconds:g} s")
            with contextlib.ExitStack() as stack:
                pair = open_pair(stack, impl, bfd, workdir, "fhbs", "a")
                up = wait_all_up(pair, n, timeout=30)
                time.sleep(SETTLE_S)
                ns = pair.lab["a"].ns
                c0, t0, m0 = cpu.cpu_ns(ns_pids(ns)), time.time_ns(), time.monotonic()
                time.sleep(seconds)
                c1, t1, m1 = cpu.cpu_ns(ns_pids(ns)), time.time_ns(), time.monotonic()
                stack.close()  # stops the capture: every packet of the window is in the file
                pair.pull()
                fig = session_figures(pair.pkts, bfd, n, t0, t1)
            pkts = fig["sent"] + fig["received"]
            cpu_ms = (c1 - c0) / 1e6
            fig.update(
                seconds=m1 - m0,
                cpu_ms=cpu_ms,
                cpu_pct=cpu_ms / 10 / (m1 - m0),
                cpu_ms_per_1000_packets=cpu_ms / pkts * 1000 if pkts else float("nan"),
                expected_sent=round(n * (m1 - m0) / (interval_ms / 1000)),
                sessions_were_up=up,
            )
            results[impl].setdefault("sessions", {})[str(n)] = fig
            progress(None)


# -- steady ----------------------------------------------------------------------------------


def false_downs(pkts: list[BfdPacket], src: str, t0: int, t1: int) -> int:
    """Transitions from Up to another state in ``src``'s packets within [t0, t1]."""
    n, prev = 0, None
    for p in pkts:
        if p.src != src or not t0 <= p.ts_ns <= t1:
            continue
        if prev == BFD_UP and p.state != BFD_UP:
            n += 1
        prev = p.state
    return n


def steady_figures(pair: Pair, t0: int, t1: int) -> dict[str, Any]:
    a, b = pair.addr(0), pair.addr(1)
    ts = [p.ts_ns for p in pair.pkts if p.src == a and t0 <= p.ts_ns <= t1]
    gaps = [(y - x) / 1e6 for x, y in itertools.pairwise(ts)]
    return {
        "seconds": (t1 - t0) / 1e9,
        "false_downs_a": false_downs(pair.pkts, a, t0, t1),
        "false_downs_b": false_downs(pair.pkts, b, t0, t1),
        "packets_from_a": len(ts),
        "gap_ms": measure.summary(gaps),
        "gaps_over_bound": sum(1 for g in gaps if g > pair.bfd.bound_ms),
    }


def run_steady(
    impls: list[Impl],
    phases: tuple[str, ...],
    interval_ms: float,
    multiplier: int,
    duration: float,
    hogs: int,
    workdir: Path,
    progress: Callable[[str | None], None],
    results: dict[str, dict[str, Any]],
) -> None:
    for ph in phases:
        bfd = BfdSpec(
            interval_ms=interval_ms,
            multiplier=multiplier,
            rt_priority=RT_PRIORITY if ph == "load-rt" else 0,
            rlimit_rttime=RLIMIT_RTTIME_US if ph == "load-rt" else 0,
        )
        with contextlib.ExitStack() as stack:
            pairs = [open_pair(stack, impl, bfd, workdir, "fhbf", "b") for impl in impls]
            never: dict[str, str] = {}
            for pair in pairs:
                try:
                    wait_up(pair)
                except LabError as e:  # counted below: a session that never stays Up
                    never[pair.impl] = str(e).splitlines()[0]
            procs = []
            if ph != "idle":
                for pair in pairs:
                    for h in range(hogs):
                        node = pair.lab["ab"[h % 2]]
                        procs.append(pair.lab.python(node, "-m", "fastha.bench.lab", "hog"))
                time.sleep(0.5)  # the hogs are spinning
            progress(f"steady {ph}: {duration:g} s")
            t0 = time.time_ns()
            end = time.monotonic() + duration
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 1.0))
                for pair in pairs:
                    pair.pull()
            t1 = time.time_ns()
            for p in procs:
                p.kill()
                p.wait()
            for pair in pairs:
                pair.pull()
                fig = steady_figures(pair, t0, t1)
                fig["problem"] = never.get(pair.impl, "")
                results[pair.impl].setdefault("steady", {})[ph] = fig
                pair.pkts.clear()
            progress(None)


# -- the document ------------------------------------------------------------------------------


def build_doc(cfg: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    impls = list(results)
    doc = report.new_doc(
        "bfd",
        cfg,
        impls,
        results,
        bounds_ms={f"{iv:g}": iv * cfg["multiplier"] for iv in cfg["intervals_ms"]},
    )
    if pair := report.compared(doc):
        x, y = pair
        rt = doc["ratios"]
        for iv, kinds in x.get("detect", {}).items():
            for kind, s in kinds.items():
                if kind in y.get("detect", {}).get(iv, {}):
                    rt.setdefault("detect", {}).setdefault(iv, {})[kind] = report.ratios(
                        s, y["detect"][iv][kind]
                    )
        for n, s in x.get("sessions", {}).items():
            o = y.get("sessions", {}).get(n)
            if o:
                rt.setdefault("sessions", {})[n] = {
                    "cpu_ms_per_1000_packets": report.ratio(
                        s["cpu_ms_per_1000_packets"], o["cpu_ms_per_1000_packets"]
                    ),
                    "lateness_us": report.ratios(s["lateness_us"], o["lateness_us"]),
                }
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg, out = doc["config"], []
    rt = doc["ratios"]
    rows: list[list[str]] = []
    for iv in (f"{v:g}" for v in cfg["intervals_ms"]):
        for kind in cfg["kinds"]:
            if rows:
                rows.append(["---"])
            for impl in doc["impls"]:
                d = doc["results"][impl].get("detect", {}).get(iv, {}).get(kind)
                if d is None:
                    continue
                rows.append(
                    [
                        f"{impl} {iv} ms {kind}",
                        str(d["n"]),
                        *(report.fmt(d[c], 3) for c in ("p50", "p99", "max")),
                        report.fmt(d["bound_ms"], 1),
                        report.fmt(d["p99_minus_bound"], 3),
                        str(d["over_bound"]),
                        str(len(d["problems"])),
                    ]
                )
            r = rt.get("detect", {}).get(iv, {}).get(kind)
            if r:
                rows.append(
                    [f"ratio {rt['of']}", "", *(report.fmt(r[c], 2) for c in ("p50", "p99", "max"))]
                )
    if rows:
        out.append(
            report.table(
                f"BFD detection time on the wire, multiplier {cfg['multiplier']}; ms",
                [
                    "impl / interval / event",
                    "n",
                    "p50",
                    "p99",
                    "max",
                    "bound",
                    "p99-bound",
                    "> bound",
                    "problems",
                ],
                rows,
                caption="last packet of the dead peer -> survivor's first Down (diag 1) at its "
                "bridge port; bound: multiplier x interval (RFC 5880 6.8.4)",
            )
        )
    rows = []
    for n in (str(c) for c in cfg["sessions"]):
        for impl in doc["impls"]:
            s = doc["results"][impl].get("sessions", {}).get(n)
            if s is None:
                continue
            lat = s["lateness_us"]
            rows.append(
                [
                    f"{impl} {n}",
                    f"{s['sent']}/{s['expected_sent']}",
                    str(s["received"]),
                    f"{s['cpu_pct']:.1f}",
                    report.fmt(s["cpu_ms_per_1000_packets"], 2),
                    *(report.fmt(lat[c], 1) for c in ("p50", "p99", "p99.9", "max")),
                    str(s["over_bound"]),
                    f"{s['sessions_were_up']}/{n}",
                    str(s["false_downs"]),
                ]
            )
        r = rt.get("sessions", {}).get(n)
        if r:
            rows.append(
                [f"ratio {rt['of']}", "", "", "", report.fmt(r["cpu_ms_per_1000_packets"], 2)]
                + [report.fmt(r["lateness_us"][c], 2) for c in ("p50", "p99", "p99.9", "max")]
            )
        rows.append(["---"])
    if rows:
        out.append(
            report.table(
                f"BFD sessions at {cfg['session_interval_ms']:g} ms: director a, "
                f"{cfg['seconds']:g} s each, one implementation at a time",
                [
                    "impl / sessions",
                    "sent/exp",
                    "recv",
                    "CPU %",
                    "CPU ms/1k pkt",
                    "late p50 µs",
                    "late p99 µs",
                    "late p99.9 µs",
                    "late max µs",
                    "> detect",
                    "were Up",
                    "false Downs",
                ],
                rows[:-1],
                caption="CPU: ns (schedstat) of a's processes per 1,000 packets sent + received; "
                "lateness: interval between a session's packets minus the interval (jitter "
                "only shortens it)",
            )
        )
    rows = []
    for ph in cfg["phases"]:
        for impl in doc["impls"]:
            s = doc["results"][impl].get("steady", {}).get(ph)
            if s is None:
                continue
            g = s["gap_ms"]
            rows.append(
                [
                    f"{impl} {ph}",
                    f"{s['seconds']:.0f}",
                    str(s["false_downs_a"] + s["false_downs_b"]),
                    str(s["packets_from_a"]),
                    *(report.fmt(g[c], 3) for c in ("p99", "p99.9", "max")),
                    str(s["gaps_over_bound"]),
                ]
            )
    if rows:
        out.append(
            report.table(
                f"BFD false Downs at {cfg['steady_interval_ms']:g} ms x {cfg['multiplier']}, "
                f"load = {cfg['hogs']} CPU hog(s) per lab, load-rt: bfd_rt_priority {RT_PRIORITY}, "
                f"bfd_rlimit_rttime {RLIMIT_RTTIME_US}",
                [
                    "impl / phase",
                    "s",
                    "false Downs",
                    "pkts from a",
                    "gap p99 ms",
                    "gap p99.9 ms",
                    "gap max ms",
                    "gaps > detect",
                ],
                rows,
                caption="false Down: a sender's state leaving Up (both sides ran throughout)",
            )
        )
    return out


def plot(doc: dict[str, Any], path: str) -> None:
    cfg = doc["config"]
    hist = {
        f"{impl} {iv} ms {kind}": [v - d["bound_ms"] for v in d["samples"]]
        for impl in doc["impls"]
        for iv, kinds in doc["results"][impl].get("detect", {}).items()
        for kind, d in kinds.items()
    }
    tail = {
        f"{impl} {n} sessions": s["lateness_samples_us"]
        for impl in doc["impls"]
        for n, s in doc["results"][impl].get("sessions", {}).items()
    }
    report.plot_tail(
        path,
        f"fastha bench bfd: multiplier {cfg['multiplier']}",
        hist,
        "detection time minus multiplier x interval (ms)",
        tail,
        f"transmit lateness at {cfg['session_interval_ms']:g} ms (µs)",
        hist_lines={"bound": 0.0},
    )


def run(
    *,
    impls: list[Impl],
    parts: tuple[str, ...],
    intervals: tuple[float, ...],
    multiplier: int,
    kinds: tuple[str, ...],
    trials: int,
    sessions: tuple[int, ...],
    session_interval: float,
    seconds: float,
    steady_interval: float,
    phases: tuple[str, ...],
    duration: float,
    hogs: int,
    workdir: Path,
    on_progress: Callable[[str | None], None] = lambda _m: None,
    on_update: Callable[[dict[str, Any]], None] = lambda _d: None,
) -> dict[str, Any]:
    need_tools("ip", "tcpdump")
    cfg = {
        "parts": list(parts),
        "multiplier": multiplier,
        "intervals_ms": list(intervals) if "detect" in parts else [],
        "kinds": list(kinds),
        "trials": trials,
        "sessions": list(sessions) if "sessions" in parts else [],
        "session_interval_ms": session_interval,
        "seconds": seconds,
        "steady_interval_ms": steady_interval,
        "phases": list(phases) if "steady" in parts else [],
        "duration_s": duration,
        "hogs": hogs,
    }
    results: dict[str, dict[str, Any]] = {impl: {} for impl in impls}

    def progress(msg: str | None) -> None:
        on_progress(msg)
        if msg is None:
            on_update(build_doc(cfg, results))

    # The machine is shared: each part notes the load it started under (1-min average).
    load = cfg["loadavg_at_start"] = {}
    if "detect" in parts:
        load["detect"] = os.getloadavg()[0]
        run_detect(impls, intervals, multiplier, kinds, trials, workdir, progress, results)
    if "sessions" in parts:
        load["sessions"] = os.getloadavg()[0]
        run_sessions(
            impls, sessions, session_interval, multiplier, seconds, workdir, progress, results
        )
    if "steady" in parts:
        load["steady"] = os.getloadavg()[0]
        run_steady(
            impls, phases, steady_interval, multiplier, duration, hogs, workdir, progress, results
        )
    return build_doc(cfg, results)


def _floats(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: comma-separated numbers") from None
    if not out or any(not 1 <= x <= 10000 for x in out):
        raise click.BadParameter(f"{text!r}: intervals in ms, 1..10000 (keepalived's range)")
    return out


@click.command("bfd")
@click.option(
    "--impl",
    "impls",
    multiple=True,
    type=click.Choice(["fastha", "keepalived"]),
    help="Implementations (default: fastha and keepalived).",
)
@click.option(
    "--part", "parts", multiple=True, type=click.Choice(PARTS), help="Parts (default: all)."
)
@click.option("--intervals", default="1,3,10", show_default=True, help="detect: intervals, ms.")
@click.option("--multiplier", default=3, show_default=True, help="Detect multiplier.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="detect: events (default: all).",
)
@click.option(
    "--trials", default=5, show_default=True, help="detect: trials per interval and kind."
)
@click.option("--sessions", default="1,10,100", show_default=True, help="sessions: counts.")
@click.option("--session-interval", default=10.0, show_default=True, help="sessions: interval, ms.")
@click.option("--seconds", default=10.0, show_default=True, help="sessions: window, s.")
@click.option("--steady-interval", default=1.0, show_default=True, help="steady: interval, ms.")
@click.option(
    "--phase", "phases", multiple=True, type=click.Choice(PHASES), help="steady: phases (all)."
)
@click.option("--duration", default=60.0, show_default=True, help="steady: seconds per phase.")
@click.option(
    "--hogs", default=0, help="steady: CPU hogs per lab under load (default: one per CPU)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (orjson).")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a PNG: detection time over its bound, transmit lateness tail.",
)
def command(
    impls: tuple[str, ...],
    parts: tuple[str, ...],
    intervals: str,
    multiplier: int,
    kinds: tuple[str, ...],
    trials: int,
    sessions: str,
    session_interval: float,
    seconds: float,
    steady_interval: float,
    phases: tuple[str, ...],
    duration: float,
    hogs: int,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """BFD detection time, CPU per packet and false Downs, fastha and keepalived."""
    report.need_root()
    chosen = check_impls(impls or ("fastha", "keepalived"))
    parts = parts or PARTS
    kinds = kinds or KINDS
    phases = phases or PHASES
    if trials < 1 or seconds <= 0 or duration <= 0 or not 1 <= multiplier <= 255:
        raise click.BadParameter("need --trials >= 1, --seconds/--duration > 0, multiplier 1..255")
    try:
        counts = tuple(int(x) for x in sessions.split(","))
    except ValueError:
        raise click.BadParameter(f"--sessions {sessions!r}: comma-separated counts") from None
    if any(not 1 <= c <= 1000 for c in counts):
        raise click.BadParameter("--sessions: 1..1000 each")
    hogs = hogs or os.cpu_count() or 1
    ivs = _floats(intervals)
    _floats(f"{session_interval},{steady_interval}")
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-bfd-"))
    state: dict[str, Any] = {}
    total = (
        ("detect" in parts) * len(ivs) * len(kinds) * trials * len(chosen)
        + ("sessions" in parts) * len(counts) * len(chosen)
        + ("steady" in parts) * len(phases)
    )

    def shown() -> list[Any]:
        return tables(state) if state else []

    with live_run("starting labs", total, shown, workdir) as live:

        def progress(msg: str | None) -> None:
            live.note(msg) if msg else live.advance()

        doc = run(
            impls=chosen,
            parts=parts,
            intervals=ivs,
            multiplier=multiplier,
            kinds=kinds,
            trials=trials,
            sessions=counts,
            session_interval=session_interval,
            seconds=seconds,
            steady_interval=steady_interval,
            phases=phases,
            duration=duration,
            hogs=hogs,
            workdir=workdir,
            on_progress=progress,
            on_update=state.update,
        )
    report.emit(doc, as_json, plot_path, plot, tables)
