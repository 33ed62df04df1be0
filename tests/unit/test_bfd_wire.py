"""The BFD Control codec (_wire_bfd.pxi): roundtrip, every drop reason in keepalived's
order, and scapy's and tshark's BFD dissectors as oracles for the bytes we send."""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.contrib.bfd import BFD
from tests.support.prereq import need_tool
from tests.support.wire_packets import ip_packet, tshark_layers, write_pcap

from fastha.bench import struct_bfd
from fastha.bench.struct_codec import checksum
from fastha.wire.bfd import (
    BFD_CONTROL_LEN,
    BFD_PORT,
    BfdControl,
    BfdDecodeError,
    BfdDropReason,
    check_bfd,
    decode_bfd,
    encode_bfd,
)

U32 = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class Fields:
    state: int
    diag: int
    detect_mult: int
    my_discr: int
    your_discr: int
    desired_min_tx_us: int
    required_min_rx_us: int
    poll: bool
    final: bool
    demand: bool
    cpi: bool
    required_min_echo_rx_us: int

    def encode(self) -> bytes:
        return encode_bfd(
            self.state,
            self.diag,
            self.detect_mult,
            self.my_discr,
            self.your_discr,
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.poll,
            self.final,
            self.demand,
            self.cpi,
            self.required_min_echo_rx_us,
        )


@st.composite
def valid_fields(draw: st.DrawFn) -> Fields:
    """Fields of a packet decode_bfd accepts (keepalived's checks all pass)."""
    state = draw(st.integers(0, 3))
    poll = draw(st.booleans())
    return Fields(
        state=state,
        diag=draw(st.integers(0, 8)),
        detect_mult=draw(st.integers(1, 255)),
        my_discr=draw(st.integers(1, 2**32 - 1)),
        your_discr=draw(st.integers(0 if state <= 1 else 1, 2**32 - 1)),
        desired_min_tx_us=draw(U32),
        required_min_rx_us=draw(U32),
        poll=poll,
        final=False if poll else draw(st.booleans()),
        demand=draw(st.booleans()),
        cpi=draw(st.booleans()),
        required_min_echo_rx_us=draw(U32),
    )


def _as_fields(c: BfdControl) -> Fields:
    d = c.to_dict()
    assert (d.pop("version"), d.pop("length"), d.pop("auth"), d.pop("multipoint")) == (
        1,
        24,
        False,
        False,
    )
    return Fields(**d)  # type: ignore[arg-type]


@pytest.mark.unit
@given(valid_fields())
def test_roundtrip(f: Fields) -> None:
    b = f.encode()
    assert len(b) == BFD_CONTROL_LEN
    assert check_bfd(b) == 0
    assert _as_fields(decode_bfd(b)) == f
    assert decode_bfd(bytearray(b)).my_discr == decode_bfd(memoryview(b)).my_discr == f.my_discr


@pytest.mark.unit
def test_layout_matches_rfc5880_figure() -> None:
    """§4.1 by hand: Vers 1, Diag 7, Sta Up, P and D, mult 3, length 24, then 5 words."""
    b = encode_bfd(3, 7, 3, 0x01020304, 0x05060708, 0x0A0B0C0D, 10_000, poll=True, demand=True)
    assert b[:4] == bytes([(1 << 5) | 7, (3 << 6) | 0x20 | 0x02, 3, 24])
    assert struct.unpack("!5I", b[4:]) == (0x01020304, 0x05060708, 0x0A0B0C0D, 10_000, 0)


@pytest.mark.unit
@given(valid_fields())
def test_scapy_decodes_what_we_encode(f: Fields) -> None:
    p = BFD(f.encode())
    assert (p.version, p.diag, p.sta, p.detect_mult, p.len) == (
        1,
        f.diag,
        f.state,
        f.detect_mult,
        24,
    )
    flags = p.flags
    assert (
        f.poll,
        f.final,
        f.cpi,
        False,
        f.demand,
        False,
    ) == (flags.P, flags.F, flags.C, flags.A, flags.D, flags.M)
    assert (p.my_discriminator, p.your_discriminator) == (f.my_discr, f.your_discr)
    assert (p.min_tx_interval, p.min_rx_interval, p.echo_rx_interval) == (
        f.desired_min_tx_us,
        f.required_min_rx_us,
        f.required_min_echo_rx_us,
    )


@pytest.mark.unit
@given(valid_fields())
def test_we_decode_what_scapy_builds(f: Fields) -> None:
    flags = "".join(
        c for c, on in (("P", f.poll), ("F", f.final), ("C", f.cpi), ("D", f.demand)) if on
    )
    raw = bytes(
        BFD(
            diag=f.diag,
            sta=f.state,
            flags=flags,
            detect_mult=f.detect_mult,
            my_discriminator=f.my_discr,
            your_discriminator=f.your_discr,
            min_tx_interval=f.desired_min_tx_us,
            min_rx_interval=f.required_min_rx_us,
            echo_rx_interval=f.required_min_echo_rx_us,
        )
    )
    assert raw == f.encode()
    assert _as_fields(decode_bfd(raw)) == f


GOOD = encode_bfd(3, 0, 3, 0x11, 0x22, 10_000, 10_000)


def _with(byte: int, value: int, base: bytes = GOOD) -> bytes:
    b = bytearray(base)
    b[byte] = value
    return bytes(b)


def _word(off: int, value: int, base: bytes = GOOD) -> bytes:
    return base[:off] + struct.pack("!I", value) + base[off + 4 :]


# One packet per reason, each wrong in that one way only.
DROPS = {
    "too_short": (GOOD[:23], BfdDropReason.TOO_SHORT),
    "empty": (b"", BfdDropReason.TOO_SHORT),
    "length_field_short": (_with(3, 23), BfdDropReason.LENGTH),
    "trailing_bytes": (GOOD + b"\0", BfdDropReason.LENGTH),  # keepalived: len != size
    "length_field_long": (_with(3, 26), BfdDropReason.LENGTH),
    "version_0": (_with(0, 0), BfdDropReason.VERSION),
    "version_2": (_with(0, 2 << 5), BfdDropReason.VERSION),
    "detect_mult_0": (_with(2, 0), BfdDropReason.DETECT_MULT),
    "multipoint": (_with(1, GOOD[1] | 0x01), BfdDropReason.MULTIPOINT),
    "my_discr_0": (_word(4, 0), BfdDropReason.MY_DISCR),
    "your_discr_0_up": (_word(8, 0), BfdDropReason.YOUR_DISCR),
    "your_discr_0_init": (_with(1, 2 << 6, _word(8, 0)), BfdDropReason.YOUR_DISCR),
    "poll_and_final": (_with(1, GOOD[1] | 0x30), BfdDropReason.POLL_FINAL),
    "diag_9": (_with(0, (1 << 5) | 9), BfdDropReason.DIAG),
    "diag_31": (_with(0, (1 << 5) | 31), BfdDropReason.DIAG),
    "auth_bit": (_with(1, GOOD[1] | 0x04), BfdDropReason.AUTH),
    # keepalived's order: the first failing check names the drop.
    "version_before_mult": (_with(2, 0, _with(0, 0)), BfdDropReason.VERSION),
    "mult_before_discr": (_word(4, 0, _with(2, 0)), BfdDropReason.DETECT_MULT),
    "discr_before_poll_final": (_with(1, GOOD[1] | 0x30, _word(4, 0)), BfdDropReason.MY_DISCR),
    "poll_final_before_auth": (_with(1, GOOD[1] | 0x34), BfdDropReason.POLL_FINAL),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", sorted(DROPS))
def test_every_drop_reason(case: str) -> None:
    buf, reason = DROPS[case]
    with pytest.raises(BfdDecodeError) as info:
        decode_bfd(buf)
    assert info.value.reason is reason
    assert isinstance(info.value, ValueError)
    assert check_bfd(buf) == reason


@pytest.mark.unit
@pytest.mark.parametrize("state", [0, 1])
def test_your_discr_zero_is_fine_when_down_or_admindown(state: int) -> None:
    b = encode_bfd(state, 0, 3, 0x11, 0, 1_000_000, 10_000)
    assert decode_bfd(b).your_discr == 0


@pytest.mark.unit
def test_every_decode_reason_has_a_case() -> None:
    session_level = {BfdDropReason.TTL, BfdDropReason.NO_SESSION, BfdDropReason.ADMIN_DOWN}
    assert {r for _, r in DROPS.values()} == set(BfdDropReason) - session_level


@pytest.mark.unit
@given(st.binary(max_size=64))
def test_random_bytes_only_ever_drop(buf: bytes) -> None:
    reason = check_bfd(buf)
    try:
        c = decode_bfd(buf)
    except BfdDecodeError as e:
        assert e.reason == reason != 0
    else:
        assert reason == 0
        assert encode_bfd(
            c.state,
            c.diag,
            c.detect_mult,
            c.my_discr,
            c.your_discr,
            c.desired_min_tx_us,
            c.required_min_rx_us,
            c.poll,
            c.final,
            c.demand,
            c.cpi,
            c.required_min_echo_rx_us,
        ) == bytes(buf)


def _mutated(f: Fields, data: st.DataObject) -> bytes:
    """A valid packet with a few random bytes changed: near-valid input hits each check."""
    b = bytearray(f.encode())
    for _ in range(data.draw(st.integers(0, 3))):
        b[data.draw(st.integers(0, 23))] = data.draw(st.integers(0, 255))
    return bytes(b) + data.draw(st.binary(max_size=2)) * data.draw(st.integers(0, 1))


@pytest.mark.unit
@given(valid_fields(), st.data())
def test_struct_oracle_agrees(f: Fields, data: st.DataObject) -> None:
    """The independent struct codec (fastha.bench.struct_bfd) decodes alike and drops for
    the same reason."""
    buf = _mutated(f, data)
    try:
        want = struct_bfd.decode(buf)._asdict()
    except struct_bfd.Invalid as e:
        with pytest.raises(BfdDecodeError) as info:
            decode_bfd(buf)
        assert info.value.reason.name.lower() == e.reason
    else:
        assert decode_bfd(buf).to_dict() == want
    assert struct_bfd.encode(**vars(f)) == f.encode()


@pytest.mark.unit
@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": 4},
        {"state": -1},
        {"diag": 32},
        {"detect_mult": 0},
        {"detect_mult": 256},
        {"my_discr": 2**32},
        {"your_discr": -1},
        {"desired_min_tx_us": 2**32},
        {"poll": True, "final": True},
    ],
    ids=str,
)
def test_encode_rejects_what_it_cannot_send(kwargs: dict[str, int]) -> None:
    args: dict[str, int] = {
        "state": 1,
        "diag": 0,
        "detect_mult": 3,
        "my_discr": 1,
        "your_discr": 0,
        "desired_min_tx_us": 1,
        "required_min_rx_us": 1,
    }
    args.update(kwargs)
    with pytest.raises((ValueError, OverflowError)):
        encode_bfd(**args)  # type: ignore[arg-type]


def _udp(payload: bytes, family: int, src: bytes, dst: bytes, sport: int) -> bytes:
    """UDP header with a correct checksum (RFC 768 / RFC 8200 §8.1 pseudo-header)."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, BFD_PORT, length, 0)
    if family == socket.AF_INET:
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    else:
        pseudo = src + dst + struct.pack("!I3xB", length, socket.IPPROTO_UDP)
    ck = checksum(pseudo + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", ck) + payload


def _ip_udp(payload: bytes, family: int, src: bytes, dst: bytes, sport: int) -> bytes:
    seg = _udp(payload, family, src, dst, sport)
    pkt = ip_packet(seg, family, src, dst)
    proto_at = 9 if family == socket.AF_INET else 6
    b = bytearray(pkt)
    b[proto_at] = socket.IPPROTO_UDP
    if family == socket.AF_INET:  # the header checksum covers the protocol byte
        b[10:12] = b"\0\0"
        b[10:12] = struct.pack("!H", checksum(bytes(b[:20])))
    return bytes(b)


@pytest.mark.unit
def test_tshark_decodes_what_we_encode_without_warnings(tmp_path: Path) -> None:
    tshark = need_tool("tshark")
    rng = random.Random(5880)
    cases: list[tuple[Fields, int]] = []
    for i in range(200):
        f = Fields(
            state=rng.randrange(4),
            diag=rng.randrange(9),
            detect_mult=rng.randrange(1, 256),
            my_discr=rng.randrange(1, 2**32),
            your_discr=rng.randrange(1, 2**32),
            desired_min_tx_us=rng.randrange(2**32),
            required_min_rx_us=rng.randrange(2**32),
            poll=(p := rng.random() < 0.3),
            final=not p and rng.random() < 0.3,
            demand=rng.random() < 0.1,
            cpi=rng.random() < 0.1,
            required_min_echo_rx_us=rng.choice((0, 0, 50_000)),
        )
        cases.append((f, socket.AF_INET if i % 2 else socket.AF_INET6))
    addrs = {
        socket.AF_INET: (socket.inet_aton("198.18.0.1"), socket.inet_aton("198.18.0.2")),
        socket.AF_INET6: (
            socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
            socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
        ),
    }
    frames = [_ip_udp(f.encode(), fam, *addrs[fam], 49152 + i) for i, (f, fam) in enumerate(cases)]
    pcap = tmp_path / "bfd.pcap"
    write_pcap(pcap, frames)
    layers = tshark_layers(tshark, pcap)
    assert len(layers) == len(cases)
    for (f, _), frame in zip(cases, layers, strict=True):
        assert "_ws.expert" not in str(frame), f"tshark expert info for {f}: {frame}"
        assert "_ws.malformed" not in frame, frame
        v = frame["bfd"]
        assert isinstance(v, dict)
        assert v["bfd.version"] == "1"
        assert v["bfd.diag"] == f"0x{f.diag:02x}"
        assert v["bfd.sta"] == f"0x{f.state:02x}"
        flags = v["bfd.flags_tree"]
        assert isinstance(flags, dict)
        assert (flags["bfd.flags.p"], flags["bfd.flags.f"], flags["bfd.flags.a"]) == (
            str(int(f.poll)),
            str(int(f.final)),
            "0",
        )
        assert v["bfd.detect_time_multiplier"] == str(f.detect_mult)
        assert v["bfd.message_length"] == "24"
        assert v["bfd.my_discriminator"] == f"0x{f.my_discr:08x}"
        assert v["bfd.your_discriminator"] == f"0x{f.your_discr:08x}"
        assert v["bfd.desired_min_tx_interval"] == str(f.desired_min_tx_us)
        assert v["bfd.required_min_rx_interval"] == str(f.required_min_rx_us)
