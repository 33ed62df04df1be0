"""The BFD child's parts without a network namespace: what a `bfd_instance` becomes
(keepalived 2.2.7's defaults and fix-ups), the receive demultiplexer, the event relay
down real pipes, and the UDP sockets on loopback (an ephemeral port stands in for 3784).
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from fastha.bfd.events import BfdStateChange
from fastha.bfd.states import State
from fastha.config.loader import load
from fastha.drivers import bfd_channel
from fastha.drivers.bfd_socket import (
    SRC_PORT_MAX,
    SRC_PORT_MIN,
    BfdListener,
    BfdSender,
    local_port_range,
    open_sender,
)
from fastha.runtime.bfd.from_config import BfdSpec, bfd_spec
from fastha.runtime.bfd.relay import EventRelay
from fastha.runtime.bfd.sessions import Sessions
from fastha.wire.bfd import encode_bfd
from fastha.wire.timer import PreciseTimer

pytestmark = pytest.mark.unit


def spec_of(tmp_path: Path, text: str) -> BfdSpec:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    result = load(path)
    assert result.config is not None, [str(d) for d in result.diagnostics]
    return bfd_spec(result.config)


def test_keepalived_defaults_units_and_routing(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
bfd_instance V4 {
  neighbor_ip 198.18.0.2
}
bfd_instance V6 {
  neighbour_ip 2001:db8::2
  source_ip 2001:db8::1
  min_rx 2.5
  min_tx 3
  idle_tx 1500
  multiplier 3
  passive
  checker
}
bfd_instance HOPS {
  neighbor_ip 198.18.0.3
  ttl 10
  max_hops 20
  vrrp
}
bfd_instance V6TTL {
  neighbor_ip 2001:db8::3
  ttl 200
}
""",
    )
    s = {x.name: x for x in spec.sessions}
    v4, v6, hops, v6ttl = s["V4"].params, s["V6"].params, s["HOPS"].params, s["V6TTL"].params
    # bfd.h: 10 ms / 10 ms / 1 s / x5; TTL 255 for IPv4, hop limit 64 for IPv6.
    assert (v4.min_rx_us, v4.min_tx_us, v4.idle_tx_us, v4.multiplier) == (
        10_000,
        10_000,
        1_000_000,
        5,
    )
    assert (v4.ttl, v4.max_hops, v4.passive) == (255, 0, False)
    assert (v6.min_rx_us, v6.min_tx_us, v6.idle_tx_us, v6.multiplier) == (
        2_500,
        3_000,
        1_500_000,
        3,
    )
    assert (v6.ttl, v6.passive) == (64, True)
    assert s["V6"].source == "2001:db8::1"
    # `ttl` and `hoplimit` are one variable in keepalived, whatever the family.
    assert v6ttl.ttl == 200
    # "max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit"
    assert (hops.ttl, hops.max_hops) == (10, 10)
    # Neither `vrrp` nor `checker`: both hear; naming one sends only there.
    assert (s["V4"].to_vrrp, s["V4"].to_checker) == (True, True)
    assert (s["V6"].to_vrrp, s["V6"].to_checker) == (False, True)
    assert (s["HOPS"].to_vrrp, s["HOPS"].to_checker) == (True, False)


def test_instances_keepalived_ignores_do_not_run(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
bfd_instance A {
  neighbor_ip 198.18.0.2
}
bfd_instance A {
  neighbor_ip 198.18.0.9
}
bfd_instance SAME_PEER {
  neighbor_ip 198.18.0.2
}
bfd_instance NO_PEER {
  min_rx 10
}
bfd_instance MIXED {
  neighbor_ip 198.18.0.4
  source_ip 2001:db8::1
}
bfd_instance A_NAME_OF_THIRTY_TWO_CHARACTERS_ {
  neighbor_ip 198.18.0.5
}
""",
    )
    assert [(x.name, x.neighbor) for x in spec.sessions] == [("A", "198.18.0.2")]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = uvloop.new_event_loop()
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        asyncio.set_event_loop(None)
        lp.close()


def test_demux_by_discriminator_then_address(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    spec = spec_of(
        tmp_path,
        """
bfd_instance ONE {
  neighbor_ip 127.0.0.2
}
bfd_instance TWO {
  neighbor_ip 127.0.0.3
  source_ip 127.0.0.1
}
""",
    )
    timer = PreciseTimer(loop)
    sessions = Sessions(timer, EventRelay(), random.Random(7))
    try:
        for s in spec.sessions:
            sessions.add(s).start()  # real senders, to 127.0.0.x:3784 (nobody listens)
        one, two = sessions.by_name["ONE"], sessions.by_name["TWO"]

        def pkt(state: int, your: int) -> memoryview:
            return memoryview(encode_bfd(state, 0, 3, 0x1234, your, 10_000, 10_000))

        down, init = int(State.DOWN), int(State.INIT)
        # Your Discriminator 0: by source (and destination, for a session with source_ip).
        sessions.on_packet(pkt(down, 0), "127.0.0.2", 50000, "127.0.0.1", 255, 1)
        assert (one.received, two.received) == (1, 0)
        assert one.machine.state == State.INIT and one.machine.remote_discr == 0x1234
        sessions.on_packet(pkt(down, 0), "127.0.0.3", 50000, "127.0.0.9", 255, 2)
        assert two.received == 0 and sessions.dropped["NO_SESSION"] == 1
        sessions.on_packet(pkt(down, 0), "127.0.0.3", 50000, "127.0.0.1", 255, 3)
        assert two.received == 1
        # Non-zero: by our discriminator, whatever the source says.
        sessions.on_packet(pkt(init, two.machine.local_discr), "127.0.0.2", 1, "", 255, 4)
        assert (one.received, two.received) == (1, 2)
        assert two.machine.state == State.UP
        sessions.on_packet(pkt(init, 0xDEAD), "127.0.0.2", 1, "", 255, 5)
        assert sessions.dropped["NO_SESSION"] == 2
        # What _wire refuses is counted by its reason and reaches no session.
        sessions.on_packet(memoryview(b"\x20" * 10), "127.0.0.2", 1, "", 255, 6)
        assert sessions.dropped["TOO_SHORT"] == 1
        assert (one.received, two.received) == (1, 2)
        # GTSM is the session's: a packet with TTL 254 on a single hop is dropped there.
        sessions.on_packet(pkt(init, one.machine.local_discr), "127.0.0.2", 1, "", 254, 7)
        assert one.drops["TTL"] == 1 and one.machine.state == State.INIT
        assert one.sender is not None and one.sender.sent >= 1  # its first packet left
    finally:
        for sio in sessions:
            sio.close()
        timer.close()


def test_relay_routes_records_down_real_pipes(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
bfd_instance BOTH {
  neighbor_ip 198.18.0.2
}
bfd_instance VRRP_ONLY {
  neighbor_ip 198.18.0.3
  vrrp
}
""",
    )
    vr, vw = os.pipe2(os.O_NONBLOCK)
    cr, cw = os.pipe2(os.O_NONBLOCK)
    try:
        relay = EventRelay(vw, cw)
        s = {x.name: x for x in spec.sessions}
        relay.send(s["BOTH"], BfdStateChange("BOTH", True, 11, 0))
        relay.send(s["VRRP_ONLY"], BfdStateChange("VRRP_ONLY", False, 12, 1))
        assert list(bfd_channel.decode(os.read(vr, 4096))) == [
            BfdStateChange("BOTH", True, 11, 0),
            BfdStateChange("VRRP_ONLY", False, 12, 1),
        ]
        assert list(bfd_channel.decode(os.read(cr, 4096))) == [BfdStateChange("BOTH", True, 11, 0)]
        # A consumer that is gone (its pipe full) costs a count, never the BFD child.
        os.close(cr)
        relay.send(s["BOTH"], BfdStateChange("BOTH", False, 13, 1))
        assert relay.failed == 1 and relay.sent == 4
    finally:
        for fd in (vr, vw, cw):
            os.close(fd)


def test_source_port_range(tmp_path: Path) -> None:
    rng = tmp_path / "range"
    rng.write_text("32768\t60999\n")
    assert local_port_range(str(rng)) == (SRC_PORT_MIN, 60999)
    rng.write_text("60000\t61000\n")  # fewer than 1024 left: keepalived's whole range
    assert local_port_range(str(rng)) == (SRC_PORT_MIN, SRC_PORT_MAX)
    assert local_port_range(str(tmp_path / "missing")) == (SRC_PORT_MIN, 60999)
    # A port in use: the next one (wrapping), never one outside the range.
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        lo, hi = port, port + 1
        for seed in range(4):  # whichever port the draw starts at, the free one
            s = open_sender(socket.AF_INET, "127.0.0.1", 255, random.Random(seed), (lo, hi))
            try:
                assert s.getsockname()[1] == hi
                assert s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
                # Every port taken: EADDRINUSE, as keepalived's "bind() error".
                with pytest.raises(OSError) as err:
                    open_sender(socket.AF_INET, "127.0.0.1", 255, random.Random(seed), (lo, hi))
                assert err.value.errno == errno.EADDRINUSE
            finally:
                s.close()
    finally:
        taken.close()


def test_listener_reports_ttl_destination_and_unmaps_ipv4() -> None:
    got: list[tuple[bytes, str, int, str, int]] = []
    listener = BfdListener(
        lambda mv, src, sport, dst, ttl: got.append((bytes(mv), src, sport, dst, ttl)), 0
    )
    port = listener.sock.getsockname()[1]
    s4 = BfdSender("127.0.0.1", "127.0.0.1", 255)
    s6 = BfdSender("::1", None, 64)
    try:
        s4.dest = ("127.0.0.1", port)
        s6.dest = ("::1", port)
        assert s4.send(b"4" * 24) and s6.send(b"6" * 24)
        for _ in range(100):
            listener.drain()
            if len(got) == 2:
                break
        assert sorted(got) == [
            (b"4" * 24, "127.0.0.1", s4.source_port, "127.0.0.1", 255),
            (b"6" * 24, "::1", s6.source_port, "::1", 64),
        ]
        assert SRC_PORT_MIN <= s6.source_port <= SRC_PORT_MAX
    finally:
        s4.close()
        s6.close()
        listener.close()
