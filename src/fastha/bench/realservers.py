"""Real servers for ``fastha bench checkers``: N listeners on one address, one process.

    python -m fastha.bench.realservers --host 198.18.0.1 --base-port 20000 --count N
        --kind tcp|http|ssl [--cert FILE --key FILE]

Listens on ``base-port .. base-port + N - 1`` (uvloop), prints ``ready`` once all listen,
then answers one command per line on stdin with one JSON line on stdout:

- ``stats``: ``{"accepts": total, "excess_ms": [...]}``, where ``excess_ms`` is, for
  every connection accepted since the previous ``stats``, how much later than
  ``delay_loop`` after the previous connection to the same port it came (the gap
  between two probes of one real server minus delay_loop: the probe's start lateness
  against a delay_loop schedule, plus the previous probe's own duration, since both
  keepalived and fastha wait delay_loop after a probe ends);
- ``down I`` / ``up I``: stop / start listening on port ``base-port + I`` (probes of it
  then fail with a RST), answered with ``{"t_ns": CLOCK_MONOTONIC when it was done}``;
- EOF: exit.

Counted here, not by the daemons: the bench's check counts do not trust the
implementations it measures. ``tcp`` waits for the prober to close; ``http`` answers
any request with a 200 and closes; ``ssl`` is ``http`` behind TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time
from typing import cast

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class Counter:
    def __init__(self, count: int, delay_loop: float) -> None:
        self.accepts = 0
        self.last = [0] * count
        self.excess_ms: list[float] = []
        self.delay_ns = int(delay_loop * 1e9)

    def seen(self, i: int) -> None:
        now = time.monotonic_ns()
        self.accepts += 1
        if self.last[i]:
            self.excess_ms.append((now - self.last[i] - self.delay_ns) / 1e6)
        self.last[i] = now

    def stats(self) -> str:
        doc = {"accepts": self.accepts, "excess_ms": self.excess_ms}
        self.excess_ms = []
        return json.dumps(doc)


class _Tcp(asyncio.Protocol):
    def __init__(self, counter: Counter, i: int) -> None:
        counter.seen(i)


class _Http(asyncio.Protocol):
    def __init__(self, counter: Counter, i: int) -> None:
        counter.seen(i)
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.t.write(RESPONSE)
            self.t.close()


def raise_nofile(want: int = 1 << 18) -> None:
    """Room for every listener and connection (the guest's hard limit is 4096; root
    may raise it); else as far as the hard limit goes."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(a: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    counter = Counter(a.count, a.delay_loop)
    proto = _Tcp if a.kind == "tcp" else _Http
    ctx = None
    if a.kind == "ssl":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)

    async def listen(i: int) -> asyncio.Server:
        return await loop.create_server(
            lambda: proto(counter, i), a.host, a.base_port + i, backlog=256, ssl=ctx
        )

    servers = [await listen(i) for i in range(a.count)]
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while line := await reader.readline():
        word, _, arg = line.decode().strip().partition(" ")
        if word == "stats":
            answer = counter.stats()
        elif word == "down":  # stop listening: probes now get a RST
            servers[int(arg)].close()
            answer = json.dumps({"t_ns": time.monotonic_ns()})
        elif word == "up":
            servers[int(arg)] = await listen(int(arg))
            answer = json.dumps({"t_ns": time.monotonic_ns()})
        else:
            answer = json.dumps({"error": f"unknown command {word!r}"})
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--kind", choices=("tcp", "http", "ssl"), default="tcp")
    ap.add_argument("--delay-loop", type=float, default=1.0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args(argv)
    raise_nofile()
    import uvloop

    uvloop.run(serve(a))


if __name__ == "__main__":
    main()
