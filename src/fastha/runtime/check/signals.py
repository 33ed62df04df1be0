"""The checker child's signals: SIGTERM/SIGINT stop it, SIGHUP reloads, SIGUSR1 writes
its data file; keepalived's stats and JSON signals are the VRRP child's, and here they
must not terminate the process (a real-time signal's default action)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from fastha.drivers.signals import SIGJSON

log = logging.getLogger("fastha.check")

IGNORED = (signal.SIGUSR2, SIGJSON)
STOP = (signal.SIGTERM, signal.SIGINT)
HANDLED = (*STOP, signal.SIGHUP, signal.SIGUSR1, *IGNORED)


def install(
    loop: asyncio.AbstractEventLoop,
    *,
    stop: Callable[[], object],
    reload: Callable[[], None],
    write_data: Callable[[], None],
) -> None:
    for stop_sig in STOP:
        loop.add_signal_handler(stop_sig, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, write_data)
    for sig in IGNORED:
        loop.add_signal_handler(sig, log.debug, "Signal %s ignored by the checker", sig)


def remove(loop: asyncio.AbstractEventLoop) -> None:
    for sig in HANDLED:
        loop.remove_signal_handler(sig)
