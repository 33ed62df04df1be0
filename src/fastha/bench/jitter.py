"""`fastha bench jitter`: a master's advert intervals on the wire, idle and under load.

One lab per implementation (fastha, and keepalived with ``--peer keepalived``), up at
once: a single director (it becomes master) and a client capturing its adverts with
tcpdump (kernel receive timestamps, ns). Both labs are measured in the same window, so
they share the machine's noise. Phase ``idle``: ``--adverts`` adverts. Phase ``load``:
the same again while CPU hogs (one per CPU, at the daemon's nice level) spin in each
director's namespace.

Per phase: the intervals (p50/p99/p99.9/max), |interval - nominal| and the lateness of
each advert against the sender's own fixed grid (``measure.grid_lateness_us``).
Protocol bound: an interval longer than Master_Down_Interval = 3 x advert_int +
skew_time (a priority-100 backup) would let a backup take over; those are counted.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from fastha.bench import measure, report
from fastha.bench.failover import default_peer, impls_for, vrrp_version
from fastha.bench.lab import (
    VRID_BASE,
    Director,
    Impl,
    Lab,
    LabSpec,
    captured_lab,
    live_run,
    need_tools,
    settle,
    unique_name,
)

PHASES = ("idle", "load")


def phase_figures(ts_ns: list[int], adverts: int, advert_int: float) -> dict[str, Any]:
    ts_ns = ts_ns[: adverts + 1]
    nominal = advert_int * 1000
    iv = [(b - a) / 1e6 for a, b in itertools.pairwise(ts_ns)]
    bound = measure.backup_bound_ms(advert_int)
    fig = measure.interval_figures(iv, nominal)
    return {
        **fig,
        "interval_ms": measure.summary(iv),
        "lateness_us": measure.summary(measure.grid_lateness_us(ts_ns, nominal)),
        "bound_ms": bound,
        "over_bound": sum(1 for x in iv if x > bound),
        "samples_ms": iv,
    }


def build_doc(cfg: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    doc = report.advert_doc("jitter", cfg, results)
    if pair := report.compared(doc):
        x, y = pair
        for ph in cfg["phases"]:
            if ph in x and ph in y:
                doc["ratios"][ph] = {
                    "deviation_us": report.ratios(
                        x[ph].get("deviation_us", {}), y[ph].get("deviation_us", {})
                    ),
                    "lateness_us": report.ratios(x[ph]["lateness_us"], y[ph]["lateness_us"]),
                }
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg = doc["config"]
    rows: list[list[str]] = []
    for ph in cfg["phases"]:
        if rows:
            rows.append(["---"])
        for impl in doc["impls"]:
            r = doc["results"][impl].get(ph)
            if not r or not r.get("n"):
                rows.append([f"{impl} {ph}", "(running)"])
                continue
            d, lat, ivs = r["deviation_us"], r["lateness_us"], r["interval_ms"]
            rows.append(
                [
                    f"{impl} {ph}",
                    str(r["n"]),
                    f"{r['mean_ms']:.4f}",
                    *(report.fmt(ivs[c], 3) for c in report.COLS),
                    *(report.fmt(d[c], 1) for c in ("p50", "p99", "max")),
                    *(report.fmt(lat[c], 1) for c in ("p99", "p99.9")),
                    str(r["missing"]),
                    str(r["over_bound"]),
                ]
            )
        rt = doc["ratios"].get(ph)
        if rt:
            d, lat = rt["deviation_us"], rt["lateness_us"]
            rows.append(
                [
                    f"ratio {doc['ratios']['of']}",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    *(report.fmt(d[c], 2) for c in ("p50", "p99", "max")),
                    *(report.fmt(lat[c], 2) for c in ("p99", "p99.9")),
                    "",
                    "",
                ]
            )
    return [
        report.table(
            f"advert jitter: VRRPv{cfg['version']}, advert_int {cfg['advert_int_ms']:g} ms, "
            f"{cfg['adverts']} adverts per phase, load = {cfg['hogs']} CPU hog(s) per director",
            [
                "impl / phase",
                "n",
                "mean ms",
                *(f"ivl {c}" for c in report.COLS),
                "|dev| p50 µs",
                "|dev| p99 µs",
                "|dev| max µs",
                "late p99 µs",
                "late p99.9 µs",
                "missing",
                f"> {doc['bound_ms']:.1f} ms",
            ],
            rows,
            caption="bound: 3 x advert_int + skew_time (a priority-100 backup would take over "
            "after a longer interval); lateness against the sender's own grid",
        )
    ]


def plot(doc: dict[str, Any], path: str) -> None:
    cfg = doc["config"]
    hist = {
        f"{impl} {ph}": doc["results"][impl][ph]["samples_ms"]
        for impl in doc["impls"]
        for ph in cfg["phases"]
    }
    nominal = cfg["advert_int_ms"]
    dev = {k: [abs(v - nominal) for v in vals if v is not None] for k, vals in hist.items()}
    report.plot_tail(
        path,
        f"fastha bench jitter: VRRPv{cfg['version']}, advert_int {nominal:g} ms",
        hist,
        "advert interval (ms), seen by the client",
        dev,
        "|interval - advert_int| (ms)",
        hist_lines={"nominal": nominal},
        tail_lines={"bound": doc["bound_ms"] - nominal} if doc.get("bound_ms") else None,
    )


def run(
    *,
    version: Literal[2, 3],
    advert_int: float,
    adverts: int,
    phases: tuple[str, ...],
    hogs: int,
    peer: str,
    workdir: Path,
    on_progress: Callable[[str | None, int], None] = lambda _m, _n: None,
    on_update: Callable[[dict[str, Any]], None] = lambda _d: None,
) -> dict[str, Any]:
    need_tools("ip", "tcpdump")
    impls = impls_for(peer)
    cfg = {
        "version": version,
        "advert_int_ms": advert_int * 1000,
        "adverts": adverts,
        "phases": list(phases),
        "hogs": hogs,
        "peer": peer,
    }
    results: dict[str, dict[str, Any]] = {i: {} for i in impls}
    with contextlib.ExitStack() as stack:
        labs: dict[Impl, tuple[Lab, measure.PcapTail[measure.Frame]]] = {}
        for impl in impls:
            spec = LabSpec(
                name=unique_name(f"fhj{impl[0]}"),
                directors=(Director("a", impl, 150),),
                version=version,
                advert_int=advert_int,
            )
            pcap = workdir / f"{impl}.pcap"
            lab = captured_lab(stack, spec, pcap, "ip proto 112")
            labs[impl] = (lab, measure.PcapTail(pcap))
        settle((lab for lab, _ in labs.values()), advert_int)
        for ph in phases:
            procs = []
            if ph == "load":
                for lab, _ in labs.values():
                    procs += [
                        lab.python(lab["a"], "-m", "fastha.bench.lab", "hog") for _ in range(hogs)
                    ]
                time.sleep(0.5)  # the hogs are spinning
            on_progress(f"{ph}: {adverts} adverts", 0)
            t0 = time.time_ns()
            end = time.monotonic() + (adverts + 2) * advert_int
            step = max(1, adverts // 50)
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(left, step * advert_int))
                on_progress(None, step)
            t1 = time.time_ns()
            for p in procs:
                p.kill()
                p.wait()
            for impl, (lab, tail) in labs.items():
                fr = [f for f in tail.read() if t0 <= f.ts_ns <= t1]
                ts = measure.advert_times_ns(fr, lab["a"].ipv4, VRID_BASE)
                results[impl][ph] = phase_figures(ts, adverts, advert_int)
            on_update(build_doc(cfg, results))
    return build_doc(cfg, results)


@click.command("jitter")
@click.option("--adverts", default=2000, show_default=True, help="Adverts per phase.")
@click.option("--advert-int", default=0.01, show_default=True, help="advert_int in seconds.")
@click.option(
    "--vrrp-version", "version", type=click.Choice(["2", "3"]), default="3", show_default=True
)
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice(PHASES),
    help="Phases (default: idle and load).",
)
@click.option("--hogs", default=0, help="CPU hogs per director under load (default: one per CPU).")
@report.bench_options("Write a PNG: interval histogram and CDF.")
def command(
    adverts: int,
    advert_int: float,
    version: str,
    phases: tuple[str, ...],
    hogs: int,
    peer: str | None,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """Advert intervals seen on the wire, idle and with CPU hogs beside the daemon."""
    report.need_root()
    if adverts < 2:
        raise click.BadParameter("need --adverts >= 2")
    peer = peer or default_peer()
    phases = phases or PHASES
    hogs = hogs or os.cpu_count() or 1
    impls_for(peer)
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-jitter-"))
    state: dict[str, Any] = {}

    def shown() -> list[Any]:
        return tables(state) if state else []

    with live_run("starting labs", adverts * len(phases), shown, workdir) as live:

        def progress(msg: str | None, n: int) -> None:
            live.note(msg) if msg else live.advance(n)

        doc = run(
            version=vrrp_version(version),
            advert_int=advert_int,
            adverts=adverts,
            phases=phases,
            hogs=hogs,
            peer=peer,
            workdir=workdir,
            on_progress=progress,
            on_update=state.update,
        )
    report.emit(doc, as_json, plot_path, plot, tables)
