"""Notify scripts and FIFO lines for instances and sync groups, as keepalived runs them
(a state's own script, then the generic `notify` with GROUP|INSTANCE name state priority)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from fastha.config.invocation import Script
from fastha.vrrp.actions import GroupNotify, Notify
from fastha.vrrp.states import State

if TYPE_CHECKING:
    from fastha.runtime.vrrp.context import Context

log = logging.getLogger("fastha.vrrp")

STATE_NAMES = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT"}


class Notifier:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def instance(self, name: str, scripts: dict[str, Script], action: Notify) -> None:
        state = action.kind.value
        self._run(scripts, state, "INSTANCE", name, action.priority)
        # keepalived writes MASTER_RX_LOWER_PRI to the FIFOs too (send_event_notify).
        if self.ctx.fifo is not None:
            self.ctx.fifo.notify_instance(name, state, action.priority)

    def group(self, action: GroupNotify) -> None:
        state = STATE_NAMES.get(action.state, action.state.name)
        log.info("VRRP_Group(%s) Syncing instances to %s state", action.group, state)
        scripts = self.ctx.group_notify.get(action.group, {})
        self._run(scripts, state, "GROUP", action.group, 0)
        if self.ctx.fifo is not None:
            self.ctx.fifo.notify_group(action.group, state)

    def group_stop(self, group: str) -> None:
        """keepalived's notify_shutdown for a sync group: its notify_stop, its generic
        notify (GROUP name STOP 0) and the FIFO line."""
        self._run(self.ctx.group_notify.get(group, {}), "STOP", "GROUP", group, 0)
        if self.ctx.fifo is not None:
            self.ctx.fifo.notify_group(group, "STOP")

    def _run(
        self, scripts: dict[str, Script], state: str, kind: str, name: str, priority: int
    ) -> None:
        specific = scripts.get(state)
        if specific is not None:
            self.ctx.scripts.spawn(specific, _log_script_result)
        generic = scripts.get("")
        if generic is not None and state in ("MASTER", "BACKUP", "FAULT", "STOP"):
            # keepalived's generic notify: $1 GROUP|INSTANCE, $2 name, $3 state, $4 priority.
            argv = (*generic.argv, kind, name, state, str(priority))
            self.ctx.scripts.spawn(dataclasses.replace(generic, argv=argv), _log_script_result)


def _log_script_result(script: Script, result: Any) -> None:
    if result.timed_out:
        log.warning("Script %s timed out and was killed", script.name)
    elif result.error:
        log.warning("Script %s could not run: %s", script.name, result.error)
    elif result.returncode != 0:
        log.info("Script %s exited with status %d", script.name, result.returncode)
