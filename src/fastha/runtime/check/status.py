"""The checker child's answers to `status`, `dump` and `metrics` (shape:
fastha.daemon.metrics, status.schema.json) and its SIGUSR1 data file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fastha.drivers.ipvs import IPVSError
from fastha.runtime.child_status import timer_status
from fastha.runtime.dumpfiles import checker_data_text, write_text

if TYPE_CHECKING:
    from fastha.runtime.check.runner import CheckerRunner


def status_dict(runner: CheckerRunner) -> dict[str, Any]:
    """Every virtual server with its real servers' health, weight and last check result."""
    sched = runner.scheduler
    suspended = sched.suspended if sched is not None else set()
    vss: list[dict[str, Any]] = []
    for vh in runner.health.vss:
        p = vh.plan
        rss: list[dict[str, Any]] = []
        for r in vh.servers:
            checks = [check_status(runner, cid, cid in suspended) for cid in r.plan.checks]
            rss.append(
                {
                    "rs": f"[{r.key.address}]:{p.protocol}:{r.key.port}",
                    "address": str(r.key.address),
                    "port": r.key.port,
                    "alive": r.alive,
                    "weight": r.weight,
                    "configured_weight": r.plan.weight,
                    "inhibit_on_failure": r.plan.inhibit_on_failure,
                    "last_check": summary(checks),
                    "checks": checks,
                }
            )
        vss.append(
            {
                "vs": p.name,
                "protocol": p.protocol,
                "quorum": p.quorum,
                "hysteresis": p.hysteresis,
                "quorum_up": vh.quorum_up,
                "sorry_server_active": vh.sorry_active,
                "alive_weight": vh.weight_sum(),
                "real_servers": rss,
            }
        )
    timer = getattr(sched, "_timer", None) if sched is not None else None
    c = runner.counters
    return {
        "pid": os.getpid(),
        "started_at": runner.started_at,
        "virtual_servers": vss,
        "counters": {
            "reconciles": c.reconciles,
            "ipvs_ops": c.ops,
            "failed_ipvs_ops": c.failed_ops,
            "notifies": c.notifies,
            "reloads": c.reloads,
            "reload_failures": c.reload_failures,
            "last_reload_ops": c.last_reload_ops,
            "probes_started": sched.started if sched else 0,
            "probes_completed": sched.completed if sched else 0,
            "probes_failed": sched.failed if sched else 0,
        },
        "smtp": {"sent": runner.alerts.sent, "failed": runner.alerts.failed},
        "timer": timer_status(timer) if timer is not None else None,
    }


async def metrics_dict(runner: CheckerRunner) -> dict[str, Any]:
    """`status` plus what only metrics use: probe durations and the kernel's IPVS
    counters per virtual and real server (one netlink dump per service)."""
    out = status_dict(runner)
    sched = runner.scheduler
    out["probe_durations"] = sched.durations.as_dict() if sched is not None else []
    ipvs: list[dict[str, Any]] = []
    kernel = runner.reconciler.ipvs
    if kernel is not None:
        try:
            for svc, stats, dests in await kernel.stats():
                rss = [{"rs": f"[{d.addr}]:{d.port}", "stats": ds} for d, ds in dests]
                ipvs.append({"vs": ipvs_vs_name(svc), "stats": stats, "real_servers": rss})
        except (OSError, IPVSError) as exc:
            out["ipvs_error"] = str(exc)
    out["ipvs"] = ipvs
    return out


def check_status(runner: CheckerRunner, cid: int, suspended: bool) -> dict[str, Any]:
    c = runner.health.checkers[cid]
    return {
        "check": runner.plan.checks[cid].describe(),
        "state": c.state.name,
        "retry": c.retry_it,
        "successes": c.successes,
        "failures": c.failures,
        "suspended": suspended,
    }


def summary(checks: list[dict[str, Any]]) -> str:
    """One word for a real server's checks: the worst of them."""
    if not checks:
        return "no checker"
    states = {c["state"] for c in checks}
    if "DOWN" in states:
        return "failed"
    if any(c["retry"] for c in checks):
        return "failing (retrying)"
    if states <= {"UP"}:
        return "ok"
    return "pending"


def ipvs_vs_name(svc: Any) -> str:
    """A kernel service as keepalived's exporters label it: `[ADDR]:PROTO:PORT`, or
    `FWM N` for a firewall-mark service."""
    if svc.fwmark:
        return f"FWM {svc.fwmark}"
    proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(svc.protocol, str(svc.protocol))
    return f"[{svc.addr}]:{proto}:{svc.port}"


def write_data(runner: CheckerRunner) -> None:
    """keepalived's SIGUSR1 in the checker: its part of the data (virtual servers)."""
    write_text(runner.options.data_file, checker_data_text(runner.config, status_dict(runner)))
