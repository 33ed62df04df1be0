"""The raw VRRP socket's receive side without a network: keepalived's vrrp_rx_bufs_*
resolved per instance, summed per socket, and the classic BPF VRID filter run by a small
independent interpreter (the real kernel is tests/system/test_drivers_sockets.py)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from pathlib import Path

import pytest

from fastha.config.loader import load
from fastha.drivers.vrrp_socket import DEFAULT_RCVBUF, rcvbuf_for, vrid_filter
from fastha.runtime.vrrp.from_config import InstanceSpec, vrrp_spec
from fastha.vrrp.rxbufs import RxBufs

CONF = """
global_defs {{
{globals}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 150
{extra}
    virtual_ipaddress {{
{vips}
    }}
}}
"""


def _spec(
    tmp_path: Path, globals_: str, extra: str = "", vips: Iterable[str] = ("198.18.0.100/24",)
) -> InstanceSpec:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        CONF.format(globals=globals_, extra=extra, vips="\n".join(f"        {v}" for v in vips))
    )
    result = load(conf)
    assert result.config is not None, [str(d) for d in result.diagnostics]
    (spec,) = vrrp_spec(result.config).instances
    return spec


@pytest.mark.parametrize(
    ("globals_", "extra", "vips", "want"),
    [
        ("", "", ("198.18.0.100/24",), RxBufs()),
        ("vrrp_rx_bufs_policy 300000", "", ("198.18.0.100/24",), RxBufs(size=300000)),
        # keepalived's vrrp_adv_len: IPv4 header + VRRP header + addresses (+ v2 auth data)
        ("vrrp_rx_bufs_policy ADVERT", "", ("198.18.0.100/24", "198.18.0.101/24"),
         RxBufs(size=3 * (20 + 8 + 2 * 4 + 8))),
        ("vrrp_rx_bufs_policy ADVERT\n vrrp_rx_bufs_multiplier 5", "    version 3",
         ("198.18.0.100/24",), RxBufs(size=5 * (20 + 8 + 4))),
        ("vrrp_rx_bufs_policy ADVERT", "", ("fd00::1/64",), RxBufs(size=3 * (8 + 16))),
        ("vrrp_rx_bufs_policy MTU\n vrrp_rx_bufs_multiplier 7", "", ("198.18.0.100/24",),
         RxBufs(mtu_multiplier=7)),
    ],
    ids=["none", "size", "advert-v2", "advert-v3-x5", "advert-v6", "mtu-x7"],
)  # fmt: skip
def test_rx_bufs_policy(
    tmp_path: Path, globals_: str, extra: str, vips: tuple[str, ...], want: RxBufs
) -> None:
    assert _spec(tmp_path, globals_, extra, vips).rx_bufs == want


def test_rcvbuf_per_socket() -> None:
    """keepalived adds every instance's share on a socket; no policy: our default."""
    assert rcvbuf_for({}, 1500) == DEFAULT_RCVBUF
    assert rcvbuf_for({1: RxBufs(), 2: RxBufs()}, 1500) == DEFAULT_RCVBUF
    assert rcvbuf_for({1: RxBufs(size=1000), 2: RxBufs(mtu_multiplier=3)}, 9000) == 28000


# -- the filter, run by an interpreter written from linux/filter.h ------------------------


def run_cbpf(prog: list[tuple[int, int, int, int]], pkt: bytes) -> int:
    """Classic BPF, the few instructions a VRID filter needs; an out-of-bounds load
    ends the program with 0, as the kernel does."""
    a = x = pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls, size, mode = code & 0x07, code & 0x18, code & 0xE0
        if cls == 0x06:  # BPF_RET | BPF_K
            return k
        if cls == 0x01 and mode == 0xA0 and size == 0x10:  # BPF_LDX | BPF_B | BPF_MSH
            if k >= len(pkt):
                return 0
            x = 4 * (pkt[k] & 0x0F)
        elif cls == 0x00 and size == 0x10 and mode in (0x20, 0x40):  # BPF_LD|BPF_B|ABS/IND
            off = k + (x if mode == 0x40 else 0)
            if off >= len(pkt):
                return 0
            a = pkt[off]
        elif cls == 0x05 and code & 0xF0 == 0x10:  # BPF_JMP | BPF_JEQ | BPF_K
            pc += jt if a == k else jf
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")


def _ipv4(payload: bytes, options: bytes = b"") -> bytes:
    ihl = (20 + len(options)) // 4
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload),
                       0, 0, 255, 112, 0, bytes(4), bytes(4))  # fmt: skip
    return head + options + payload


def _vrrp(vrid: int, first: int = 0x31) -> bytes:
    return bytes([first, vrid, 100, 1, 0, 1, 0, 0]) + bytes(4)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_vrid_filter_program(family: int) -> None:
    owned = {1, 51, 61, 255}

    def packet(msg: bytes, options: bytes = b"") -> bytes:
        return _ipv4(msg, options) if family == socket.AF_INET else msg

    prog = vrid_filter(family, owned)
    for vrid in range(256):
        for opts in (b"", b"\x01" * 4, b"\x01" * 40):  # IHL 5, 6, 15
            if family == socket.AF_INET6 and opts:
                continue
            got = run_cbpf(prog, packet(_vrrp(vrid), opts))
            assert bool(got) is (vrid in owned), (vrid, opts)
    # Version and type are the instance's to judge and count: they pass.
    assert run_cbpf(prog, packet(_vrrp(51, first=0x77)))
    # Too short to carry a VRID: dropped (the demultiplexer ignored these, uncounted).
    assert run_cbpf(prog, packet(b"\x31")) == 0
    assert run_cbpf(prog, packet(b"")) == 0
    # No VRID at all: nothing passes; every VRID: everything.
    assert run_cbpf(vrid_filter(family, ()), packet(_vrrp(51))) == 0
    every = vrid_filter(family, range(256))
    assert all(run_cbpf(every, packet(_vrrp(v))) for v in range(256))


def test_vrid_filter_rejects_bad_vrid() -> None:
    with pytest.raises(ValueError):
        vrid_filter(socket.AF_INET, [256])
