"""`fastha bench failover`: how fast a backup takes over, measured on the wire.

One lab per implementation (fastha, and keepalived with ``--peer keepalived``), all up
at once: two directors (a: 150, b: 100) and a client that captures every VRRP and ARP
frame with tcpdump (kernel receive timestamps, ns): the same point for every frame, so
differences are fair. Trials of each kind alternate between the implementations, so
both share the machine's noise. Per trial the master (a) is

  kill  -- kill -9'd: nothing more is sent;
  term  -- sent SIGTERM: it sends priority 0 and removes its VIPs;
  link  -- cut off: its bridge port goes down (carrier loss, as a pulled cable);

while the client sends an ARP request for the VIP every millisecond (``--probe-interval``),
and the capture gives, from the master's last advert (kill, link) or its priority-0
advert (term): the backup's first advert, its first gratuitous ARP, its first ARP reply
to the client; and from the backup's first advert, its first gratuitous ARP and its
first ARP reply (the VIP answering, known to within one probe interval).

Bounds (RFC 5798 section 6.4.2/6.4.3): kill and link -> Master_Down_Interval =
3 * advert_int + skew_time; term -> skew_time = (256 - 100) * advert_int / 256.
Before the trials the steady master's advert intervals are captured over ``--adverts``
adverts (both labs in the same window). Figures are printed, never asserted.

``--bfd``: a BFD session (bfd_instance B1) between a and b, and fastha's extension
``fastha_bfd_master_down B1`` in the vrrp_instance: kill and link are then read against
the BFD Detection Time. keepalived runs the same file (it warns about the keyword), so
its rows are the plain VRRP takeover of the same run.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from fastha.bench import measure, report
from fastha.bench.lab import (
    IFNAME,
    VRID_BASE,
    BfdSpec,
    Director,
    Impl,
    Lab,
    LabError,
    LabSpec,
    captured_lab,
    keepalived_binary,
    live_run,
    need_tools,
    settle,
    unique_name,
)

KINDS = ("kill", "term", "link")
KIND_TITLE = {
    "kill": "kill -9 (from the last advert)",
    "term": "SIGTERM (from the priority-0 advert)",
    "link": "link down (from the last advert)",
}
METRICS = (
    ("advert", "first advert"),
    ("garp", "first GARP"),
    ("reply", "first ARP reply"),
    # From the backup's own first advert: how fast it takes the VIP once it is master.
    ("advert_garp", "advert -> GARP"),
    ("advert_reply", "advert -> ARP reply"),
)
PRIO_MASTER, PRIO_BACKUP = 150, 100
PROBE_INTERVAL_S = 0.001  # the default; "advert -> ARP reply" is known to within it
SETTLE_S = 0.15  # after the master is back, before the next trial


# --bfd: a BFD session between master and backup, and fastha's extension keyword in every
# vrrp_instance (docs/MIGRATING.md): the backup takes the session's Down as Master_Down
# expiry. keepalived warns about the keyword and runs on: in the same run it shows what
# BFD does for a keepalived backup (nothing for the takeover), i.e. the plain VRRP figure.
BFD_KEYWORD = "fastha_bfd_master_down"


def bfd_spec(interval_ms: float, multiplier: int) -> BfdSpec:
    return BfdSpec(
        interval_ms=interval_ms, multiplier=multiplier, vrrp_lines=(f"{BFD_KEYWORD} B1",)
    )


def bounds_ms(advert_int: float, bfd: BfdSpec | None = None) -> dict[str, float]:
    """Each kind's bound: Master_Down_Interval for kill and link (with ``bfd``, the BFD
    Detection Time instead), Skew_Time for term."""
    md = measure.master_down_s(PRIO_BACKUP, advert_int) * 1000
    dead = bfd.bound_ms if bfd else md
    return {"kill": dead, "term": measure.skew_time_s(PRIO_BACKUP, advert_int) * 1000, "link": dead}


def machine() -> dict[str, Any]:
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "keepalived": _keepalived_version(),
    }


def _keepalived_version() -> str | None:
    exe = keepalived_binary()
    if exe is None:
        return None
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (r.stderr or r.stdout).splitlines()
    return first[0].strip() if first else None


def default_peer() -> str:
    return "keepalived" if keepalived_binary() else "none"


def vrrp_version(text: str) -> Literal[2, 3]:
    """The value of a bench's --vrrp-version option (a click.Choice of "2" and "3")."""
    if text == "2":
        return 2
    if text == "3":
        return 3
    raise click.BadParameter(f"VRRP version {text!r}: 2 or 3")


def impls_for(peer: str) -> list[Impl]:
    if peer == "keepalived" and keepalived_binary() is None:
        raise click.ClickException(
            "--peer keepalived: keepalived is not installed (Debian: apt-get install keepalived)"
        )
    return ["fastha", "keepalived"] if peer == "keepalived" else ["fastha"]


@dataclass
class ImplRun:
    """One implementation's lab, capture and results so far."""

    impl: Impl
    lab: Lab
    pcap: Path
    tail: measure.PcapTail[measure.Frame]
    frames: list[measure.Frame] = field(default_factory=list)
    trials: dict[str, list[measure.Failover]] = field(default_factory=dict)
    dual: list[dict[str, Any]] = field(default_factory=list)  # --bfd: the BFD path cut
    bfd_down_at_event: int = 0  # --bfd: trials whose session was not Up at the event
    intervals_ms: list[float] = field(default_factory=list)
    since_ns: int = 0  # end of the previous trial: a trial's window starts after it

    def pull(self) -> None:
        self.frames.extend(self.tail.read())


BFD_STEADY_S = 0.5
BFD_ATTEMPTS = 5  # tries for a session Up at the moment of the event
BFD_RECOVER_S = 3.0


def _bfd_up(lab: Lab, bfd: BfdSpec) -> bool:
    """b's BFD session is Up at its configured Detection Time (as last logged)."""
    _, state, detect_us = lab.daemon("b").bfd_session()
    return state == "Up" and detect_us == round(bfd.bound_ms * 1000)


def _wait_bfd_steady(lab: Lab, bfd: BfdSpec, timeout: float = 30) -> bool:
    """Until b's BFD session is Up at its configured Detection Time (the Poll from
    idle_tx to min_tx done) and has logged nothing new for BFD_STEADY_S. After a
    restart the session takes an idle_tx (1 s) or two to come back, and at 1 ms it may
    fall again right after the Poll (both keepalived's and fastha's did, here): a trial
    in any of those windows would time the plain VRRP takeover."""
    d = lab.daemon("b")
    want_us = round(bfd.bound_ms * 1000)
    mark: tuple[tuple[int, str, int], float] = ((-1, "", 0), 0.0)

    def steady() -> bool:
        nonlocal mark
        now = d.bfd_session()
        if now != mark[0]:
            mark = (now, time.monotonic())
        return now[1:] == ("Up", want_us) and time.monotonic() - mark[1] >= BFD_STEADY_S

    try:
        lab.wait(
            f"b's BFD session Up at {bfd.bound_ms:g} ms for {BFD_STEADY_S:g} s", steady, timeout
        )
    except LabError:
        return False  # the trial runs anyway and is counted (bfd_down_at_event)
    return True


def _trial(run: ImplRun, kind: str, advert_int: float, vip: str, vrid: int, probe_s: float) -> None:
    lab = run.lab
    a, b = lab["a"], lab["b"]
    md = measure.master_down_s(PRIO_BACKUP, advert_int)
    # Only fastha acts on the session (keepalived's backup ignores the keyword): only its
    # trials wait for the session.
    bfd = lab.spec.bfd if run.impl == "fastha" else None
    probe_for = 3 * md + 0.25  # the takeover and its first ARP reply fit well inside
    if bfd:
        probe_for += BFD_RECOVER_S  # room for the session to come back after the prober's start

    def start_prober() -> subprocess.Popen[bytes]:
        prober = lab.python(
            lab.client,
            "-m",
            "fastha.bench.lab",
            "probe",
            IFNAME,
            vip,
            str(math.ceil(probe_for / probe_s)),
            str(probe_s),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert prober.stdout is not None and prober.stderr is not None
        if prober.stdout.readline().strip() != b"ready":
            raise LabError(f"ARP prober failed: {prober.stderr.read().decode(errors='replace')}")
        time.sleep(0.02)  # a few probes answered by the master first
        return prober

    prober: subprocess.Popen[bytes] | None = None
    for _attempt in range(BFD_ATTEMPTS if bfd else 1):
        if bfd and not _wait_bfd_steady(lab, bfd):
            continue
        prober = start_prober()
        # The prober's start-up (a Python process) was seen to drop a 3 ms session on a
        # loaded machine: the event waits for the session to be Up at its rate again
        # (an idle_tx or two), while the prober runs on.
        if not bfd or _bfd_up(lab, bfd) or _wait_bfd_steady(lab, bfd, BFD_RECOVER_S - 0.5):
            break
        prober.kill()
        prober.wait()
        prober = None
    else:
        run.bfd_down_at_event += 1
    if prober is None:
        prober = start_prober()
    event_ns = time.time_ns()  # CLOCK_REALTIME: the capture's clock
    if kind == "kill":
        lab.kill("a")
    elif kind == "term":
        lab.stop("a")
    else:
        lab.link_down("a")
    lab.wait_state("b", "MASTER", timeout=10 + 5 * md)
    prober.wait(timeout=30)
    end_ns = time.time_ns()
    # Put the master back; it preempts (priority 150 > 100).
    if kind == "kill":
        lab.remove_vips("a")
        lab.start("a")
    elif kind == "term":
        lab.start("a")
    else:
        lab.link_up("a")
    lab.wait_master("a", timeout=20 + 5 * md)
    time.sleep(max(SETTLE_S, 2 * advert_int))
    run.pull()
    start = max(run.since_ns, event_ns - int((2 * advert_int + 0.2) * 1e9))
    window = [f for f in run.frames if start <= f.ts_ns <= end_ns]
    run.trials.setdefault(kind, []).append(
        measure.failover(
            window,
            master_ip=a.ipv4,
            backup_ip=b.ipv4,
            backup_mac=b.mac,
            vip=vip,
            vrid=vrid,
            priority_zero=(kind == "term"),
            event_ns=event_ns,
        )
    )
    run.since_ns = time.time_ns() - int(advert_int * 1e9)
    # Only the steady window's frames are needed later; drop the rest.
    run.frames = [f for f in run.frames if f.ts_ns >= run.since_ns - int(advert_int * 3e9)]


# --bfd: only the BFD path fails (a's BFD packets dropped on their way out, VRRP intact).
CUT_TABLE = "fhbfdcut"
CUT_RULES = (
    f"table inet {CUT_TABLE} {{ chain out {{ type filter hook output priority 0; "
    "udp dport { 3784, 4784 } drop; }; }\n"
)


def dual_master(
    window: list[measure.Frame], *, master_ip: str, backup_ip: str, vrid: int, event_ns: int
) -> dict[str, Any]:
    """The backup's adverts after the BFD path was cut while the master lived: from its
    first advert to the master's next advert (the one that sends it back to BACKUP) both
    claimed to be master; ``after``: the backup's adverts later than that."""
    mine = [
        f.ts_ns
        for f in window
        if f.kind == "vrrp" and f.vrid == vrid and f.src_ip == backup_ip and f.ts_ns >= event_ns
    ]
    if not mine:
        return {"adverts": 0, "window_ms": 0.0, "after": 0}
    master_next = next(
        (
            f.ts_ns
            for f in window
            if f.kind == "vrrp" and f.vrid == vrid and f.src_ip == master_ip and f.ts_ns > mine[0]
        ),
        None,
    )
    return {
        "adverts": len(mine),
        "window_ms": None if master_next is None else (master_next - mine[0]) / 1e6,
        "after": sum(1 for t in mine if master_next is not None and t > master_next),
    }


def _bfd_path_trial(run: ImplRun, advert_int: float, vrid: int) -> None:
    lab = run.lab
    if run.impl == "fastha" and lab.spec.bfd and not _wait_bfd_steady(lab, lab.spec.bfd):
        run.bfd_down_at_event += 1
    a = lab["a"]
    event_ns = time.time_ns()
    lab.topo.run(a.ns, "nft", "-f", "-", input=CUT_RULES)
    try:
        # BFD detection, the takeover, the master's next advert, with room to spare.
        time.sleep(0.2 + 5 * advert_int)
    finally:
        lab.topo.run(a.ns, "nft", "delete", "table", "inet", CUT_TABLE, check=False)
    end_ns = time.time_ns()
    lab.wait_master("a", timeout=20)
    time.sleep(max(SETTLE_S, 2 * advert_int))
    run.pull()
    window = [f for f in run.frames if event_ns <= f.ts_ns <= end_ns]
    run.dual.append(
        dual_master(window, master_ip=a.ipv4, backup_ip=lab["b"].ipv4, vrid=vrid, event_ns=event_ns)
    )
    run.since_ns = time.time_ns() - int(advert_int * 1e9)
    run.frames = [f for f in run.frames if f.ts_ns >= run.since_ns - int(advert_int * 3e9)]


def dual_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    windows = [r["window_ms"] for r in rows if r["adverts"] and r["window_ms"] is not None]
    return {
        "trials": len(rows),
        "took_over": sum(1 for r in rows if r["adverts"]),
        "window_ms": {**measure.summary(windows), "samples": windows},
        "backup_adverts": [r["adverts"] for r in rows],
        "adverts_after_master": sum(r["after"] for r in rows),
    }


def kind_result(rows: list[measure.Failover]) -> dict[str, Any]:
    out: dict[str, Any] = {"trials": len(rows), "problems": [r.problem for r in rows if r.problem]}
    for metric, _ in METRICS:
        vals = [v for r in rows if (v := getattr(r, f"{metric}_ms")) is not None]
        out[metric] = measure.summary(vals)
        out[metric]["samples"] = vals
    return out


def impl_result(run: ImplRun, kinds: tuple[str, ...], advert_int: float) -> dict[str, Any]:
    iv = measure.interval_figures(run.intervals_ms, advert_int * 1000)
    iv["summary_ms"] = measure.summary(run.intervals_ms)
    iv["samples_ms"] = run.intervals_ms
    out: dict[str, Any] = {
        "impl": run.impl,
        **{k: kind_result(run.trials.get(k, [])) for k in kinds},
        "intervals": iv,
    }
    if run.lab.spec.bfd:
        out["bfd_path"] = dual_result(run.dual)
        out["bfd_down_at_event"] = run.bfd_down_at_event
    return out


def build_doc(cfg: dict[str, Any], runs: list[ImplRun]) -> dict[str, Any]:
    adv = cfg["advert_int_ms"] / 1000
    kinds = tuple(cfg["kinds"])
    results: dict[str, Any] = {r.impl: impl_result(r, kinds, adv) for r in runs}
    b = cfg.get("bfd")
    bfd = bfd_spec(b["interval_ms"], b["multiplier"]) if b else None
    doc = report.new_doc(
        "failover",
        cfg,
        [r.impl for r in runs],
        results,
        bounds_ms={k: v for k, v in bounds_ms(adv, bfd).items() if k in kinds},
        master_down_ms=measure.master_down_s(PRIO_BACKUP, adv) * 1000,
    )
    if pair := report.compared(doc):
        x, y = pair
        doc["ratios"].update(
            {
                **{k: {m: report.ratios(x[k][m], y[k][m]) for m, _ in METRICS} for k in kinds},
                "interval_deviation_us": report.ratios(
                    x["intervals"].get("deviation_us", {}), y["intervals"].get("deviation_us", {})
                ),
            }
        )
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg, bd = doc["config"], doc["bounds_ms"]
    impls = doc["impls"]
    rows: list[list[str]] = []
    for kind in cfg["kinds"]:
        if rows:
            rows.append(["---"])
        for impl in impls:
            k = doc["results"][impl][kind]
            for metric, label in METRICS:
                s = k[metric]
                rows.append(
                    [
                        f"{impl} {kind}" if metric == "advert" else "",
                        label,
                        *(report.fmt(s[c]) for c in report.COLS),
                        str(s["n"]),
                        report.fmt(bd[kind]) if metric == "advert" else "",
                        report.fmt(s["p99"] - bd[kind], 3) if metric == "advert" and s["n"] else "",
                    ]
                )
            if k["problems"]:
                rows.append(["", f"problems: {len(k['problems'])}", k["problems"][0][:40]])
        if len(impls) == 2:
            r = doc["ratios"][kind]["advert"]
            rows.append(
                ["", f"ratio {doc['ratios']['of']}", *(report.fmt(r[c], 2) for c in report.COLS)]
            )
    title = (
        f"failover: VRRPv{cfg['version']}, advert_int {cfg['advert_int_ms']:g} ms, "
        f"priorities {PRIO_MASTER}/{PRIO_BACKUP}, {cfg['trials']} trials per kind; ms"
    )
    caption = "kill/link bound: 3 x advert_int + skew_time; term bound: skew_time (RFC 5798 6.4)"
    probes = (
        f"; ARP probes every {cfg.get('probe_interval_ms', PROBE_INTERVAL_S * 1000):g} ms "
        "(a reply comes within one of the VIP answering)"
    )
    if b := cfg.get("bfd"):
        title += f"; BFD {b['interval_ms']:g} ms x {b['multiplier']}, {BFD_KEYWORD}"
        caption = (
            f"kill/link bound: the BFD Detection Time, {b['multiplier']} x {b['interval_ms']:g} ms "
            f"(plain VRRP: {doc['master_down_ms']:.1f} ms); term bound: skew_time; keepalived "
            f"ignores {BFD_KEYWORD} (the plain VRRP figure in the same run)"
        )
    t1 = report.table(
        title,
        ["impl / event", "to", *report.COLS, "n", "bound", "p99-bound"],
        rows,
        caption=caption + probes,
    )
    irows = []
    for impl in impls:
        iv = doc["results"][impl]["intervals"]
        if not iv.get("n"):
            irows.append([impl, "-", "-", "-", "-", "-", "-", "-"])
            continue
        d = iv["deviation_us"]
        irows.append(
            [
                impl,
                str(iv["n"]),
                f"{iv['mean_ms']:.4f}",
                f"{iv['mean_error_pct']:+.3f}",
                *(report.fmt(d[c], 1) for c in report.COLS),
                str(iv["missing"]),
            ]
        )
    if len(impls) == 2:
        r = doc["ratios"]["interval_deviation_us"]
        irows.append(
            [
                f"ratio {doc['ratios']['of']}",
                "",
                "",
                "",
                *(report.fmt(r[c], 2) for c in report.COLS),
                "",
            ]
        )
    t2 = report.table(
        f"steady master's advert intervals (nominal {cfg['advert_int_ms']:g} ms); |interval - nominal| in µs",
        ["impl", "n", "mean ms", "error %", *(f"{c} µs" for c in report.COLS), "missing"],
        irows,
    )
    out = [t1, t2]
    if cfg.get("bfd"):
        drows = []
        for impl in impls:
            d = doc["results"][impl]["bfd_path"]
            w = d["window_ms"]
            drows.append(
                [
                    impl,
                    f"{d['took_over']}/{d['trials']}",
                    *(report.fmt(w[c]) for c in ("p50", "p99", "max")),
                    str(max(d["backup_adverts"], default=0)),
                    str(d["adverts_after_master"]),
                    str(doc["results"][impl]["bfd_down_at_event"]),
                ]
            )
        out.append(
            report.table(
                "only the BFD path fails (the master's BFD packets dropped, VRRP intact): "
                "dual-master window, ms",
                [
                    "impl",
                    "backup took over",
                    "p50",
                    "p99",
                    "max",
                    "backup adverts (max)",
                    "after master's",
                    "BFD not Up at events",
                ],
                drows,
                caption="from the backup's first advert to the master's next one, which sends "
                "it back to BACKUP (keepalived: no takeover, the extension is fastha's)",
            )
        )
    return out


def plot(doc: dict[str, Any], path: str) -> None:
    cfg, bounds = doc["config"], doc["bounds_ms"]
    hist = {impl: doc["results"][impl]["intervals"]["samples_ms"] for impl in doc["impls"]}
    # Each kind against its own bound: kill and link wait Master_Down_Interval, term
    # only Skew_Time, so one shared axis of raw times would hide the term trials.
    over = {
        kind: {
            impl: [
                v - bounds[kind]
                for v in doc["results"][impl][kind]["advert"]["samples"]
                if v is not None
            ]
            for impl in doc["impls"]
        }
        for kind in cfg["kinds"]
    }
    report.plot_failover(
        path,
        f"fastha bench failover: VRRPv{cfg['version']}, advert_int {cfg['advert_int_ms']:g} ms"
        " (master's last / priority-0 advert -> backup's first advert, seen by the client)",
        hist,
        "advert interval (ms), steady master, seen by the client",
        over,
        bounds,
        hist_lines={"nominal": cfg["advert_int_ms"]},
    )


def run(
    *,
    version: Literal[2, 3],
    advert_int: float,
    trials: int,
    kinds: tuple[str, ...],
    adverts: int,
    peer: str,
    workdir: Path,
    bfd: BfdSpec | None = None,
    probe_interval: float = PROBE_INTERVAL_S,
    on_progress: Callable[[str | None], None] = lambda _m: None,
    on_update: Callable[[dict[str, Any]], None] = lambda _d: None,
) -> dict[str, Any]:
    need_tools("ip", "tcpdump", *(["nft"] if bfd else []))
    impls = impls_for(peer)
    cfg: dict[str, Any] = {
        "version": version,
        "advert_int_ms": advert_int * 1000,
        "priorities": [PRIO_MASTER, PRIO_BACKUP],
        "trials": trials,
        "kinds": list(kinds),
        "adverts": adverts,
        "peer": peer,
        "probe_interval_ms": probe_interval * 1000,
    }
    if bfd:
        cfg["bfd"] = {
            "interval_ms": bfd.interval_ms,
            "multiplier": bfd.multiplier,
            "bound_ms": bfd.bound_ms,
            "keyword": BFD_KEYWORD,
        }
    vip = LabSpec(name="x").vip(0)
    runs: list[ImplRun] = []
    with contextlib.ExitStack() as stack:
        for impl in impls:
            spec = LabSpec(
                name=unique_name(f"fhf{impl[0]}"),
                directors=(Director("a", impl, PRIO_MASTER), Director("b", impl, PRIO_BACKUP)),
                version=version,
                advert_int=advert_int,
                bfd=bfd,
            )
            pcap = workdir / f"{impl}.pcap"
            lab = captured_lab(stack, spec, pcap)
            runs.append(ImplRun(impl, lab, pcap, measure.PcapTail(pcap)))
        settle((r.lab for r in runs), advert_int)
        on_progress(f"steady state: {adverts} adverts")
        t0 = time.time_ns()
        time.sleep(adverts * advert_int + 2 * advert_int)
        t1 = time.time_ns()
        for r in runs:
            r.pull()
            steady = [f for f in r.frames if t0 <= f.ts_ns <= t1]
            r.intervals_ms = measure.advert_intervals_ms(steady, r.lab["a"].ipv4, VRID_BASE)[
                :adverts
            ]
            r.since_ns = t1
        on_progress(None)
        on_update(build_doc(cfg, runs))
        for i in range(trials):
            for kind in kinds:
                for r in runs:
                    on_progress(f"{r.impl} {kind} {i + 1}/{trials}")
                    _trial(r, kind, advert_int, vip, VRID_BASE, probe_interval)
                    on_progress(None)
                    on_update(build_doc(cfg, runs))
            if bfd:
                for r in runs:
                    on_progress(f"{r.impl} BFD path cut {i + 1}/{trials}")
                    _bfd_path_trial(r, advert_int, VRID_BASE)
                    on_progress(None)
                    on_update(build_doc(cfg, runs))
    return build_doc(cfg, runs)


@click.command("failover")
@click.option(
    "--trials", default=5, show_default=True, help="Trials of each kind, per implementation."
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Failover kinds (default: all).",
)
@click.option(
    "--advert-int",
    default=0.01,
    show_default=True,
    help="advert_int in seconds (VRRPv3: 0.01 and up).",
)
@click.option(
    "--vrrp-version", "version", type=click.Choice(["2", "3"]), default="3", show_default=True
)
@click.option(
    "--adverts",
    default=1000,
    show_default=True,
    help="Steady-state adverts for the interval figures.",
)
@click.option(
    "--bfd",
    "with_bfd",
    is_flag=True,
    help=f"A BFD session master-backup and fastha's {BFD_KEYWORD} (kill/link bound: BFD's).",
)
@click.option("--bfd-interval", default=1.0, show_default=True, help="--bfd: interval, ms.")
@click.option("--bfd-multiplier", default=3, show_default=True, help="--bfd: detect multiplier.")
@click.option(
    "--probe-interval",
    default=PROBE_INTERVAL_S * 1000,
    show_default=True,
    help="The client's ARP probes for the VIP, ms apart (the resolution of "
    '"advert -> ARP reply").',
)
@report.bench_options("Write a PNG: advert-interval histogram and failover CDF.")
@click.option("--keep", is_flag=True, help="Keep the captures (prints their directory).")
def command(
    trials: int,
    kinds: tuple[str, ...],
    advert_int: float,
    version: str,
    adverts: int,
    with_bfd: bool,
    bfd_interval: float,
    bfd_multiplier: int,
    probe_interval: float,
    peer: str | None,
    as_json: bool,
    plot_path: str | None,
    keep: bool,
) -> None:
    """Failover latency on a namespace lab (kill -9, SIGTERM, link down), from a capture."""
    report.need_root()
    if trials < 1 or adverts < 2:
        raise click.BadParameter("need --trials >= 1 and --adverts >= 2")
    if not 0.01 <= probe_interval <= 100:
        raise click.BadParameter("--probe-interval: 0.01..100 ms")
    if with_bfd and not (1 <= bfd_interval <= 10000 and 1 <= bfd_multiplier <= 255):
        raise click.BadParameter("--bfd-interval: 1..10000 ms, --bfd-multiplier: 1..255")
    if version == "2" and not float(advert_int).is_integer():
        raise click.BadParameter("VRRPv2 advert_int is whole seconds; use --vrrp-version 3")
    peer = peer or default_peer()
    kinds = kinds or KINDS
    n_impl = len(impls_for(peer))
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-failover-"))
    state: dict[str, Any] = {}
    total = 1 + trials * (len(kinds) + with_bfd) * n_impl

    def shown() -> list[Any]:
        return tables(state) if state else []

    with live_run("starting labs", total, shown, workdir, keep) as live:

        def progress(msg: str | None) -> None:
            live.note(msg) if msg else live.advance()

        doc = run(
            version=vrrp_version(version),
            advert_int=advert_int,
            trials=trials,
            kinds=kinds,
            adverts=adverts,
            peer=peer,
            workdir=workdir,
            bfd=bfd_spec(bfd_interval, bfd_multiplier) if with_bfd else None,
            probe_interval=probe_interval / 1000,
            on_progress=progress,
            on_update=state.update,
        )
    report.emit(doc, as_json, plot_path, plot, tables)
    if keep:
        click.echo(f"captures kept in {workdir}", err=True)
