"""PING_CHECK (keepalived check_ping.c): one ICMP / ICMPv6 echo request; up when the
matching echo reply arrives within connect_timeout.

An unprivileged datagram ICMP socket is used when net.ipv4.ping_group_range allows it
(the kernel then owns the identifier and delivers only our replies); otherwise a raw
socket (CAP_NET_RAW), where replies are matched on identifier and sequence."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct

from fastha.check.health import Outcome
from fastha.check.spec import PingSpec
from fastha.probes import ProbeContext
from fastha.probes._net import SockAddr, describe_error, open_socket

ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129

_seq = itertools.count(1)
_ident = os.getpid() & 0xFFFF
_dgram_ok: dict[int, bool] = {}


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(v6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    t = ICMP6_ECHO if v6 else ICMP_ECHO
    head = struct.pack("!BBHHH", t, 0, 0, ident, seq)
    if v6:  # the kernel fills in the ICMPv6 checksum (pseudo-header)
        return head + payload
    csum = inet_checksum(head + payload)
    return struct.pack("!BBHHH", t, 0, csum, ident, seq) + payload


def _open(spec: PingSpec) -> tuple[socket.socket, SockAddr, bool]:
    v6 = spec.endpoint.host.version == 6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    if _dgram_ok.get(proto, True):
        try:
            sock, addr = open_socket(spec.endpoint, socket.SOCK_DGRAM, proto)
            _dgram_ok[proto] = True
            return sock, addr, False
        except PermissionError:
            _dgram_ok[proto] = False
    sock, addr = open_socket(spec.endpoint, socket.SOCK_RAW, proto)
    return sock, addr, True


def is_reply(data: bytes, v6: bool, raw: bool, ident: int, seq: int, payload: bytes) -> bool:
    if raw and not v6:  # IPv4 raw sockets see the IP header
        if len(data) < 20:
            return False
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8:
        return False
    t, _code, _csum, rid, rseq = struct.unpack_from("!BBHHH", data)
    want = ICMP6_ECHOREPLY if v6 else ICMP_ECHOREPLY
    if t != want or rseq != seq or data[8:] != payload:
        return False
    return not raw or rid == ident


async def probe(spec: PingSpec, ctx: ProbeContext) -> Outcome:
    loop = asyncio.get_running_loop()
    v6 = spec.endpoint.host.version == 6
    seq = next(_seq) & 0xFFFF
    payload = os.urandom(8)
    try:
        sock, addr, raw = _open(spec)
    except OSError as exc:
        return Outcome(False, f"socket: {describe_error(exc)}")
    try:
        addr = (addr[0], 0, 0, addr[3]) if len(addr) == 4 else (addr[0], 0)
        sock.connect(addr)
        await loop.sock_sendall(sock, echo_request(v6, _ident, seq, payload))
        async with asyncio.timeout(spec.endpoint.connect_timeout):
            while True:
                data = await loop.sock_recv(sock, 2048)
                if is_reply(data, v6, raw, _ident, seq, payload):
                    return Outcome(True)
    except Exception as exc:
        return Outcome(False, describe_error(exc))
    finally:
        sock.close()
