"""Which processes run: /proc, kept current by the kernel's process events.

keepalived's vrrp_track_process reads /proc once, then follows the proc connector
(NETLINK_CONNECTOR, CN_IDX_PROC): fork, exec, comm and exit events, so a tracked
process that dies moves the priority at once, without polling. We do the same.

The connector only answers in the initial network namespace. A VRRP child started
under `ip netns exec` opens it from a thread that joins that namespace
(/proc/1/ns/net) when it may; where it may not (a container hiding PID 1's namespace,
no CAP_NET_ADMIN), it scans /proc every `poll_s` instead, a few processes per loop turn
so the adverts' timer never waits behind the scan, and says so in the log.

Counts are per vrrp_track_process name, fed to its proctrack.ProcessTracker with their
cause (a fork, an exit, anything else); its fork/terminate delays run on the loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from fastha.drivers import netns, nlsocket
from fastha.vrrp.proctrack import Cause, ProcessMatch, ProcessTracker

log = logging.getLogger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = nlsocket.NLMSG_DONE
NLMSG_HDR = nlsocket.NLMSG_HDR
CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
PIDS2 = struct.Struct("=ii")
PIDS4 = struct.Struct("=iiii")
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000
_DATA = NLMSG_HDR.size + CN_MSG.size + EVENT_HEAD.size  # event_data's offset
_SCAN_CHUNK = 32  # processes read per loop turn while polling


def parse_events(buf: bytes) -> list[tuple[int, tuple[int, ...], bytes]]:
    """(what, pids, comm) for each process event in one datagram: fork (parent_tgid,
    child_pid, child_tgid), exec (pid, tgid), comm (pid, tgid) + the new name, exit
    (pid, tgid). Short or foreign messages are skipped."""
    out: list[tuple[int, tuple[int, ...], bytes]] = []
    for off, length, *_ in nlsocket.messages(buf)[0]:
        msg = buf[off : off + length]
        if len(msg) < _DATA + PIDS2.size:
            continue
        idx, val = CN_MSG.unpack_from(msg, NLMSG_HDR.size)[:2]
        if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
            continue
        what = EVENT_HEAD.unpack_from(msg, NLMSG_HDR.size + CN_MSG.size)[0]
        if what == PROC_EVENT_FORK and len(msg) >= _DATA + PIDS4.size:
            _, ptgid, cpid, ctgid = PIDS4.unpack_from(msg, _DATA)
            out.append((what, (ptgid, cpid, ctgid), b""))
        elif what in (PROC_EVENT_EXEC, PROC_EVENT_EXIT):
            out.append((what, PIDS2.unpack_from(msg, _DATA), b""))
        elif what == PROC_EVENT_COMM and len(msg) >= _DATA + PIDS2.size + 16:
            comm = msg[_DATA + PIDS2.size : _DATA + PIDS2.size + 16].split(b"\0", 1)[0]
            out.append((what, PIDS2.unpack_from(msg, _DATA), comm))
    return out


def listen_request() -> bytes:
    body = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack(
        "=I", PROC_CN_MCAST_LISTEN
    )
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), NLMSG_DONE, 0, 0, 0) + body


def _connector() -> socket.socket:
    s = nlsocket.open_socket(NETLINK_CONNECTOR, CN_IDX_PROC, rcvbuf=1 << 20, dgram=True)
    try:
        s.send(listen_request())
    except OSError:
        s.close()
        raise
    return s


def open_connector() -> socket.socket:
    """The proc connector, here or (from a short-lived thread) in the initial
    network namespace; OSError when neither will have us."""
    try:
        return _connector()
    except OSError as e:
        if e.errno != errno.ECONNREFUSED:  # refused: we sit in another namespace
            raise
    box: list[socket.socket | OSError] = []

    def in_init_ns() -> None:
        try:
            netns.setns("/proc/1/ns/net")  # this thread only; it ends here
            box.append(_connector())
        except OSError as e:
            box.append(e)

    t = threading.Thread(target=in_init_ns, name="proc-connector")
    t.start()
    t.join()
    if isinstance(box[0], OSError):
        raise box[0]
    return box[0]


def read_comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(512)
    except OSError:
        return None
    left, right = stat.find(b"("), stat.rfind(b")")
    if left < 0 or right < left or stat[right + 2 : right + 3] == b"Z":
        return None  # gone, or a zombie (keepalived does not count those)
    return os.fsdecode(stat[left + 1 : right])


def read_argv(pid: int) -> tuple[str, ...] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(1 << 16)
    except OSError:
        return None
    return tuple(os.fsdecode(a) for a in raw.split(b"\0")[:-1]) if raw else ()


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


class ProcWatch:
    """Keeps each vrrp_track_process's tracker fed: counts of matching processes,
    and the fork/terminate delays on the loop's clock. `on_change(name)` is called
    when a tracker's status flips after start."""

    def __init__(
        self,
        tracked: dict[str, tuple[ProcessMatch, ProcessTracker]],
        on_change: Callable[[str], None],
        poll_s: float = 1.0,
    ) -> None:
        self.tracked = tracked
        self.matches = tuple(m for m, _ in tracked.values())
        self.on_change = on_change
        self.poll_s = poll_s
        self._cmdline = any(m.full_command for m in self.matches)
        self.pids: dict[int, frozenset[str]] = {}  # matching pids -> names they match
        self.counts: Counter[str] = Counter()
        self.mode = "closed"  # "events", "polling"
        self._reader: nlsocket.Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._starting = False

    def _count(self, name: str, count: int, cause: Cause) -> None:
        if self._starting:
            return  # start() sets every tracker from the whole scan
        tracker = self.tracked[name][1]
        if tracker.set_count(count, cause, time.monotonic_ns()):
            self._changed(tracker)
        self._arm(tracker)

    def _changed(self, tracker: ProcessTracker) -> None:
        log.info(
            "VRRP_Track_Process(%s) %s (%d running)",
            tracker.name,
            "has quorum" if tracker.ok else "lost quorum",
            tracker.count,
        )
        self.on_change(tracker.name)

    def _arm(self, tracker: ProcessTracker) -> None:
        handle = self._timers.pop(tracker.name, None)
        if handle is not None:
            handle.cancel()
        if tracker.deadline_ns is not None and self._loop is not None:
            delay = max(0, tracker.deadline_ns - time.monotonic_ns()) / 1e9
            self._timers[tracker.name] = self._loop.call_later(delay, self._expire, tracker)

    def _expire(self, tracker: ProcessTracker) -> None:
        self._timers.pop(tracker.name, None)
        if tracker.expire(time.monotonic_ns()):
            self._changed(tracker)
        self._arm(tracker)  # woken a little early: wait for the rest

    # -- matching -----------------------------------------------------------------------

    def _names(self, pid: int, comm: str | None = None) -> frozenset[str] | None:
        """The names `pid` matches now (None: it is gone)."""
        comm = comm if comm is not None else read_comm(pid)
        if comm is None:
            return None
        argv = read_argv(pid) if self._cmdline else None
        return frozenset(m.name for m in self.matches if m.matches(comm, argv))

    def _set(self, pid: int, names: frozenset[str] | None, cause: Cause) -> None:
        old = self.pids.pop(pid, frozenset())
        if names:
            self.pids[pid] = names
        new = names or frozenset()
        for name in old - new:
            self.counts[name] -= 1
            self._count(name, self.counts[name], cause)
        for name in new - old:
            self.counts[name] += 1
            self._count(name, self.counts[name], cause)

    def scan(self) -> None:
        """Read every process once (start-up, and after lost events)."""
        seen: dict[int, frozenset[str]] = {}
        for pid in _pids():
            names = self._names(pid)
            if names:
                seen[pid] = names
        self._replace(seen)

    def _replace(self, seen: dict[int, frozenset[str]]) -> None:
        """A whole scan's result: counts move as one; fewer reads as exits, more as forks
        (a scan cannot tell, and the delays are for those)."""
        counts: Counter[str] = Counter()
        for names in seen.values():
            counts.update(names)
        old, self.pids = self.counts, seen
        self.counts = Counter({m.name: counts[m.name] for m in self.matches})
        for m in self.matches:
            before, now = old[m.name], self.counts[m.name]
            if now != before:
                self._count(m.name, now, Cause.EXIT if now < before else Cause.FORK)

    # -- running ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, fresh: Iterable[str]) -> None:
        """Subscribe, scan, then follow events (queued since subscribing, so nothing
        between the scan and the first read is lost) or poll. Trackers named in `fresh`
        take the scan's status as their first; the others (kept over a reload) move to
        it as to any other reading, and the caller compares before and after."""
        self._loop = loop
        try:
            # a fork storm never holds the loop for long: 64 datagrams a turn
            self._reader = nlsocket.Reader(
                open_connector(), self._on_data, self._on_error, bufsize=8192, budget=64
            )
        except OSError as e:
            log.warning(
                "VRRP_Track_Process: kernel process events unavailable (%s); "
                "scanning /proc every %g s",
                e.strerror or e,
                self.poll_s,
            )
        self._starting = True
        try:
            self.scan()
        finally:
            self._starting = False
        fresh = set(fresh)
        now = time.monotonic_ns()
        for name, (_, tracker) in self.tracked.items():
            if name in fresh:
                tracker.start(self.counts[name])
            elif tracker.deadline_ns is None:
                tracker.set_count(self.counts[name], Cause.OTHER, now)
            else:
                tracker.count = self.counts[name]  # its pending delay decides
            self._arm(tracker)
        if self._reader is None:
            self.mode = "polling"
            self._poller = loop.create_task(self._poll(), name="track-process-poll")
            return
        self._reader.attach(loop)
        self.mode = "events"
        log.info("VRRP_Track_Process: following kernel process events")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.mode = "closed"

    def _on_error(self, e: OSError) -> bool:
        if e.errno == errno.ENOBUFS:  # the kernel dropped events: read again
            log.warning("VRRP_Track_Process: process events lost; rescanning /proc")
            self.scan()
            return True
        raise e

    def _on_data(self, buf: bytes) -> None:
        for what, pids, comm in parse_events(buf):
            self._on_event(what, pids, comm)

    def _on_event(self, what: int, pids: tuple[int, ...], comm: bytes) -> None:
        if what == PROC_EVENT_FORK:
            parent, child, child_tgid = pids
            names = self.pids.get(parent)
            if names and child == child_tgid:  # a new process, not a thread
                self._set(child, names, Cause.FORK)
        elif what == PROC_EVENT_EXIT:
            pid, tgid = pids
            if pid == tgid and pid in self.pids:
                self._set(pid, None, Cause.EXIT)
        elif what == PROC_EVENT_EXEC:
            self._set(pids[1], self._names(pids[1]), Cause.OTHER)
        elif what == PROC_EVENT_COMM:
            pid, tgid = pids
            if pid == tgid:
                self._set(pid, self._names(pid, os.fsdecode(comm)), Cause.OTHER)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            seen: dict[int, frozenset[str]] = {}
            for i, pid in enumerate(_pids()):
                if i % _SCAN_CHUNK == _SCAN_CHUNK - 1:
                    await asyncio.sleep(0)
                names = self._names(pid)
                if names:
                    seen[pid] = names
            self._replace(seen)
