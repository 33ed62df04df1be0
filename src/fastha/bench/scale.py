"""`fastha bench scale`: K VRRP instances on one interface at one advert interval.

Per implementation a lab with one director running ``--instances`` instances (VRIDs
1..K, one VIP each; alone, it is master of all) and a client capturing its adverts
with tcpdump (kernel receive timestamps, ns). Over ``--seconds``:

- CPU per 1,000 adverts: nanoseconds of CPU of every process in the director's
  namespace (``cpu.cpu_ns``: /proc/PID/task/*/schedstat, before and after) over the
  adverts the capture saw in the window;
- lateness of each advert against its instance's own fixed grid
  (``measure.grid_lateness_us``), pooled over the instances: p50/p99/p99.9/max;
- adverts expected (K x seconds / advert_int) vs seen, and tcpdump's kernel drops.

The implementations run one after the other, not side by side: at this load each
daemon wants a core, and on a small machine running both at once would measure their
contention for the CPU rather than either of them. Protocol bound: an interval longer
than Master_Down_Interval (3 x advert_int + skew_time, a priority-100 backup) would let
a backup take over; those are counted.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from fastha.bench import cpu, measure, report
from fastha.bench.failover import default_peer, impls_for, vrrp_version
from fastha.bench.lab import (
    VRID_BASE,
    Director,
    Impl,
    Lab,
    LabSpec,
    live_run,
    need_tools,
    ns_pids,
    unique_name,
)


def one(
    impl: Impl,
    *,
    version: Literal[2, 3],
    instances: int,
    advert_int: float,
    seconds: float,
    workdir: Path,
    tick: Callable[[int], None],
) -> dict[str, Any]:
    spec = LabSpec(
        name=unique_name(f"fhs{impl[0]}"),
        directors=(Director("a", impl, 150),),
        version=version,
        advert_int=advert_int,
        instances=instances,
    )
    pcap = workdir / f"{impl}.pcap"
    with Lab(spec) as lab:
        lab.wait_master("a", timeout=60 + 5 * advert_int)
        with lab.capture(pcap, "ip proto 112") as cap:
            time.sleep(max(0.5, 3 * advert_int))
            ns = lab["a"].ns
            cpu0, t0, m0 = cpu.cpu_ns(ns_pids(ns)), time.time_ns(), time.monotonic()
            end = m0 + seconds
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 0.25))
                tick(1)
            cpu1, t1, m1 = cpu.cpu_ns(ns_pids(ns)), time.time_ns(), time.monotonic()
        src = lab["a"].ipv4
    frames = [f for f in measure.frames(pcap) if t0 <= f.ts_ns <= t1]
    nominal = advert_int * 1000
    lateness: list[float] = []
    deviation: list[float] = []
    over = 0
    seen = 0
    bound = measure.backup_bound_ms(advert_int)
    by_vrid: dict[int, list[int]] = {}
    for f in frames:
        if f.kind == "vrrp" and f.src_ip == src:
            by_vrid.setdefault(f.vrid, []).append(f.ts_ns)
    for vrid in range(VRID_BASE, VRID_BASE + instances):
        ts = by_vrid.get(vrid, [])
        seen += len(ts)
        lateness += measure.grid_lateness_us(ts, nominal)
        iv = [(b - a) / 1e6 for a, b in itertools.pairwise(ts)]
        deviation += [abs(x - nominal) * 1000 for x in iv]
        over += sum(1 for x in iv if x > bound)
    cpu_ms = (cpu1 - cpu0) / 1e6
    wall = m1 - m0
    expected = instances * wall / advert_int
    return {
        "impl": impl,
        "seconds": wall,
        "adverts_seen": seen,
        "adverts_expected": round(expected),
        "adverts_per_s": seen / wall if wall else 0.0,
        "instances_seen": sum(1 for v in by_vrid if VRID_BASE <= v < VRID_BASE + instances),
        "cpu_ms": cpu_ms,
        "cpu_pct": cpu_ms / 10 / wall if wall else 0.0,
        "cpu_ms_per_1000_adverts": cpu_ms / seen * 1000 if seen else float("nan"),
        "lateness_us": measure.summary(lateness),
        "deviation_us": measure.summary(deviation),
        "over_bound": over,
        "capture_dropped": cap.dropped,
        "lateness_samples_us": lateness,
    }


def build_doc(cfg: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    doc = report.advert_doc("scale", cfg, results)
    if pair := report.compared(doc):
        x, y = pair
        doc["ratios"]["cpu_ms_per_1000_adverts"] = report.ratio(
            x["cpu_ms_per_1000_adverts"], y["cpu_ms_per_1000_adverts"]
        )
        doc["ratios"]["lateness_us"] = report.ratios(x["lateness_us"], y["lateness_us"])
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg = doc["config"]

    def row(r: dict[str, Any]) -> list[str]:
        return [
            f"{r['adverts_seen']}/{r['adverts_expected']}",
            f"{r['adverts_per_s']:.0f}",
            f"{r['cpu_pct']:.1f}",
            report.fmt(r["cpu_ms_per_1000_adverts"], 2),
            *(report.fmt(r["lateness_us"][c], 1) for c in report.COLS),
            str(r["over_bound"]),
            str(r["capture_dropped"]),
        ]

    def ratio_row(rt: dict[str, Any]) -> list[str]:
        return [
            "",
            "",
            "",
            report.fmt(rt["cpu_ms_per_1000_adverts"], 2),
            *(report.fmt(rt["lateness_us"][c], 2) for c in report.COLS),
            "",
            "",
        ]

    rows = report.impl_rows(doc, row, ratio_row)
    return [
        report.table(
            f"scale: {cfg['instances']} instances on one interface, VRRPv{cfg['version']}, "
            f"advert_int {cfg['advert_int_ms']:g} ms, {cfg['seconds']:g} s each",
            [
                "impl",
                "adverts seen/exp",
                "adverts/s",
                "CPU %",
                "CPU ms/1k adv",
                *(f"late {c} µs" for c in report.COLS),
                f"> {doc['bound_ms']:.1f} ms",
                "cap drops",
            ],
            rows,
            caption="CPU: ns, /proc/PID/task/*/schedstat of the director's processes; lateness: capture, "
            "against each instance's own grid; run one after the other",
        )
    ]


def plot(doc: dict[str, Any], path: str) -> None:
    cfg = doc["config"]
    series = {impl: doc["results"][impl]["lateness_samples_us"] for impl in doc["impls"]}
    report.plot_tail(
        path,
        f"fastha bench scale: {cfg['instances']} instances, advert_int {cfg['advert_int_ms']:g} ms",
        series,
        "advert lateness (µs) against its instance's grid",
        series,
        "advert lateness (µs)",
    )


@click.command("scale")
@click.option("--instances", default=100, show_default=True, help="VRRP instances (1..255).")
@click.option("--advert-int", default=0.01, show_default=True, help="advert_int in seconds.")
@click.option(
    "--seconds", default=10.0, show_default=True, help="Measured window per implementation."
)
@click.option(
    "--vrrp-version", "version", type=click.Choice(["2", "3"]), default="3", show_default=True
)
@report.bench_options(
    "Write a PNG: lateness histogram and CDF.", "Also run keepalived (default: when installed)."
)
def command(
    instances: int,
    advert_int: float,
    seconds: float,
    version: str,
    peer: str | None,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """CPU per 1,000 adverts and advert lateness with K instances on one interface."""
    report.need_root()
    if not 1 <= instances <= 255 or seconds <= 0:
        raise click.BadParameter("need 1 <= --instances <= 255 and --seconds > 0")
    need_tools("ip", "tcpdump")
    peer = peer or default_peer()
    impls = impls_for(peer)
    cfg = {
        "version": int(version),
        "instances": instances,
        "advert_int_ms": advert_int * 1000,
        "seconds": seconds,
        "peer": peer,
    }
    results: dict[str, dict[str, Any]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-scale-"))

    def shown() -> list[Any]:
        return tables(build_doc(cfg, results)) if results else []

    ticks = int(seconds / 0.25 + 0.999)
    with live_run("starting", ticks * len(impls), shown, workdir) as live:
        for impl in impls:
            live.note(f"{impl}: {instances} instances, {seconds:g} s")
            results[impl] = one(
                impl,
                version=vrrp_version(version),
                instances=instances,
                advert_int=advert_int,
                seconds=seconds,
                workdir=workdir,
                tick=live.advance,
            )
            live.refresh()
    doc = build_doc(cfg, results)
    report.emit(doc, as_json, plot_path, plot, tables)
