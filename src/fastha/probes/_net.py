"""Socket set-up shared by the connection probes: bindto/bind_port/bind_if/fwmark, and a
non-blocking connect with a deadline that costs one fd watch and one timer."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from fastha.check.spec import Endpoint

SO_MARK = getattr(socket, "SO_MARK", 36)


class ProbeTimeout(Exception):
    pass


# An AF_INET or AF_INET6 socket address: (host, port) or (host, port, flowinfo, scope_id).
SockAddr = tuple[str, int] | tuple[str, int, int, int]


def sockaddr(ep: Endpoint) -> tuple[socket.AddressFamily, SockAddr]:
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
