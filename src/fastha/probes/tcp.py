"""TCP_CHECK: the server is up when a TCP connection is accepted within connect_timeout
(keepalived check_tcp.c: connect, then close)."""

from __future__ import annotations

import socket

from fastha.check.health import Outcome
from fastha.check.spec import TcpSpec
from fastha.probes import ProbeContext
from fastha.probes._net import connect, describe_error, open_socket

_OK = Outcome(True)


async def probe(spec: TcpSpec, ctx: ProbeContext) -> Outcome:
    try:
        sock, addr = open_socket(spec.endpoint, socket.SOCK_STREAM)
    except OSError as exc:
        return Outcome(False, f"socket: {describe_error(exc)}")
    try:
        await connect(sock, addr, spec.endpoint.connect_timeout)
    except Exception as exc:
        return Outcome(False, describe_error(exc))
    finally:
        sock.close()
    return _OK
