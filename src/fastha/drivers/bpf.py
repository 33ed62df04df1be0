"""Classic BPF socket filters (SO_ATTACH_FILTER): the instructions we use and attaching.

A filter runs in the kernel before a packet is queued, so packets nobody wants never
wake the event loop (VRRP for other routers, IPv6 that is not a Neighbor Advertisement).
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)

LD_B_ABS = 0x30  # A = pkt[k]
LD_B_IND = 0x50  # A = pkt[X + k]
LDX_B_MSH = 0xB1  # X = 4 * (pkt[k] & 0xf): the IPv4 header length
JEQ_K = 0x15  # pc += (A == k) ? jt : jf
RET_K = 0x06  # accept k bytes (0: drop)

Program = list[tuple[int, int, int, int]]  # struct sock_filter {code, jt, jf, k}
_SOCK_FILTER = struct.Struct("=HBBI")


def attach_filter(sock: socket.socket, prog: Program) -> None:
    """SO_ATTACH_FILTER; attaching again replaces the previous program atomically."""
    code = b"".join(_SOCK_FILTER.pack(*ins) for ins in prog)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog {unsigned short len; struct sock_filter *filter;}
    fprog = struct.pack("@HP", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
