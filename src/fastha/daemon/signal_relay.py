"""The parent's signals: SIGHUP reloads, SIGTERM/SIGINT stop, and the data, stats and
JSON signals are relayed to the children that write those files.

keepalived's parent passes these on: SIGUSR1 (data file), SIGUSR2 (stats file), and the
JSON signal (SIGRTMIN+2); each child writes its own part. Which child gets which: a
real-time signal nobody handles would terminate the checker. keepalived's
SIGSTATS_CLEAR (SIGRTMAX-1) goes to the VRRP child like SIGUSR2; unhandled, a real-time
signal's default action would terminate the parent.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from fastha.drivers.signals import SIGJSON, SIGSTATS_CLEAR

FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, SIGJSON, SIGSTATS_CLEAR)
FORWARD_TO: dict[int, tuple[str, ...]] = {
    signal.SIGUSR1: ("vrrp", "check", "bfd"),  # keepalived_bfd.data
    signal.SIGUSR2: ("vrrp",),
    SIGJSON: ("vrrp",),
    SIGSTATS_CLEAR: ("vrrp",),
}
STOP = (signal.SIGTERM, signal.SIGINT)
HANDLED = (signal.SIGHUP, *STOP, *FORWARDED)


def install(
    loop: asyncio.AbstractEventLoop,
    *,
    reload: Callable[[], None],
    stop: Callable[[], None],
    relay: Callable[[int, tuple[str, ...]], object],
) -> None:
    """``relay(signum, kinds)`` sends ``signum`` to the children of those kinds."""
    loop.add_signal_handler(signal.SIGHUP, reload)
    for stop_sig in STOP:
        loop.add_signal_handler(stop_sig, stop)
    for signum in FORWARDED:
        loop.add_signal_handler(signum, relay, signum, FORWARD_TO[signum])


def remove(loop: asyncio.AbstractEventLoop) -> None:
    for signum in HANDLED:
        loop.remove_signal_handler(signum)
