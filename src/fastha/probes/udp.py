"""UDP_CHECK (keepalived check_udp.c): send the payload (random when none is set) on a
connected UDP socket. Without `require_reply` the server is up unless an ICMP
port-unreachable (ECONNREFUSED) comes back within connect_timeout. With it, a reply
must arrive whose length is within min/max_reply_length and whose leading bytes match
the hex pattern (`x` nibbles match anything; an empty pattern matches any reply)."""

from __future__ import annotations

import asyncio
import os
import socket

from fastha.check.health import Outcome
from fastha.check.spec import UdpSpec
from fastha.probes import ProbeContext
from fastha.probes._net import describe_error, open_socket


def reply_matches(pattern: str, reply: bytes) -> bool:
    nibbles = reply.hex()
    if len(nibbles) < len(pattern):
        return False
    return all(p in "xX" or p.lower() == n for p, n in zip(pattern, nibbles, strict=False))


async def probe(spec: UdpSpec, ctx: ProbeContext) -> Outcome:
    ep = spec.endpoint
    loop = asyncio.get_running_loop()
    payload = spec.payload if spec.payload is not None else os.urandom(16)
    try:
        sock, addr = open_socket(ep, socket.SOCK_DGRAM)
    except OSError as exc:
        return Outcome(False, f"socket: {describe_error(exc)}")
    try:
        sock.connect(addr)
        await loop.sock_sendall(sock, payload)
        try:
            async with asyncio.timeout(ep.connect_timeout):
                reply = await loop.sock_recv(sock, 65535)
        except TimeoutError:
            if spec.require_reply is None:
                return Outcome(True)
            return Outcome(False, "no reply")
        if spec.require_reply is None:
            return Outcome(True)
        if not spec.min_reply_length <= len(reply) <= spec.max_reply_length:
            return Outcome(False, f"reply length {len(reply)} out of range")
        if not reply_matches(spec.require_reply, reply):
            return Outcome(False, "reply does not match")
        return Outcome(True)
    except Exception as exc:
        return Outcome(False, describe_error(exc))
    finally:
        sock.close()
