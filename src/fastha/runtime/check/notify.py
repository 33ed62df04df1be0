"""The checker's notifications: notify_up/down and quorum_up/down scripts as keepalived
runs them, and the RS / VS lines of notify_fifo and lvs_notify_fifo (keepalived's
ipwrapper.c notify_fifo_rs / notify_fifo_vs)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastha.check.desired import DesiredTable
from fastha.check.health import Notify
from fastha.config.model import GlobalDefs
from fastha.config.scripts import Resolved, enabled
from fastha.drivers.fifo import NotifyFifo, fifo_owner
from fastha.config.invocation import Script
from fastha.drivers.scripts import ScriptRunner
from fastha.runtime.check.state import Counters, Running

log = logging.getLogger("fastha.check")


class Notifications:
    def __init__(self, running: Running, counters: Counters, scripts: ScriptRunner) -> None:
        self.running = running
        self.counters = counters
        self.scripts = scripts
        # The scripts as keepalived runs them, resolved once per config.
        self._resolved: dict[tuple[str, str | None, str | None], Resolved | None] = {}
        self._resolved_for: Any = None  # the config _resolved was filled from
        # The FIFOs of the config the child started with (a reload keeps them).
        gd = getattr(running.config, "global_defs", None)
        fifos = (getattr(gd, "notify_fifo", None), getattr(gd, "lvs_notify_fifo", None))
        self.fifos = [
            NotifyFifo(f.name, owner=fifo_owner(f.username)) for f in fifos if f is not None
        ]

    def resolved(self, command: str, user: str | None, group: str | None) -> Resolved | None:
        """The script as keepalived runs it (None: disabled)."""
        config = self.running.config
        if self._resolved_for is not config:
            self._resolved.clear()
            self._resolved_for = config
        key = (command, user, group)
        if key not in self._resolved:
            gd = getattr(config, "global_defs", None)
            gdefs = gd if isinstance(gd, GlobalDefs) else GlobalDefs()
            self._resolved[key] = enabled(command, user, group, gdefs)
        return self._resolved[key]

    def notify(self, a: Notify, table: DesiredTable | None = None) -> asyncio.Task[Any] | None:
        """The FIFO line and the script of one health event; the script's task, if any.
        ``table``: the config the event's virtual server index refers to (a reload's
        down notifiers name the old one)."""
        vs = (table or self.running.table).vss[a.vs]
        state = "UP" if a.up else "DOWN"
        if self.fifos:
            if a.rs is not None:
                line = f"RS [{a.rs.address}]:{vs.fifo_proto}:{a.rs.port} {vs.fifo_name} {state}\n"
            else:
                line = f"VS {vs.fifo_name} {state}\n"
            for fifo in self.fifos:
                fifo.write_line(line.encode())
        if a.script is None:
            return None
        r = self.resolved(a.script.command, a.script.user, a.script.group)
        if r is None:
            return None
        name = f"{a.event} {vs.name}" + (f" {a.rs}" if a.rs else "")
        self.counters.notifies += 1
        log.info("Executing [%s] for %s", a.script.command, name)
        script = Script(r.argv, uid=r.uid, gid=r.gid, name=name)
        return self.scripts.spawn(script)
