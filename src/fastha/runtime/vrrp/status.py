"""The VRRP child's answers on its status socket (`status`, `dump`, `metrics`);
fastha.daemon.metrics documents the shape."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from fastha.runtime.alerts import VrrpAlerts
from fastha.runtime.vrrp.context import Context
from fastha.vrrp.states import State

if TYPE_CHECKING:
    from fastha.runtime.vrrp.instance import Instance


class StatusOutput:
    def __init__(
        self,
        ctx: Context,
        alerts: VrrpAlerts,
        script_runs: dict[str, dict[str, int]],
        started_at: float,
    ) -> None:
        self.ctx = ctx
        self.alerts = alerts
        self.script_runs = script_runs
        self.started_at = started_at
        # Wall-clock time of each instance's last transition.
        self.transitions: dict[str, float] = {}

    def transition(self, inst: Instance) -> None:
        self.transitions[inst.name] = time.time()

    def instances(self) -> list[dict[str, object]]:
        """keepalived's JSON signal output: one entry per instance."""
        return [inst.status() for inst in self.ctx.instances.values()]

    def status_dict(self, _request: object = None) -> dict[str, object]:
        """The VRRP child's `status` answer: keepalived's JSON entry per instance plus
        master, wantstate, last transition."""
        from fastha.runtime.child_status import timer_status

        instances: list[dict[str, object]] = []
        groups: list[dict[str, object]] = []
        for inst in self.ctx.instances.values():
            entry = inst.status()
            m = inst.machine
            entry["wantstate"] = m.wantstate.name
            entry["master_address"] = (
                m.master_address if m.state == State.MASTER or m.master_priority else None
            )
            entry["master_priority"] = m.master_priority
            entry["last_transition"] = self.transitions.get(inst.name)
            entry["sync_group"] = inst.group.name if inst.group is not None else None
            instances.append(entry)
        for name, g in self.ctx.groups.items():
            groups.append({"name": name, "state": g.state.name, "members": list(g.members)})
        timer = timer_status(self.ctx.timer)
        out: dict[str, object] = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "instances": instances,
            "sync_groups": groups,
            "timer": timer,
            "smtp": {"sent": self.alerts.sent, "failed": self.alerts.failed},
        }
        rtnl = self.ctx.rtnl
        if rtnl is not None:  # a new master's prebuilt address requests (drivers/rtnl_raw)
            out["netlink"] = {
                "address_requests": rtnl.sent,
                "address_refused": rtnl.refused,
                "address_send_errors": rtnl.send_errors,
                "address_acks_lost": rtnl.lost,
            }
        return out

    def metrics_dict(self, _request: object = None) -> dict[str, object]:
        """`status` plus what only metrics use: vrrp_script runs by result."""
        return {**self.status_dict(), "script_runs": self.script_runs}
