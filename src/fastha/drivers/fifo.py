"""notify_fifo / vrrp_notify_fifo writer, in keepalived's line format
(keepalived/vrrp/vrrp_notify.c ``notify_fifo()``)::

    INSTANCE "VI_1" MASTER 100
    GROUP "G1" BACKUP 0                 (groups always report priority 0)
    INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100
    INSTANCE "VI_1" BACKUP_PRIORITY 90  (priority change events)

Writes never block the VRRP loop: the FIFO is opened O_WRONLY|O_NONBLOCK, which fails
with ENXIO while no reader has it open; then the line is dropped (counted) and the open
is retried on the next write, so the writer picks the reader up again when it comes
back. A full pipe (EAGAIN) drops the line; a reader gone mid-write (EPIPE, SIGPIPE is
ignored by Python) closes our end. Lines are under PIPE_BUF, so each write is atomic.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass

from fastha.drivers.files import UnsafePath, open_fifo

log = logging.getLogger(__name__)

STATES = frozenset(
    {
        "MASTER",
        "BACKUP",
        "FAULT",
        "STOP",
        "MASTER_RX_LOWER_PRI",
        "MASTER_PRIORITY",
        "BACKUP_PRIORITY",
    }
)


def fifo_line(kind: str, name: str, state: str, priority: int) -> bytes:
    """One notify line. ``kind`` is "INSTANCE" or "GROUP"."""
    if kind not in ("INSTANCE", "GROUP"):
        raise ValueError(f"notify fifo kind must be INSTANCE or GROUP, not {kind!r}")
    return f'{kind} "{name}" {state} {priority}\n'.encode()


@dataclass(slots=True)
class FifoStats:
    written: int = 0
    dropped_no_reader: int = 0
    dropped_full: int = 0
    errors: int = 0


def fifo_owner(username: str | None) -> int | None:
    """The uid `notify_fifo NAME USER` names: its FIFO may be that user's (else root's)."""
    import pwd

    if not username:
        return None
    try:
        return pwd.getpwnam(username).pw_uid
    except KeyError:
        return None


class NotifyFifo:
    def __init__(
        self, path: str, *, create: bool = False, hold_open: bool = False, owner: int | None = None
    ) -> None:
        self.path = path
        self.owners = frozenset({0, os.geteuid()} | ({owner} if owner is not None else set()))
        self.create = create  # keepalived creates it when it also runs the fifo script
        self.hold_open = hold_open
        self._fd = -1
        self.stats = FifoStats()

    def _open(self) -> bool:
        if self._fd >= 0:
            return True
        if self.create and not os.path.exists(self.path):
            os.mkfifo(self.path, 0o600)
        # A FIFO we created for our own notify_fifo_script is held open read-write, as
        # keepalived does: lines written before the script opens it wait in the pipe.
        mode = os.O_RDWR if self.hold_open else os.O_WRONLY
        # Never through a symlink (keepalived opens it O_NOFOLLOW too), only a FIFO (a
        # regular file would grow for ever), and only one root (or the FIFO's own user)
        # made: a FIFO squatted in /tmp by someone else gets nothing from us.
        try:
            fd = open_fifo(self.path, mode, self.owners)
        except UnsafePath as exc:
            self.stats.errors += 1
            log.warning("notify_fifo %s: refused: %s", self.path, exc)
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                self.stats.errors += 1
                log.warning("notify_fifo %s: cannot open: %s", self.path, exc.strerror)
            return False
        self._fd = fd
        log.info("notify_fifo %s: reader attached", self.path)
        return True

    def open(self) -> bool:
        """Open (creating it when ours) now rather than at the first line."""
        return self._open()

    def write_line(self, line: bytes) -> bool:
        """Write one line; ``False`` if it was dropped. Never blocks, never raises."""
        if not self._open():
            self.stats.dropped_no_reader += 1
            return False
        try:
            os.write(self._fd, line)
        except BlockingIOError:
            self.stats.dropped_full += 1
            return False
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                log.info("notify_fifo %s: reader went away", self.path)
                self.stats.dropped_no_reader += 1
            else:
                self.stats.errors += 1
                log.warning("notify_fifo %s: write failed: %s", self.path, exc.strerror)
            self.close()
            return False
        self.stats.written += 1
        return True

    def notify_instance(self, name: str, state: str, priority: int) -> bool:
        return self.write_line(fifo_line("INSTANCE", name, state, priority))

    def notify_group(self, name: str, state: str) -> bool:
        return self.write_line(fifo_line("GROUP", name, state, 0))

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
