"""_wire.TxQueue (sendmmsg batches) and the precise timer's end-of-pass flush, on real
UDP sockets over loopback: what is queued arrives, in order, once the pass ends; a
refused message is counted and reported with its tag and the rest still leave; and the
timer pass runs an entry that fell due while it ran instead of waking again for it."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator

import pytest
import uvloop

from fastha.drivers.vrrp_socket import control, sockaddr
from fastha.wire import AdvertTemplate, AdvertTx, TxQueue, encode_ipv4
from fastha.wire.timer import PreciseTimer, monotonic_ns

MS = 1_000_000
HANG_S = 10.0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(HANG_S)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    yield tx, rx
    tx.close()
    rx.close()


def dest(rx: socket.socket) -> bytes:
    return sockaddr(socket.AF_INET, rx.getsockname())


def drain(rx: socket.socket) -> list[bytes]:
    out = []
    rx.setblocking(False)
    try:
        while True:
            out.append(rx.recv(2048))
    except BlockingIOError:
        pass
    finally:
        rx.settimeout(HANG_S)
    return out


@pytest.mark.unit
def test_sockaddr_is_what_the_kernel_reports(pair: tuple[socket.socket, socket.socket]) -> None:
    # sendto to the packed address reaches the socket: the struct layout is right.
    tx, rx = pair
    q = TxQueue(tx.fileno(), [dest(rx)])
    assert q.send(b"one") == 1
    assert rx.recv(64) == b"one"
    six = sockaddr(socket.AF_INET6, ("fe80::1", 0, 0, 7))
    assert len(six) == 28 and six[-4:] == (7).to_bytes(4, "little")


@pytest.mark.unit
def test_queued_messages_leave_at_flush_in_order(pair: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = pair
    rx2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx2.bind(("127.0.0.1", 0))
    rx2.settimeout(HANG_S)
    try:
        q = TxQueue(tx.fileno(), [dest(rx), dest(rx2)], capacity=1)  # grows as needed
        for i in range(40):
            assert q.add(b"m%d" % i, i % 2) == i + 1
        assert drain(rx) == []  # nothing leaves before flush
        assert q.flush() == 40
        assert q.pending == 0 and q.sent == 40 and q.errors == 0
        assert [rx.recv(64) for _ in range(20)] == [b"m%d" % i for i in range(0, 40, 2)]
        assert [rx2.recv(64) for _ in range(20)] == [b"m%d" % i for i in range(1, 40, 2)]
        assert q.flush() == 0  # nothing queued: no send
    finally:
        rx2.close()


@pytest.mark.unit
def test_a_refused_message_is_counted_and_the_rest_still_leave(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # Broadcast without SO_BROADCAST: the kernel refuses it with EACCES. Each refused
    # message is reported with its own tag (whose it was: a batch mixes instances').
    tx, rx = pair
    failed: list[tuple[int, int, object]] = []
    bcast = sockaddr(socket.AF_INET, ("255.255.255.255", rx.getsockname()[1]))
    q = TxQueue(tx.fileno(), [dest(rx), bcast], on_error=lambda *a: failed.append(a))
    q.add(b"a", 0, "VI_1")
    q.add(b"x", 1, "VI_1")
    q.add(b"b", 0, "VI_2")
    q.add(b"y", 1, "VI_2")
    q.add(b"c", 0)
    assert q.flush() == 3
    assert (q.sent, q.errors, q.eagain, q.enobufs) == (3, 2, 0, 0)
    assert failed == [(errno.EACCES, 1, "VI_1"), (errno.EACCES, 1, "VI_2")]
    assert [rx.recv(64) for _ in range(3)] == [b"a", b"b", b"c"]
    # AdvertTx queues every copy with its tag; the batch it flushes reports each its own.
    t = AdvertTemplate(3, 7, 100, 100, [bytes(4)], socket.AF_INET, bytes(4), bytes(4))
    advert = AdvertTx(t, q, None, (), tag="VI_3")
    assert advert.tag == "VI_3"
    q.add(b"z", 1)  # untagged, queued ahead: leaves in the advert's batch
    assert advert.send(100) == 1
    assert failed[2:] == [(errno.EACCES, 1, None), (errno.EACCES, 1, "VI_3")]
    assert rx.recv(256) == t.packet(100)


@pytest.mark.unit
def test_closed_queue_refuses_and_counts(pair: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = pair
    q = TxQueue(tx.fileno(), [dest(rx)])
    q.add(b"dropped", 0)
    q.close()
    assert q.pending == 0
    assert q.add(b"late", 0) == 0
    assert q.flush() == 0
    assert q.errors == 1 and q.sent == 0
    assert drain(rx) == []


@pytest.mark.unit
def test_bad_arguments_raise(pair: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = pair
    with pytest.raises(ValueError):
        TxQueue(tx.fileno(), [b"\x02"])
    q = TxQueue(tx.fileno(), [dest(rx)])
    with pytest.raises(IndexError):
        q.add(b"x", 1)


@pytest.mark.unit
def test_control_buffer_is_cmsg_aligned() -> None:
    data = bytes(20)  # an in6_pktinfo
    buf = control([(socket.IPPROTO_IPV6, 50, data)])
    assert len(buf) == socket.CMSG_SPACE(20)
    assert int.from_bytes(buf[:8], "little") == socket.CMSG_LEN(20)
    assert control([]) == b""


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_a_timer_pass_sends_its_queue_once_it_ends(
    kind: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    tx, rx = pair
    loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    errors: list[object] = []
    loop.set_exception_handler(lambda _l, ctx: errors.append(ctx))
    timer = PreciseTimer(loop)
    timer.start()
    q = TxQueue(tx.fileno(), [dest(rx)])
    timer.add_tx(q)
    timer.add_tx(q)  # idempotent
    seen: list[tuple[int, bool, list[bytes]]] = []
    passes: list[int] = []
    done = loop.create_future()
    timer.after_pass = lambda: passes.append(q.pending)

    def cb(_deadline: int, _now: int, i: int) -> None:
        q.add(b"advert%d" % i, 0)
        seen.append((q.pending, timer.dispatching, drain(rx)))
        if i == 2:
            loop.call_soon(done.set_result, None)

    try:
        at = monotonic_ns() + 5 * MS
        for i in range(3):
            timer.call_at(at, cb, i)
        loop.run_until_complete(asyncio.wait_for(done, HANG_S))
        # Queued inside the pass, nothing on the wire until it ends; then all three.
        assert seen == [(1, True, []), (2, True, []), (3, True, [])]
        assert passes == [0]  # after_pass runs once the queue is flushed
        assert [rx.recv(64) for _ in range(3)] == [b"advert0", b"advert1", b"advert2"]
        assert q.sent == 3 and not timer.dispatching
        timer.remove_tx(q)
        q.add(b"outside", 0)
        assert q.pending == 1  # no longer flushed by the timer
    finally:
        timer.close()
        loop.close()
    assert errors == []


@pytest.mark.unit
def test_an_entry_falling_due_during_a_pass_runs_in_it() -> None:
    loop = uvloop.new_event_loop()
    timer = PreciseTimer(loop)
    timer.start()
    done = loop.create_future()
    order: list[str] = []

    def slow(_d: int, _n: int) -> None:
        order.append("slow")
        end = monotonic_ns() + 2 * MS
        while monotonic_ns() < end:  # busy: the next deadline passes meanwhile
            pass

    def next_(_d: int, _n: int) -> None:
        order.append("next")
        done.set_result(None)

    try:
        at = monotonic_ns() + 5 * MS
        timer.call_at(at, slow)
        timer.call_at(at + MS, next_)
        loop.run_until_complete(asyncio.wait_for(done, HANG_S))
        assert order == ["slow", "next"]
        assert timer.wakeups == 1 and timer.fired == 2
    finally:
        timer.close()
        loop.close()


@pytest.mark.unit
def test_advert_tx_frames_as_encode_ipv4_does(pair: tuple[socket.socket, socket.socket]) -> None:
    # The C send path's IPv4 packet is byte for byte encode_ipv4's (keepalived's header).
    tx, rx = pair
    src, dst = socket.inet_aton("198.18.0.11"), socket.inet_aton("224.0.0.18")
    vip = socket.inet_aton("198.18.1.1")
    t = AdvertTemplate(3, 7, 100, 100, [vip], socket.AF_INET, src, dst)
    q = TxQueue(tx.fileno(), [dest(rx)])
    a = AdvertTx(t, q, src, [dst], 255, 0xFFFE)
    assert a.send(100) == 1
    assert a.send(200) == 1
    assert a.ip_id == 1  # 0xFFFF, then 0 is skipped
    got = [rx.recv(256), rx.recv(256)]
    assert got == [
        encode_ipv4(t.packet(100), 0xFFFF, 255, src, dst),
        encode_ipv4(t.packet(200), 1, 255, src, dst),
    ]
    six = AdvertTx(t, q, None, ())  # no header of ours (IPv6): the message as is
    six.send(50)
    assert rx.recv(256) == t.packet(50)
    with pytest.raises(ValueError):
        AdvertTx(t, q, src, [])  # one packed destination per queue destination
