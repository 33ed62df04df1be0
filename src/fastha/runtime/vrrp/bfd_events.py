"""track_bfd in the VRRP child: the BFD owner's Up/Down records, read from the pipe the
parent handed down (`drivers/bfd_channel`), moved into the trackers (vrrp_scheduler.c
vrrp_handle_bfd_event), and fastha's extension: a BACKUP whose
`fastha_bfd_master_down` session went Down takes it as Master_Down expiry."""

from __future__ import annotations

import logging

from fastha.bfd.events import BfdStateChange
from fastha.drivers import bfd_channel
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.tracking import Trackers
from fastha.vrrp.events import BfdMasterDown
from fastha.wire.timer import monotonic_ns

log = logging.getLogger("fastha.vrrp")


class BfdEvents:
    def __init__(self, ctx: Context, trackers: Trackers) -> None:
        self.ctx = ctx
        self.trackers = trackers
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
        now = monotonic_ns()
        if ev.sent_ns:
            log.debug(
                "Received BFD event: instance %s is in state %s (delivered in %d usec)",
                ev.name,
                "Up" if ev.up else "Down",
                (now - ev.sent_ns) // 1000,
            )
        if not ev.up:  # first: the takeover must not wait for the priority work
            for inst in list(self.ctx.instances.values()):
                if inst.spec.bfd_master_down == ev.name:
                    inst.feed(BfdMasterDown(ev.name), now)
        tracking = self.trackers.now
        tracker = tracking.bfds.get(ev.name)
        if tracker is None or not tracker.set(ev.up):
            return
        for inst in tracking.users.get(f"bfd:{ev.name}", ()):
            log.info(
                "VRRP_Instance(%s) Tracked BFD instance %s is %s",
                inst.name,
                ev.name,
                "UP" if ev.up else "DOWN",
            )
        self.trackers.changed(f"bfd:{ev.name}")
