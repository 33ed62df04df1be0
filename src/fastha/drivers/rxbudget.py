"""A receive budget for the loop's flood-exposed readers (VRRP sockets, ARP/ND watches).

Under ``vrrp_rt_priority`` (SCHED_RR) the kernel SIGKILLs a task that runs
RLIMIT_RTTIME of CPU (keepalived's default, and ours: 10 ms) without blocking in a
syscall; only a real sleep (a wake-up) restarts the count. A flood keeps a raw socket
readable all the time, so epoll_wait returns at once, the loop never sleeps, and however
small each drain is the child dies within a second: keepalived 2.2.7's does ("has
rlimit_rttime been exceeded?"), and ours did.

So receive work is metered: at most ``budget_ns`` of it per ``window_ns`` (3/4 of a
window of a third of RLIMIT_RTTIME, at most 4 ms: 2.5 of every 3.3 ms for keepalived's
default 10 ms). Once a window's budget is spent, every registered reader is taken off
the loop until the window is over (at least a millisecond: uvloop's timers have that
resolution), and the loop then blocks in epoll_wait: the advert timer's timerfd, netlink and the rest stay registered,
so adverts leave on time, and the task sleeps, which resets the kernel's count. What
arrives meanwhile waits in the socket's receive buffer; past SO_RCVBUF the kernel drops
it (the flood's excess, at no cost to us).

Why not in the kernel alone: classic BPF sees one packet and keeps no state, so it can
rate-limit nothing; the VRID filter (drivers/vrrp_socket) already drops what is not
ours, and an nft/iptables limit is the host's firewall, not the daemon's to install.
Without real-time scheduling no budget applies (``budget_ns`` 0): the fair
scheduler shares the CPU, and reading faster only helps a flooded backup hear its
master.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A window well inside RLIMIT_RTTIME: the kernel counts it in scheduler ticks (4 ms at
# HZ=250), so a busy stretch of w may be charged as w + one tick.
WINDOW_NS = 4_000_000
SHARE = 0.75  # of each window, receive work; the rest the loop sleeps (or does other work)
MIN_PAUSE_NS = 1_000_000  # uvloop's timer resolution: shorter would not block at all
LOG_EVERY_NS = 10_000_000_000

_monotonic_ns = time.monotonic_ns


class RxBudget:
    """Meters receive work on one loop; pauses every reader it registered when a
    window's budget is spent.

    Readers call :meth:`charge` after each drain with the drain's start time; True means
    the readers are paused (stop draining now).
    """

    __slots__ = (
        "_logged",
        "_loop",
        "_paused",
        "_readers",
        "_start",
        "_used",
        "budget_ns",
        "pauses",
        "window_ns",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_ns: int = 0, window_ns: int = 0):
        """``budget_ns`` 0: no budget (readers are never paused)."""
        self._loop = loop
        self._readers: dict[int, Callable[[], None]] = {}
        self._paused: asyncio.TimerHandle | None = None
        self._start = 0
        self._used = 0
        self.budget_ns = budget_ns
        self.window_ns = window_ns or WINDOW_NS
        self.pauses = 0  # how many times the budget ran out (a flood)
        self._logged = (0, 0)  # (when, pauses) at the last warning

    def set_rttime(self, rlimit_rttime_us: int | None) -> None:
        """Meter for this RLIMIT_RTTIME: a window of at most a third of it, so a busy
        window plus a tick of accounting stays under the limit."""
        window = WINDOW_NS
        if rlimit_rttime_us:
            window = max(MIN_PAUSE_NS, min(WINDOW_NS, rlimit_rttime_us * 1000 // 3))
        self.window_ns = window
        self.budget_ns = int(window * SHARE)
        self._start = self._used = 0

    def disable(self) -> None:
        self.budget_ns = 0
        self._resume()

    @property
    def paused(self) -> bool:
        return self._paused is not None

    # -- readers ------------------------------------------------------------------------

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self._readers[fd] = callback
        if self._paused is None:
            self._loop.add_reader(fd, callback)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is None or self._paused is not None:
            return
        if not self._loop.is_closed():
            self._loop.remove_reader(fd)

    # -- metering -----------------------------------------------------------------------

    def charge(self, start_ns: int) -> bool:
        """Count the receive work since ``start_ns``; True when the readers were paused
        (the window's budget is spent)."""
        if not self.budget_ns:
            return False
        now = _monotonic_ns()
        if now - self._start >= self.window_ns:
            self._start, self._used = start_ns, 0
        self._used += now - start_ns
        if self._used < self.budget_ns:
            return False
        self._pause(now)
        return True

    def _pause(self, now: int) -> None:
        if self._paused is not None:
            return
        self.pauses += 1
        when, seen = self._logged
        if now - when >= LOG_EVERY_NS:
            # One line per LOG_EVERY_NS however long the flood lasts.
            if not when:
                log.warning(
                    "receive budget spent (a flood?): the VRRP/ARP readers pause for the "
                    "rest of each %.1f ms window, so the loop sleeps (RLIMIT_RTTIME)",
                    self.window_ns / 1e6,
                )
            else:
                log.warning(
                    "receive budget spent %d times in the last %.0f s (a flood?)",
                    self.pauses - seen,
                    (now - when) / 1e9,
                )
            self._logged = (now, self.pauses)
        for fd in self._readers:
            self._loop.remove_reader(fd)
        rest = max(self._start + self.window_ns - now, MIN_PAUSE_NS)
        # Whole milliseconds, rounded up: uvloop rounds a timer's delay to the nearest
        # millisecond, and a delay rounded to 0 would not block.
        delay_ms = -(-rest // 1_000_000)
        self._paused = self._loop.call_later(delay_ms / 1000, self._resume)

    def _resume(self) -> None:
        handle, self._paused = self._paused, None
        if handle is None:
            return
        handle.cancel()
        self._start, self._used = _monotonic_ns(), 0
        for fd, callback in self._readers.items():
            self._loop.add_reader(fd, callback)

    def close(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        self._readers.clear()


def add_reader(
    budget: RxBudget | None,
    loop: asyncio.AbstractEventLoop,
    fd: int,
    callback: Callable[[], None],
) -> None:
    """Read ``fd`` on the loop, metered by ``budget`` when there is one."""
    if budget is not None:
        budget.add_reader(fd, callback)
    else:
        loop.add_reader(fd, callback)


def close_reader(
    budget: RxBudget | None, loop: asyncio.AbstractEventLoop | None, sock: socket.socket
) -> None:
    """Stop reading ``sock`` (registered by :func:`add_reader`; a closed loop reads
    nothing already) and close it."""
    if budget is not None:
        budget.remove_reader(sock.fileno())
    elif loop is not None and not loop.is_closed():
        loop.remove_reader(sock.fileno())
    sock.close()
