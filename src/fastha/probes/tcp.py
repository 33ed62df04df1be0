"""TCP_CHECK: the server is up when a TCP connection is accepted within connect_timeout
(keepalived check_tcp.c: connect, then close).

`start` is the callback form the scheduler runs (no coroutine per check: see
`_net.Connector`); `probe` awaits the same thing.
"""

from __future__ import annotations

import socket

from fastha.check.health import Outcome
from fastha.check.spec import TcpSpec
from fastha.probes import ProbeContext, ProbeDone, awaited
from fastha.probes._net import Connecting, describe_error, open_socket
from fastha.wire.timer import monotonic_ns

_OK = Outcome(True)


def start(
    spec: TcpSpec, ctx: ProbeContext, done: ProbeDone, now_ns: int | None = None
) -> Connecting | None:
    """Connect, close, then ``done(outcome, now_ns)``, exactly once (before this returns
    when the answer is immediate: then None; else the connect in flight, to cancel)."""
    ep = spec.endpoint
    try:
        sock, addr = open_socket(ep, socket.SOCK_STREAM)
    except OSError as exc:
        done(Outcome(False, f"socket: {describe_error(exc)}"), now_ns or monotonic_ns())
        return None

    def connected(exc: BaseException | None, now: int) -> None:
        sock.close()
        done(_OK if exc is None else Outcome(False, describe_error(exc)), now)

    try:
        return ctx.connects().connect(sock, addr, ep.connect_timeout, connected, now_ns)
    except OSError as exc:  # the epoll set refused it (ENOMEM, ENOSPC)
        sock.close()
        done(Outcome(False, describe_error(exc)), now_ns or monotonic_ns())
        return None


async def probe(spec: TcpSpec, ctx: ProbeContext) -> Outcome:
    return await awaited(start, spec, ctx)
