"""The BFD child's side of the event pipes: a session's Up / Down to the VRRP and the
checker child, as keepalived 2.2.7's bfd_event.c bfd_event_send routes it (the
instance's `vrrp` / `checker` keywords; neither: both).

The parent hands the write ends down in the environment (drivers/bfd_channel); a
consumer the parent does not run has no pipe, and gets nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastha.bfd.events import BfdStateChange
from fastha.drivers import bfd_channel
from fastha.runtime.bfd.from_config import SessionSpec

log = logging.getLogger("fastha.bfd")


@dataclass(slots=True)
class EventRelay:
    vrrp_fd: int | None = None
    check_fd: int | None = None
    sent: int = 0
    failed: int = 0

    @classmethod
    def from_env(cls) -> EventRelay:
        return cls(
            bfd_channel.env_fd(bfd_channel.ENV_VRRP_WRITE),
            bfd_channel.env_fd(bfd_channel.ENV_CHECK_WRITE),
        )

    def send(self, spec: SessionSpec, ev: BfdStateChange) -> None:
        for fd, wanted, who in (
            (self.vrrp_fd, spec.to_vrrp, "vrrp"),
            (self.check_fd, spec.to_checker, "checker"),
        ):
            if fd is None or not wanted:
                continue
            if bfd_channel.send(fd, ev):
                self.sent += 1
            else:
                self.failed += 1
                # keepalived logs this under -D only (a consumer being restarted).
                log.debug("(%s) %s pipe write() error", spec.name, who)
