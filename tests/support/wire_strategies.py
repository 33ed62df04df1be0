"""Hypothesis strategies over the whole VRRP field space (v2/v3, IPv4/IPv6)."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

from hypothesis import strategies as st


@dataclass(frozen=True, slots=True)
class AdvertSpec:
    """Everything an encoder takes; `adver_int` in the version's unit."""

    version: int
    family: int
    vrid: int
    priority: int
    adver_int: int
    addresses: tuple[bytes, ...]
    src: bytes
    dst: bytes
    auth_type: int = 0
    auth_data: bytes = b""
    checksum_as_v2: bool = False

    @property
    def alen(self) -> int:
        return 4 if self.family == socket.AF_INET else 16


def _addr(alen: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=alen, max_size=alen)


@st.composite
def advert_specs(draw: st.DrawFn, max_addresses: int = 20) -> AdvertSpec:
    version = draw(st.sampled_from((2, 3)))
    family = (
        socket.AF_INET if version == 2 else draw(st.sampled_from((socket.AF_INET, socket.AF_INET6)))
    )
    alen = 4 if family == socket.AF_INET else 16
    addrs = tuple(draw(st.lists(_addr(alen), max_size=max_addresses)))
    common = dict(
        version=version,
        family=family,
        vrid=draw(st.integers(0, 255)),
        priority=draw(st.integers(0, 255)),
        addresses=addrs,
        src=draw(_addr(alen)),
        dst=draw(_addr(alen)),
    )
    if version == 2:
        return AdvertSpec(
            adver_int=draw(st.integers(0, 255)),
            auth_type=draw(st.integers(0, 255)),
            auth_data=draw(st.binary(max_size=8)),
            **common,
        )
    return AdvertSpec(
        adver_int=draw(st.integers(0, 4095)),
        checksum_as_v2=family == socket.AF_INET and draw(st.booleans()),
        **common,
    )


def encode_with(mod: object, s: AdvertSpec) -> bytes:
    """Encode `s` with a module offering encode_v2/encode_v3 (_wire or struct_codec)."""
    if s.version == 2:
        return mod.encode_v2(
            s.vrid, s.priority, s.adver_int, list(s.addresses), s.auth_type, s.auth_data
        )  # type: ignore[attr-defined]
    return mod.encode_v3(  # type: ignore[attr-defined]
        s.vrid, s.priority, s.adver_int, list(s.addresses), s.family, s.src, s.dst, s.checksum_as_v2
    )


def random_spec(rng: random.Random, max_addresses: int = 12) -> AdvertSpec:
    """A uniformly random AdvertSpec from a seeded Random (for batches, e.g. one pcap)."""
    version = rng.choice((2, 3))
    family = socket.AF_INET if version == 2 else rng.choice((socket.AF_INET, socket.AF_INET6))
    alen = 4 if family == socket.AF_INET else 16
    common = dict(
        version=version,
        family=family,
        vrid=rng.randrange(256),
        priority=rng.randrange(256),
        addresses=tuple(rng.randbytes(alen) for _ in range(rng.randrange(max_addresses + 1))),
        src=rng.randbytes(alen),
        dst=rng.randbytes(alen),
    )
    if version == 2:
        return AdvertSpec(
            adver_int=rng.randrange(256),
            auth_type=rng.randrange(3),
            auth_data=rng.randbytes(rng.randrange(9)),
            **common,
        )
    return AdvertSpec(
        adver_int=rng.randrange(4096),
        checksum_as_v2=family == socket.AF_INET and rng.random() < 0.3,
        **common,
    )
