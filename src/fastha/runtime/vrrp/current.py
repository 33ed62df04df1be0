"""The configuration in force in the VRRP child: what a reload swaps, read by the parts
that follow it."""

from __future__ import annotations

from dataclasses import dataclass

from fastha.config.model import Config
from fastha.drivers.fifo import NotifyFifo, fifo_owner
from fastha.drivers.fifo_reload import reopen_notify_fifo
from fastha.drivers.scripts import ScriptRunner
from fastha.runtime.vrrp.from_config import VrrpSpec


@dataclass(slots=True)
class Current:
    config: Config
    spec: VrrpSpec

    def notify_fifo(self, old: NotifyFifo | None, scripts: ScriptRunner) -> NotifyFifo | None:
        """The VRRP child's notify FIFO for this configuration (``old`` closed), its
        notify_fifo_script started: at start and again at every reload, as keepalived."""
        g = self.config.global_defs
        conf = g.vrrp_notify_fifo or g.notify_fifo
        owner = fifo_owner(conf.username if conf is not None else None)
        spec = self.spec
        return reopen_notify_fifo(old, spec.notify_fifo, spec.notify_fifo_script, owner, scripts)
