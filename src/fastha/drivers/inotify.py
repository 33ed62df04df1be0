"""inotify on directories: a track file's change is seen when it is written, as keepalived
sees it (trackers/track_file.c watches each file's directory for IN_CLOSE_WRITE |
IN_DELETE | IN_MOVE), not at the next poll.

`DirWatch.wait(timeout)` returns when anything changed in a watched directory or after
`timeout` seconds, whichever is first; the caller re-reads its files either way (the
poll stays the fallback: a directory that cannot be watched is still read).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE

_libc = ctypes.CDLL(None, use_errno=True)


class DirWatch:
    """One inotify descriptor watching directories, readable through the event loop."""

    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self.dirs: set[str] = set()
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, directory: str) -> bool:
        if directory in self.dirs:
            return True
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            log.warning("inotify_add_watch(%s) failed - %s", directory, os.strerror(err))
            return False
        self.dirs.add(directory)
        return True

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when something changed in a watched directory, False on the timeout."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            self._loop.add_reader(self.fd, self._readable)
        assert self._event is not None
        changed = False
        with contextlib.suppress(TimeoutError):
            changed = await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        return changed

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
