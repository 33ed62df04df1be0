"""`fastha bench checkers`: N real servers health-checked by fastha and by keepalived.

keepalived's checker needs IPVS and this machine's kernel may have none, so the bench
boots a User-Mode-Linux guest (the checkout's ``tests/ipvs/uml.py``: the host's root
read-only, ip_vs loaded) pinned with ``sched_setaffinity`` to one host CPU (unpinned,
UML's syscall cost swings 10x between runs), and runs ``fastha.bench.checkers_guest``
there: the same keepalived.conf (N real servers x TCP_CHECK, HTTP_GET or SSL_GET on
loopback) under ``fastha daemon -C`` and ``keepalived -C``, one after the other. Per
implementation, over ``--seconds`` once every real server was probed:

- checks: the guest kernel's TCP ActiveOpens (and the real servers' accepts, counted
  apart), against the checks due (N x seconds / delay_loop);
- CPU per 1,000 checks: ns of CPU of the daemon's whole process tree (``cpu.cpu_ns``);
- RSS of that tree at the end of the window;
- gap excess: for each probe, the gap since the previous probe of the same real server
  minus delay_loop, seen by the server (probe start lateness + the previous probe's
  duration: both daemons wait delay_loop after a probe ends).

- down: then, still at full load, ``--failures`` real servers stop listening one at a
  time; ms until each leaves the IPVS table (``ipvsadm`` polled in a loop; includes the
  wait for its next probe, up to delay_loop), and until it is back once it listens.

Not measured yet (issue 19): lateness against each daemon's own schedule (the daemons
do not expose it alike), and the rate at which each saturates one core.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import orjson

from fastha.bench import cpu, report
from fastha.bench.failover import default_peer, impls_for

KINDS = ("tcp", "http", "ssl")
GAP_COLS = ("p50", "p99", "max")
ROOT = Path(__file__).resolve().parents[3]  # the checkout, for an editable install


def uml_module() -> Any:
    """tests/ipvs/uml.py of the checkout this fastha runs from: the guest it boots
    mounts the host's root and runs the checkout's venv."""
    if not (ROOT / "tests" / "ipvs" / "uml.py").exists():
        raise click.ClickException(
            f"fastha bench checkers boots tests/ipvs/uml.py of a source checkout; "
            f"none at {ROOT} (install fastha with `scripts/install` from a checkout)"
        )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.ipvs import uml

    return uml


class HostShare:
    """What the host gave the guest: every 0.5 s, the schedstat of each thread of each
    process below this one (the UML kernel and its helpers), kept after they exit. On
    a loaded machine the guest waits for its CPU, and its own clock, which runs on,
    charges the lost time to whatever it was running: these two figures say how much."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, int]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        for pid in cpu.tree(me):
            if pid != me:
                self.seen.update(cpu.threads(pid))

    def _run(self) -> None:
        while not self.done.wait(0.5):
            self._sample()

    def __enter__(self) -> HostShare:
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.wall = time.monotonic() - self.t0

    def figures(self) -> dict[str, float]:
        run = sum(r for r, _ in self.seen.values())
        wait = sum(w for _, w in self.seen.values())
        return {
            "host_cpu_pct": 100 * run / 1e9 / self.wall,
            "host_wait_pct": 100 * wait / 1e9 / self.wall,
            "host_seconds": self.wall,
        }


def run_guest(
    servers: int,
    kind: str,
    delay_loop: float,
    seconds: float,
    impls: list[str],
    cpu: int,
    failures: int,
) -> tuple[dict[str, Any], dict[str, float]]:
    """impl -> figures, and what the host gave the guest (``HostShare``)."""
    uml = uml_module()
    args = (
        f"--servers {servers} --kind {kind} --delay-loop {delay_loop:g} "
        f"--seconds {seconds:g} --impls {','.join(impls)} --failures {failures}"
    )
    python = str(ROOT / ".venv" / "bin" / "python")
    if not re.fullmatch(r"[\w./+-]+", python):  # the guest's init runs it through sh
        raise click.ClickException(f"the checkout's path must be plain for the guest: {python}")
    per_failure = 2 * (3 * delay_loop + 3)
    timeout = 300 + len(impls) * (seconds + 4 * delay_loop + 120 + servers / 20)
    timeout += len(impls) * failures * per_failure
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})  # the guest's processes inherit it
    try:
        with HostShare() as share:
            r = uml.run(
                f"{python} -m fastha.bench.checkers_guest {args}",
                timeout=timeout,
                mem="1536M",
            )
    except uml.UmlError as e:
        raise click.ClickException(str(e)) from None
    finally:
        os.sched_setaffinity(0, before)
    last = r.out.strip().splitlines()[-1:] if r.out.strip() else []
    if r.rc != 0 or not last:
        raise click.ClickException(f"the guest failed (rc {r.rc}):\n{r.out[-4000:]}")
    doc: dict[str, Any] = orjson.loads(last[0])
    return doc, share.figures()


def build_doc(
    cfg: dict[str, Any], results: dict[str, dict[str, Any]], host: dict[str, float]
) -> dict[str, Any]:
    impls = list(results)
    load = list(os.getloadavg())
    doc = report.new_doc("checkers", cfg, impls, results, loadavg=load, host=host)
    if pair := report.compared(doc):
        x, y = pair
        doc["ratios"].update(
            {
                **{
                    k: report.ratio(x[k], y[k])
                    for k in ("cpu_ms_per_1000_checks", "checks_per_s", "cpu_pct", "rss_kib")
                },
                "gap_excess_ms": report.ratios(x["gap_excess_ms"], y["gap_excess_ms"]),
                "rs_down_to_ipvs_ms": report.ratios(
                    x["rs_down_to_ipvs_ms"], y["rs_down_to_ipvs_ms"]
                ),
            }
        )
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg = doc["config"]

    def row(r: dict[str, Any]) -> list[str]:
        return [
            f"{r['checks_per_s']:.0f}/{r['checks_due_per_s']:.0f}",
            f"{r['checks']}/{r['accepts']}",
            f"{r['ipvs_dests']}",
            f"{r['cpu_pct']:.0f}",
            f"{r['guest_busy_pct']:.0f}",
            report.fmt(r["cpu_ms_per_1000_checks"], 1),
            f"{r['rss_kib'] / 1024:.1f}",
            *(report.fmt(r["gap_excess_ms"][c], 0) for c in GAP_COLS),
            report.fmt(r["rs_down_to_ipvs_ms"]["p50"], 0),
            report.fmt(r["rs_down_to_ipvs_ms"]["max"], 0),
            f"{r['first_round_s']:.1f}",
        ]

    def ratio_row(rt: dict[str, Any]) -> list[str]:
        return [
            report.fmt(rt["checks_per_s"], 2),
            "",
            "",
            report.fmt(rt["cpu_pct"], 2),
            "",
            report.fmt(rt["cpu_ms_per_1000_checks"], 2),
            report.fmt(rt["rss_kib"], 2),
            *(report.fmt(rt["gap_excess_ms"][c], 2) for c in GAP_COLS),
            report.fmt(rt["rs_down_to_ipvs_ms"]["p50"], 2),
            report.fmt(rt["rs_down_to_ipvs_ms"]["max"], 2),
            "",
        ]

    rows = report.impl_rows(doc, row, ratio_row)
    load = ", ".join(f"{x:.2f}" for x in doc["loadavg"])
    host = doc["host"]
    return [
        report.table(
            f"checkers: {cfg['servers']} real servers x {cfg['kind'].upper()}, delay_loop "
            f"{cfg['delay_loop']:g} s, {cfg['seconds']:g} s each, UML guest on CPU {cfg['cpu']}",
            [
                "impl",
                "chk/s got/due",
                "opens/acc",
                "in IPVS",
                "CPU %",
                "guest %",
                "ms/1k chk",
                "RSS MB",
                *(f"gap+ {c}" for c in GAP_COLS),
                "down p50",
                "down max",
                "1st rnd s",
            ],
            rows,
            caption="checks: the guest's TCP ActiveOpens (acc: the real servers' accepts); "
            "CPU: schedstat of the daemon's process tree (UML's clock: 10 ms grain, "
            "sampled); guest: the guest CPU's busy share (100: saturated); gap+ (ms): gap between two probes of one real server minus "
            "delay_loop; down (ms): a real server stops listening -> out of IPVS "
            "(ipvsadm polled), at full load; run one after the other; host load "
            f"{load}; the guest had {host['host_cpu_pct']:.0f}% of a host CPU and waited "
            f"for one {host['host_wait_pct']:.0f}% of its {host['host_seconds']:.0f} s",
        )
    ]


def plot(doc: dict[str, Any], path: str) -> None:
    cfg = doc["config"]
    series = {i: doc["results"][i]["gap_excess_samples_ms"] for i in doc["impls"]}
    report.plot_tail(
        path,
        f"fastha bench checkers: {cfg['servers']} x {cfg['kind'].upper()}, "
        f"delay_loop {cfg['delay_loop']:g} s",
        series,
        "gap between probes of one real server - delay_loop (ms)",
        series,
        "gap - delay_loop (ms)",
    )


@click.command("checkers")
@click.option("--servers", default=1000, show_default=True, help="Real servers (N).")
@click.option("--kind", type=click.Choice(KINDS), default="tcp", show_default=True)
@click.option("--delay-loop", default=1.0, show_default=True, help="delay_loop in seconds.")
@click.option(
    "--seconds", default=30.0, show_default=True, help="Measured window per implementation."
)
@click.option(
    "--failures",
    default=5,
    show_default=True,
    help="Real servers taken down one at a time after the window (time to leave IPVS).",
)
@click.option(
    "--cpu",
    "pin",
    type=int,
    default=None,
    help="Host CPU the guest is pinned to (default: the last one).",
)
@report.bench_options(
    "Write a PNG: histogram and tail of the gap excess.",
    "Also run keepalived (default: when installed).",
)
def command(
    servers: int,
    kind: str,
    delay_loop: float,
    seconds: float,
    failures: int,
    pin: int | None,
    peer: str | None,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """CPU per 1,000 health checks, checks/s and RSS, N real servers, in a UML guest."""
    report.need_root("the UML guest programs IPVS")
    if not 1 <= servers <= 40000 or seconds <= 0 or delay_loop <= 0 or failures < 0:
        raise click.BadParameter(
            "need 1 <= --servers <= 40000, --seconds > 0, --delay-loop > 0, --failures >= 0"
        )
    cpus = sorted(os.sched_getaffinity(0))
    pin = cpus[-1] if pin is None else pin
    if pin not in cpus:
        raise click.BadParameter(f"--cpu {pin}: not one of {cpus}")
    peer = peer or default_peer()
    impls = impls_for(peer)
    cfg = {
        "servers": servers,
        "kind": kind,
        "delay_loop": delay_loop,
        "seconds": seconds,
        "peer": peer,
        "cpu": pin,
        "failures": failures,
    }
    click.echo(
        f"checkers: booting UML, {' then '.join(impls)}, ~{seconds:g} s each after warm-up",
        err=True,
    )
    results, host = run_guest(servers, kind, delay_loop, seconds, list(impls), pin, failures)
    doc = build_doc(cfg, results, host)
    report.emit(doc, as_json, plot_path, plot, tables)
