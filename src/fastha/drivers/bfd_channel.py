"""The pipe from the BFD session owner to the VRRP and checker children.

keepalived's BFD process writes one fixed-size `bfd_event_t` per state change down a
pipe to each consumer child; fastha does the same with `BfdStateChange`. The parent
creates the pipes (so a respawned child finds its end again) and passes the ends
down by number in the environment (`ENV_*` below). One record is far below PIPE_BUF,
so a write is atomic and records never interleave.

Record: `!HBBQ` (name length, up, diag, sent_ns) then the UTF-8 name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Callable, Iterator

from fastha.bfd.events import BfdStateChange

log = logging.getLogger("fastha.bfd")

ENV_VRRP_WRITE = "FASTHA_BFD_VRRP_FD"  # the BFD owner's write end towards the VRRP child
ENV_CHECK_WRITE = "FASTHA_BFD_CHECK_FD"  # ... towards the checker child
ENV_READ = "FASTHA_BFD_EVENTS_FD"  # a consumer child's read end

_HEAD = struct.Struct("!HBBQ")
_NAME_MAX = 255  # far above keepalived's BFD_INAME_MAX (32); keeps a record < PIPE_BUF


def encode(ev: BfdStateChange) -> bytes:
    name = ev.name.encode()[:_NAME_MAX]
    return _HEAD.pack(len(name), int(ev.up), ev.diag & 0xFF, ev.sent_ns) + name


def decode(buf: bytes) -> Iterator[BfdStateChange]:
    """Every whole record in `buf` (a pipe read returns whole records: writes are atomic)."""
    off = 0
    while off + _HEAD.size <= len(buf):
        n, up, diag, sent_ns = _HEAD.unpack_from(buf, off)
        off += _HEAD.size
        name = buf[off : off + n].decode(errors="replace")
        off += n
        yield BfdStateChange(name, bool(up), sent_ns, diag)


def send(fd: int, ev: BfdStateChange) -> bool:
    """Write one record; False when the consumer is gone or its pipe is full (a child
    being restarted: it reads the current states again when it starts)."""
    try:
        os.write(fd, encode(ev))
    except (BlockingIOError, BrokenPipeError):
        return False
    return True


def env_fd(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


class EventReader:
    """Calls `on_event` for each record arriving on `fd` (non-blocking, on the loop)."""

    def __init__(self, fd: int, on_event: Callable[[BfdStateChange], None]) -> None:
        self.fd = fd
        self._on_event = on_event
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not buf:  # the writer closed: nothing more will come
            self.close()
            return
        for ev in decode(buf):
            if ev.sent_ns and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "Received BFD event: instance %s is in state %s (delivered in %d usec)",
                    ev.name,
                    "Up" if ev.up else "Down",
                    (time.monotonic_ns() - ev.sent_ns) // 1000,  # CLOCK_MONOTONIC, as sent_ns
                )
            self._on_event(ev)

    def close(self) -> None:
        self._loop.remove_reader(self.fd)


class Consumer:
    """A consumer child's end: read the pipe the parent handed down, if it did (a
    configuration with a bfd_instance and no -B)."""

    def __init__(self, on_event: Callable[[BfdStateChange], None]) -> None:
        self._on_event = on_event
        self.reader: EventReader | None = None

    def open(self) -> None:
        fd = env_fd(ENV_READ)
        if fd is not None and self.reader is None:
            self.reader = EventReader(fd, self._on_event)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
