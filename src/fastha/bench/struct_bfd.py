"""A struct-based BFD Control codec (RFC 5880 §4.1): benchmark baseline and test oracle.

Plain Python over `struct`, written from RFC 5880 §4.1 / §6.8.6 and keepalived 2.2.7's
bfd_check_packet, not from `_wire`. Never used by the daemon (no runtime fallback).
Drop reasons are the names of fastha.wire.bfd.BfdDropReason, in lower case.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

_PKT = struct.Struct("!BBBBIIIII")


class Control(NamedTuple):
    version: int
    diag: int
    state: int
    poll: bool
    final: bool
    cpi: bool
    auth: bool
    demand: bool
    multipoint: bool
    detect_mult: int
    length: int
    my_discr: int
    your_discr: int
    desired_min_tx_us: int
    required_min_rx_us: int
    required_min_echo_rx_us: int


class Invalid(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(
    state: int,
    diag: int,
    detect_mult: int,
    my_discr: int,
    your_discr: int,
    desired_min_tx_us: int,
    required_min_rx_us: int,
    poll: bool = False,
    final: bool = False,
    demand: bool = False,
    cpi: bool = False,
    required_min_echo_rx_us: int = 0,
) -> bytes:
    flags = (state << 6) | (poll << 5) | (final << 4) | (cpi << 3) | (demand << 1)
    return _PKT.pack(
        (1 << 5) | diag,
        flags,
        detect_mult,
        24,
        my_discr,
        your_discr,
        desired_min_tx_us,
        required_min_rx_us,
        required_min_echo_rx_us,
    )


def decode(buf: bytes) -> Control:
    if len(buf) < 24:
        raise Invalid("too_short")
    vd, fl, mult, length, my, your, tx, rx, echo = _PKT.unpack_from(buf)
    c = Control(
        vd >> 5,
        vd & 31,
        fl >> 6,
        bool(fl & 32),
        bool(fl & 16),
        bool(fl & 8),
        bool(fl & 4),
        bool(fl & 2),
        bool(fl & 1),
        mult,
        length,
        my,
        your,
        tx,
        rx,
        echo,
    )
    if c.length != len(buf):
        raise Invalid("length")
    if c.version != 1:
        raise Invalid("version")
    if c.detect_mult == 0:
        raise Invalid("detect_mult")
    if c.multipoint:
        raise Invalid("multipoint")
    if c.my_discr == 0:
        raise Invalid("my_discr")
    if c.your_discr == 0 and c.state not in (0, 1):
        raise Invalid("your_discr")
    if c.poll and c.final:
        raise Invalid("poll_final")
    if c.diag > 8:
        raise Invalid("diag")
    if c.auth:
        raise Invalid("auth")
    return c
