"""SMTP_CHECK (keepalived check_smtp.c): read the 220 greeting, send `HELO helo_name`,
expect 250, send QUIT. Multi-line replies (`250-...`) are read to their last line. The
whole exchange is bounded by connect_timeout."""

from __future__ import annotations

import asyncio
import socket

from fastha.check.health import Outcome
from fastha.check.spec import SmtpSpec
from fastha.probes import ProbeContext
from fastha.probes._net import connect, describe_error, open_socket

MAX_LINE = 4096


async def _reply(reader: asyncio.StreamReader) -> int:
    """The code of one (possibly multi-line) SMTP reply."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 3 or not line[:3].isdigit():
            raise ConnectionError(f"bad SMTP reply {line[:80]!r}")
        if line[3:4] != b"-":
            return int(line[:3])


async def probe(spec: SmtpSpec, ctx: ProbeContext) -> Outcome:
    ep = spec.endpoint
    writer = None
    try:
        sock, addr = open_socket(ep, socket.SOCK_STREAM)
    except OSError as exc:
        return Outcome(False, f"socket: {describe_error(exc)}")
    try:
        async with asyncio.timeout(ep.connect_timeout):
            await connect(sock, addr, ep.connect_timeout)
            reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_LINE)
            code = await _reply(reader)
            if code != 220:
                return Outcome(False, f"bad greeting {code}")
            writer.write(f"HELO {spec.helo_name}\r\n".encode())
            code = await _reply(reader)
            if code != 250:
                return Outcome(False, f"HELO answered {code}")
            writer.write(b"QUIT\r\n")
            await writer.drain()
    except Exception as exc:
        return Outcome(False, describe_error(exc))
    finally:
        if writer is not None:
            writer.transport.abort()
        else:
            sock.close()
    return Outcome(True)
