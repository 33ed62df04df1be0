"""DNS_CHECK (keepalived check_dns.c): one UDP query for `name`/`type` with recursion
desired; up when an answer with the query's id, QR set and RCODE NOERROR arrives within
connect_timeout. Datagrams with another id, or queries, are ignored as keepalived does."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import dns.message
import dns.rdatatype

from fastha.check.health import Outcome
from fastha.check.spec import DnsSpec
from fastha.probes import ProbeContext
from fastha.probes._net import describe_error, open_socket

_query_cache: dict[tuple[str, str], bytes] = {}


def query_bytes(spec: DnsSpec, qid: int) -> bytes:
    key = (spec.name, spec.qtype)
    wire = _query_cache.get(key)
    if wire is None:
        q = dns.message.make_query(spec.name, dns.rdatatype.from_text(spec.qtype))
        q.id = 0
        wire = _query_cache[key] = q.to_wire()
    return struct.pack("!H", qid) + wire[2:]


async def probe(spec: DnsSpec, ctx: ProbeContext) -> Outcome:
    ep = spec.endpoint
    loop = asyncio.get_running_loop()
    qid = int.from_bytes(os.urandom(2), "big")
    try:
        sock, addr = open_socket(ep, socket.SOCK_DGRAM)
    except OSError as exc:
        return Outcome(False, f"socket: {describe_error(exc)}")
    try:
        async with asyncio.timeout(ep.connect_timeout):
            sock.connect(addr)
            await loop.sock_sendall(sock, query_bytes(spec, qid))
            while True:
                data = await loop.sock_recv(sock, 4096)
                if len(data) < 12:
                    continue
                rid, flags = struct.unpack_from("!HH", data)
                if rid != qid or not flags & 0x8000:
                    continue
                rcode = flags & 0x000F
                if rcode:
                    return Outcome(False, f"error occurred. (rcode = {rcode})")
                return Outcome(True)
    except Exception as exc:
        return Outcome(False, describe_error(exc))
    finally:
        sock.close()
