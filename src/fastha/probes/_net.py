"""Socket set-up shared by the connection probes: bindto/bind_port/bind_if/fwmark, and a
non-blocking connect with a deadline: `connect` (a coroutine: one fd watch and one loop
timer) and `Connector` (callbacks, for thousands of checks a second: see there)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import select
import socket
from collections.abc import Callable

from fastha.check.spec import Endpoint
from fastha.wire.timer import PreciseTimer, TimerHandle, monotonic_ns

SO_MARK = getattr(socket, "SO_MARK", 36)


class ProbeTimeout(Exception):
    pass


# An AF_INET or AF_INET6 socket address: (host, port) or (host, port, flowinfo, scope_id).
SockAddr = tuple[str, int] | tuple[str, int, int, int]


@functools.lru_cache(maxsize=1 << 16)
def sockaddr(ep: Endpoint) -> tuple[socket.AddressFamily, SockAddr]:
    """The family and address to connect to (cached: a check connects every delay_loop)."""
    if ep.host.version == 6:
        scope = socket.if_nametoindex(ep.bind_if) if ep.bind_if else 0
        return socket.AF_INET6, (str(ep.host), ep.port, 0, scope)
    return socket.AF_INET, (str(ep.host), ep.port)


def open_socket(ep: Endpoint, kind: int, proto: int = 0) -> tuple[socket.socket, SockAddr]:
    """A non-blocking socket bound as the checker asks; returns it and the peer address."""
    family, addr = sockaddr(ep)
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        if ep.fwmark is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, ep.fwmark)
        if ep.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ep.bind_if.encode())
        if ep.bindto is not None or ep.bind_port is not None:
            if ep.bind_port is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            local = str(ep.bindto) if ep.bindto is not None else ""
            sock.bind((local, ep.bind_port or 0))
    except BaseException:
        sock.close()
        raise
    return sock, addr


def _wake(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if not fut.done():
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


async def connect(sock: socket.socket, addr: SockAddr, timeout: float) -> None:
    """Connect a non-blocking socket; OSError on refusal, ProbeTimeout past `timeout`."""
    err = sock.connect_ex(addr)
    if err == 0:
        return
    if err != errno.EINPROGRESS:
        raise OSError(err, os.strerror(err))
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _wake, fut, None)
    handle = loop.call_later(timeout, _wake, fut, ProbeTimeout("connection timeout"))
    try:
        await fut
    finally:
        loop.remove_writer(fd)
        handle.cancel()
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ProbeTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# A connect in flight becomes writable (connected) or errors (refused, unreachable).
_WATCH = select.EPOLLOUT | select.EPOLLONESHOT
_FAILED = select.EPOLLERR | select.EPOLLHUP

# done(None, now_ns) once connected, done(exc, now_ns) on failure (OSError, or
# ProbeTimeout); now_ns: the clock read once for the whole batch of results.
ConnectDone = Callable[[BaseException | None, int], None]


class Connecting:
    """A socket the Connector watches (its connect, then what `Connector.wait` asks);
    `cancel()` forgets it and closes the socket."""

    __slots__ = ("connecting", "connector", "done", "fd", "sock", "timeout")

    def __init__(self, connector: Connector, sock: socket.socket, done: ConnectDone) -> None:
        self.connector = connector
        self.sock = sock
        self.fd = sock.fileno()
        self.done = done
        self.timeout: TimerHandle | None = None
        self.connecting = True  # a connect in flight; False: a wait for readiness

    def cancel(self) -> None:
        self.connector._forget(self)
        self.sock.close()


class Connector:
    """Non-blocking connects for the scheduler's thousands of checks a second, without a
    coroutine, Task, Future or loop timer per connect.

    One epoll set of its own, watched by the loop as one reader: a connect in progress
    costs one ``epoll_ctl`` (EPOLLOUT | EPOLLONESHOT) and nothing to remove it (closing
    the socket drops it from the set; a one-shot entry that fired is inert), and no
    ``getsockopt`` when it connected (EPOLLOUT without EPOLLERR). Its deadline sits in
    the precise timer's heap, where cancelling it is no syscall. (uvloop's
    ``add_writer``/``remove_writer`` cost an ioctl, a getpid and two or three
    ``epoll_ctl`` per connect, one of them failing.) A connect abandoned before it
    ended (timeout, cancel) is taken out of the set first, so its socket, should a
    forked script still hold it for an instant, cannot report for a new one on the
    same fd number.

        c = Connector(timer)                       # the scheduler's; None: its own
        c.connect(sock, addr, timeout_s, done)     # done(None | exc, now_ns), once
        c.close()
    """

    def __init__(self, timer: PreciseTimer | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self._own_timer = timer is None
        if timer is None:
            timer = PreciseTimer(self.loop)
            timer.start()
        self.timer = timer
        self._ep = select.epoll()
        self._waiting: dict[int, Connecting] = {}
        self.loop.add_reader(self._ep.fileno(), self._ready)

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def connect(
        self,
        sock: socket.socket,
        addr: SockAddr,
        timeout: float,
        done: ConnectDone,
        now_ns: int | None = None,
    ) -> Connecting | None:
        """Start connecting ``sock`` (non-blocking). An immediate answer calls ``done``
        before this returns (and returns None); else the connect is watched until
        ``timeout`` s after ``now_ns`` (the caller's clock reading; default: now)."""
        err = sock.connect_ex(addr)
        start = monotonic_ns() if now_ns is None else now_ns
        if err != errno.EINPROGRESS:
            done(None if err == 0 else OSError(err, os.strerror(err)), start)
            return None
        c = Connecting(self, sock, done)
        self._ep.register(c.fd, _WATCH)
        c.timeout = self.timer.call_at(start + int(timeout * 1e9), self._expired, c)
        self._waiting[c.fd] = c
        return c

    def wait(
        self,
        sock: socket.socket,
        events: int,
        deadline_ns: int,
        done: ConnectDone,
        c: Connecting | None = None,
    ) -> Connecting:
        """``done(None, now_ns)`` once ``sock`` is ready for ``events`` (EPOLLIN,
        EPOLLOUT; an error or hangup counts as ready: the next recv or send says what),
        or ``done(ProbeTimeout, now_ns)`` at ``deadline_ns``; exactly once. ``c``: what
        ``connect`` (or an earlier wait) returned for this socket and has since ended:
        its entry in the set is re-armed, no new one added."""
        fd = sock.fileno()
        if c is not None and c.sock is sock and c.fd == fd and fd not in self._waiting:
            self._ep.modify(fd, events | select.EPOLLONESHOT)
            c.done = done
            c.connecting = False
            if c.timeout is not None:
                c.timeout.reschedule(deadline_ns)
            else:
                c.timeout = self.timer.call_at(deadline_ns, self._expired, c)
        else:
            c = Connecting(self, sock, done)
            c.connecting = False
            self._ep.register(fd, events | select.EPOLLONESHOT)
            c.timeout = self.timer.call_at(deadline_ns, self._expired, c)
        self._waiting[fd] = c
        return c

    def close(self) -> None:
        """Forget every connect in flight (their sockets closed, no callback)."""
        for c in list(self._waiting.values()):
            c.cancel()
        if not self._ep.closed:
            if not self.loop.is_closed():
                self.loop.remove_reader(self._ep.fileno())
            self._ep.close()
        if self._own_timer:
            self.timer.close()

    def _forget(self, c: Connecting) -> bool:
        if self._waiting.get(c.fd) is not c:
            return False
        del self._waiting[c.fd]
        if c.timeout is not None:
            c.timeout.cancel()
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile
            self._ep.unregister(c.fd)
        return True

    def _expired(self, _deadline: int, now: int, c: Connecting) -> None:
        if self._forget(c):
            why = "connection timeout" if c.connecting else "timeout"
            self._call(c, ProbeTimeout(why), now)

    def _ready(self) -> None:
        waiting = self._waiting
        events = self._ep.poll(0)
        now = monotonic_ns()  # one clock read for the batch (a syscall under UML)
        for fd, ev in events:
            c = waiting.pop(fd, None)
            if c is None:
                continue
            if c.timeout is not None:
                c.timeout.cancel()
            if ev & _FAILED and c.connecting:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNRESET
                self._call(c, OSError(err, os.strerror(err)), now)
            else:
                self._call(c, None, now)

    def _call(self, c: Connecting, exc: BaseException | None, now: int) -> None:
        try:
            c.done(exc, now)
        except Exception as e:  # one broken callback must not lose the others' events
            self.loop.call_exception_handler(
                {"message": "Exception in a Connector callback", "exception": e}
            )
