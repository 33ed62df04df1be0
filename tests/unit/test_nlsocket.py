"""The netlink socket helper under addrwatch, ipvs (genl) and procwatch: message framing
(padding, a malformed header stops the walk and says so), the bounded read loop (at
most ``budget`` datagrams a wakeup, errors to ``on_error``, which keeps reading or
stops), and a real NETLINK_ROUTE socket opened and read from the loop."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any

import pytest

from fastha.drivers import nlsocket

pytestmark = pytest.mark.unit


def msg(mtype: int, payload: bytes = b"", seq: int = 0) -> bytes:
    n = 16 + len(payload)
    return struct.pack("=IHHII", n, mtype, 0, seq, 0) + payload + b"\0" * (-n & 3)


def test_messages_walks_padded_messages() -> None:
    data = msg(20, b"abcde", seq=7) + msg(nlsocket.NLMSG_DONE, seq=8)
    got, malformed = nlsocket.messages(data)
    assert not malformed
    assert [(m[2], m[4]) for m in got] == [(20, 7), (nlsocket.NLMSG_DONE, 8)]
    off, length = got[0][:2]
    assert data[off + 16 : off + length] == b"abcde"
    assert got[1][0] == 24  # 21 bytes padded to 24


@pytest.mark.parametrize("bad_len", [8, 400])  # below a header; past the datagram
def test_messages_stops_at_a_malformed_header(bad_len: int) -> None:
    bad = struct.pack("=IHHII", bad_len, 20, 0, 0, 0)
    got, malformed = nlsocket.messages(msg(20, seq=1) + bad + msg(20, seq=2))
    assert malformed
    assert [m[4] for m in got] == [1]


def test_reader_budget_and_errors() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    seen: list[bytes] = []
    errors: list[int] = []

    def on_error(e: OSError) -> bool:
        errors.append(e.errno)
        return False

    reader = nlsocket.Reader(a, seen.append, on_error, bufsize=64, budget=3)
    for i in range(5):
        b.send(bytes([i]))
    reader.on_readable()
    assert seen == [b"\0", b"\1", b"\2"]  # the budget: the rest waits for the next turn
    reader.on_readable()
    assert seen[3:] == [b"\3", b"\4"]
    reader.on_readable()  # nothing queued: EAGAIN ends the turn, not an error
    assert len(seen) == 5 and errors == []
    b.close()
    reader.close()
    reader.close()  # twice is fine
    assert reader.sock is None


def test_reader_on_error_keeps_reading_or_stops() -> None:
    calls: list[str] = []

    class Flaky:
        def __init__(self) -> None:
            self.left = [OSError(errno.ENOBUFS, "lost"), b"x", BlockingIOError()]

        def recv(self, n: int) -> bytes:
            item = self.left.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item

    def on_error(e: OSError) -> bool:
        calls.append("error")
        return True

    flaky: Any = Flaky()  # a socket stand-in: recv only
    reader = nlsocket.Reader(flaky, lambda d: calls.append("data"), on_error, bufsize=8, budget=10)
    reader.on_readable()
    assert calls == ["error", "data"]  # ENOBUFS reported, then reading went on


def test_route_socket_from_the_loop() -> None:
    """A real rtnetlink socket: an RTM_GETLINK dump read through the loop ends with
    NLMSG_DONE carrying our sequence number."""

    async def main() -> list[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        got: list[tuple[int, int]] = []

        def on_data(data: bytes) -> None:
            for _off, _len, mtype, _flags, seq in nlsocket.messages(data)[0]:
                got.append((mtype, seq))
                if mtype == nlsocket.NLMSG_DONE and not done.done():
                    done.set_result(None)

        sock = nlsocket.open_socket(0, rcvbuf=1 << 16)  # NETLINK_ROUTE
        reader = nlsocket.Reader(sock, on_data, lambda e: False, bufsize=1 << 16, budget=8)
        reader.attach(loop)
        # RTM_GETLINK (18), NLM_F_REQUEST | NLM_F_DUMP, seq 42, ifinfomsg of 16 zero bytes
        reader.send(struct.pack("=IHHII", 32, 18, 0x301, 42, 0) + bytes(16))
        await asyncio.wait_for(done, 5)
        reader.close()
        return got

    got = asyncio.run(main())
    assert got[-1] == (nlsocket.NLMSG_DONE, 42)
    assert any(mtype == 16 for mtype, _ in got)  # RTM_NEWLINK: at least lo
