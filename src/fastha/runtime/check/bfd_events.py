"""BFD_CHECK in the checker child: the BFD owner's Up/Down records, read from the pipe
the parent handed down (`drivers/bfd_channel`), fed to every BFD_CHECK on that
bfd_instance (keepalived check/check_bfd.c bfd_check_handle_event)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastha.bfd.events import BfdStateChange
from fastha.check.health import Outcome, fmt_rs
from fastha.check.spec import BfdSpec
from fastha.drivers import bfd_channel
from fastha.runtime.check.scheduler import Scheduler
from fastha.wire.timer import monotonic_ns

log = logging.getLogger("fastha.check")


class BfdChecks:
    def __init__(self, scheduler: Callable[[], Scheduler | None]) -> None:
        self._scheduler = scheduler  # the one running now (a reload may rebind it)
        self.reader: bfd_channel.EventReader | None = None

    def open(self) -> None:
        """Read the parent's pipe, if it handed one down (a config with bfd_instance)."""
        fd = bfd_channel.env_fd(bfd_channel.ENV_READ)
        if fd is not None and self.reader is None:
            self.reader = bfd_channel.EventReader(fd, self.on_event)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def on_event(self, ev: BfdStateChange) -> None:
        sched = self._scheduler()
        if sched is None:
            return
        if ev.sent_ns:
            log.debug(
                "Received BFD event: instance %s is in state %s (delivered in %d usec)",
                ev.name,
                "Up" if ev.up else "Down",
                (monotonic_ns() - ev.sent_ns) // 1000,
            )
        health = sched.health
        state = "UP" if ev.up else "DOWN"
        for cid, check in enumerate(health.checks):
            if not isinstance(check.probe, BfdSpec) or check.probe.name != ev.name:
                continue
            c = health.checkers[cid]
            # "the bfd's state may not be the checker's: alpha" (check_bfd.c)
            if ev.up == c.up and c.has_run:
                continue
            for vi, ri in health.users[cid]:
                v = health.vss[vi]
                log.info(
                    "BFD check of [%s] RS(%s) is %s",
                    ev.name,
                    fmt_rs(v.plan, v.servers[ri].key),
                    state,
                )
            sched.push(cid, Outcome(ev.up, f"BFD {ev.name} {state}"))
