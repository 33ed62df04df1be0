"""The VRRP child's notify FIFO across a reload, as keepalived 2.2.7 does it: the FIFO
is closed ("we don't know if it will be the same after a reload", vrrp_daemon.c
reload_vrrp_thread) and opened again from the new configuration, and its
notify_fifo_script is run anew (lib/notify.c fifo_open)."""

from __future__ import annotations

from fastha.config.invocation import Script
from fastha.drivers.fifo import NotifyFifo
from fastha.drivers.scripts import ScriptRunner


def reopen_notify_fifo(
    old: NotifyFifo | None,
    path: str | None,
    script: Script | None,
    owner: int | None,
    scripts: ScriptRunner,
) -> NotifyFifo | None:
    """Close ``old``; the FIFO of the new configuration (None without one), created and
    held open with its script started when it has a notify_fifo_script."""
    if old is not None:
        old.close()
    if not path:
        return None
    ours = script is not None
    fifo = NotifyFifo(path, create=ours, hold_open=ours, owner=owner)
    if script is not None:
        fifo.open()  # create it and hold it open before its reader starts
        scripts.spawn(script)
    return fifo
