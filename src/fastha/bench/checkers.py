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

Not measured yet (issue 19): lateness against each daemon's own schedule, the time for
a failing real server to leave the IPVS table, and the saturation rate of one core.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from fastha.bench import report
from fastha.bench.failover import default_peer, impls_for

KINDS = ("tcp", "http", "ssl")
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


def run_guest(
    servers: int, kind: str, delay_loop: float, seconds: float, impls: list[str], cpu: int
) -> dict[str, Any]:
    uml = uml_module()
    args = (
        f"--servers {servers} --kind {kind} --delay-loop {delay_loop:g} "
        f"--seconds {seconds:g} --impls {','.join(impls)}"
    )
    python = shlex.quote(str(ROOT / ".venv" / "bin" / "python"))
    timeout = 300 + len(impls) * (seconds + 4 * delay_loop + 120 + servers / 20)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})  # the guest's processes inherit it
    try:
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
    return doc


def build_doc(cfg: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    impls = list(results)
    doc = report.new_doc("checkers", cfg, impls, results, loadavg=list(os.getloadavg()))
    if len(impls) == 2:
        x, y = results[impls[0]], results[impls[1]]
        doc["ratios"] = {
            "of": f"{impls[0]}/{impls[1]}",
            **{
                k: report.ratio(x[k], y[k])
                for k in ("cpu_ms_per_1000_checks", "checks_per_s", "cpu_pct", "rss_kib")
            },
            "gap_excess_ms": report.ratios(x["gap_excess_ms"], y["gap_excess_ms"]),
        }
    return doc


def tables(doc: dict[str, Any]) -> list[Any]:
    cfg = doc["config"]
    rows = []
    for impl in doc["impls"]:
        r = doc["results"][impl]
        gap = r["gap_excess_ms"]
        rows.append(
            [
                impl,
                f"{r['checks_per_s']:.0f}/{r['checks_due_per_s']:.0f}",
                f"{r['checks']}/{r['accepts']}",
                f"{r['cpu_pct']:.1f}",
                report.fmt(r["cpu_ms_per_1000_checks"], 2),
                f"{r['rss_kib'] / 1024:.1f}",
                *(report.fmt(gap[c], 2) for c in report.COLS),
                f"{r['first_round_s']:.1f}",
            ]
        )
    if doc["ratios"]:
        rt = doc["ratios"]
        rows.append(
            [
                f"ratio {rt['of']}",
                report.fmt(rt["checks_per_s"], 2),
                "",
                report.fmt(rt["cpu_pct"], 2),
                report.fmt(rt["cpu_ms_per_1000_checks"], 2),
                report.fmt(rt["rss_kib"], 2),
                *(report.fmt(rt["gap_excess_ms"][c], 2) for c in report.COLS),
                "",
            ]
        )
    load = ", ".join(f"{x:.2f}" for x in doc["loadavg"])
    return [
        report.table(
            f"checkers: {cfg['servers']} real servers x {cfg['kind'].upper()}, delay_loop "
            f"{cfg['delay_loop']:g} s, {cfg['seconds']:g} s each, UML guest on CPU {cfg['cpu']}",
            [
                "impl",
                "chk/s got/due",
                "opens/acc",
                "CPU %",
                "ms/1k chk",
                "RSS MB",
                *(f"gap+ {c}" for c in report.COLS),
                "1st rnd s",
            ],
            rows,
            caption="checks: the guest's TCP ActiveOpens (acc: the real servers' accepts); "
            "CPU: schedstat of the daemon's process tree (UML's clock: 10 ms grain, "
            "sampled); gap+ (ms): gap between two probes of one real server minus "
            f"delay_loop; run one after the other; host load {load}",
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
    pin: int | None,
    peer: str | None,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """CPU per 1,000 health checks, checks/s and RSS, N real servers, in a UML guest."""
    if os.geteuid() != 0:
        raise click.ClickException("needs root (the UML guest programs IPVS)")
    if servers < 1 or servers > 40000 or seconds <= 0 or delay_loop <= 0:
        raise click.BadParameter("need 1 <= --servers <= 40000, --seconds > 0, --delay-loop > 0")
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
    }
    click.echo(
        f"checkers: booting UML, {' then '.join(impls)}, ~{seconds:g} s each after warm-up",
        err=True,
    )
    results = run_guest(servers, kind, delay_loop, seconds, list(impls), pin)
    doc = build_doc(cfg, results)
    if plot_path:
        plot(doc, plot_path)
        doc["plot"] = str(plot_path)
    if as_json:
        click.echo(report.dumps(doc))
    else:
        report.print_tables(*tables(doc))
