"""HTTP_GET and SSL_GET (keepalived check_http.c).

Each url in turn: connect (TLS for SSL_GET, SNI = the virtual host with `enable_sni`),
send keepalived's request, read the response. The url passes when its status code is in
one of its `status_code` ranges (default 200-299), the MD5 of the body equals its
`digest` (hex, as `genhash` prints it: the raw bytes after the header, not de-chunked)
and its `regex` matches the body (or does not, with `regex_no_match`). The probe passes
when every url passes.

A real server is not trusted with the checker's memory or loop: the body is streamed,
its MD5 updated as it arrives and only the regex window kept (the REGEX_WINDOW bytes from
`regex_min_offset`; keepalived 2.2.7 matches as far as the body goes, in pieces), and
the regex runs in a worker thread with the GIL released (the `regex` module's
``concurrent``) and a time limit: a pattern that backtracks exponentially on what the
server sends fails the url ("regex timed out") instead of stopping the loop. (keepalived
bounds PCRE2 with its match limit.)

The request, byte for byte as keepalived sends it:

    GET /path HTTP/1.0\\r\\n
    User-Agent: KeepAliveClient\\r\\n
    [Connection: close\\r\\n]          (http_protocol 1.0C and 1.1)
    Host: <virtualhost | address[:port]>\\r\\n\\r\\n
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import regex

from fastha.check.health import Outcome
from fastha.check.spec import Endpoint, HttpSpec, UrlSpec
from fastha.config.model_lvs import HttpProtocol
from fastha.probes import ProbeContext
from fastha.probes._net import ProbeTimeout, connect, describe_error, open_socket

MAX_HEADER = 64 * 1024
# Bytes of the body the regex sees, from regex_min_offset: what is kept of a body.
REGEX_WINDOW = 1024 * 1024
# Kept before regex_min_offset too, so lookbehind and ^ see what precedes it there (the
# search starts at regex_min_offset, as keepalived's start_offset).
REGEX_LOOKBEHIND = 256
# A match that takes longer fails the url (fail closed, regex_no_match too).
REGEX_TIMEOUT_S = 0.5

_RE_FLAGS = {
    "caseless": regex.IGNORECASE,
    "multiline": regex.MULTILINE,
    "dotall": regex.DOTALL,
    "extended": regex.VERBOSE,
}
_regex_cache: dict[tuple[str, tuple[str, ...]], regex.Pattern[bytes]] = {}
# One thread for every url's regex: however many servers send pathological bodies, the
# matching takes at most one core (the loop keeps the other).
_regex_executor: ThreadPoolExecutor | None = None


def _regex_thread() -> ThreadPoolExecutor:
    global _regex_executor
    if _regex_executor is None:
        _regex_executor = ThreadPoolExecutor(1, thread_name_prefix="fastha-regex")
    return _regex_executor


def regex_of(url: UrlSpec) -> regex.Pattern[bytes]:
    key = (url.regex or "", url.regex_options)
    pat = _regex_cache.get(key)
    if pat is None:
        flags = 0
        for o in url.regex_options:
            flags |= _RE_FLAGS.get(o, 0)
        pat = _regex_cache[key] = regex.compile(key[0].encode(), flags)
    return pat


@dataclass(frozen=True, slots=True)
class Body:
    """What is kept of a response body: its length, its MD5 (when the url has a
    digest) and the regex window, which starts at body offset ``window_at``."""

    length: int
    md5: str | None = None
    window: bytes = b""
    window_at: int = 0


def regex_window(url: UrlSpec) -> tuple[int, int] | None:
    """The part of the body kept for the regex, [start, end) (None: no regex)."""
    if url.regex is None:
        return None
    start = url.regex_min_offset or 0
    return max(0, start - REGEX_LOOKBEHIND), start + REGEX_WINDOW


def request_bytes(spec: HttpSpec, url: UrlSpec) -> bytes:
    ep = spec.endpoint
    minor = 1 if spec.http_protocol is HttpProtocol.V1_1 else 0
    close = "" if spec.http_protocol is HttpProtocol.V1_0 else "Connection: close\r\n"
    if url.virtualhost:
        host = url.virtualhost
    else:
        default = 443 if spec.tls is not None else 80
        addr = f"[{ep.host}]" if ep.host.version == 6 else str(ep.host)
        host = addr if ep.port == default else f"{addr}:{ep.port}"
    return (
        f"GET {url.path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}"
        f"Host: {host}\r\n\r\n"
    ).encode("latin-1")


class _Response(asyncio.Protocol):
    """Collects one response; `done` resolves to (status, Body) once the server closes,
    the Content-Length is complete, or (status-only urls) the header is in. The body is
    never held: it is hashed as it arrives and only its ``window`` [start, end) kept."""

    def __init__(
        self,
        request: bytes,
        need_body: bool,
        *,
        md5: bool = False,
        window: tuple[int, int] | None = None,
    ) -> None:
        self.request = request
        self.need_body = need_body
        self.buf = bytearray()  # the header, then the regex window
        self.header_end = -1
        self.status = -1
        self.length: int | None = None
        self.got = 0  # body bytes seen
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.window = window
        self.done: asyncio.Future[tuple[int, Body]] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (create_connection), but uvloop's are not asyncio.Transport
        # subclasses: cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def _finish(self, exc: BaseException | None = None) -> None:
        if self.done.done():
            return
        if self.status < 0:
            self.done.set_exception(exc or ConnectionError("no HTTP response header"))
        else:
            md5 = self.md5.hexdigest() if self.md5 is not None else None
            at = self.window[0] if self.window is not None else 0
            body = Body(self.got, md5, bytes(self.buf), at)
            self.done.set_result((self.status, body))

    def _parse_header(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEADER:
                self.done.set_exception(ConnectionError("HTTP header too long"))
            return False
        head = bytes(self.buf[:end]).split(b"\r\n")
        parts = head[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self.done.set_exception(ConnectionError(f"bad status line {head[0][:80]!r}"))
            return False
        self.status = int(parts[1])
        self.header_end = end + 4
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                self.length = int(value.strip())
        return True

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if self.header_end < 0:
            self.buf += data
            if not self._parse_header():
                return
            data = bytes(self.buf[self.header_end :])
            self.buf.clear()
            if not self.need_body:
                self._finish()
                return
        self._body(data)
        if self.length is not None and self.got >= self.length:
            self._finish()

    def _body(self, data: bytes) -> None:
        if self.length is not None and self.got + len(data) > self.length:
            data = data[: self.length - self.got]
        at, self.got = self.got, self.got + len(data)
        if self.md5 is not None:
            self.md5.update(data)
        if self.window is None:
            return
        start, end = self.window
        lo = max(start, at) - at
        hi = min(end, self.got) - at
        if lo < hi:
            self.buf += data[lo:hi]

    def eof_received(self) -> bool | None:
        self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc)


def _search(pat: regex.Pattern[bytes], window: bytes, pos: int) -> int:
    """Where the first match starts (-1: none); runs in the regex thread, the GIL released."""
    # The thread inherits checker_rt_priority's SCHED_RR: a match that long without a
    # blocking call would trip RLIMIT_RTTIME, whose SIGKILL takes the whole checker.
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    m = pat.search(window, pos, timeout=REGEX_TIMEOUT_S, concurrent=True)
    return -1 if m is None else m.start()


async def check_body(url: UrlSpec, body: Body) -> str | None:
    """None when the body passes the url's digest and regex, else why not."""
    if url.digest is not None and body.md5 != url.digest:
        return f"MD5 digest error to [{url.path}], expected {url.digest} got {body.md5}"
    if url.regex is not None:
        try:
            pat = regex_of(url)
        except regex.error as exc:
            return f"bad regex on [{url.path}]: {exc}"
        loop = asyncio.get_running_loop()
        try:
            pos = (url.regex_min_offset or 0) - body.window_at
            at = await loop.run_in_executor(_regex_thread(), _search, pat, body.window, pos)
        except TimeoutError:
            return f"regex timed out on [{url.path}] after {REGEX_TIMEOUT_S:g} s"
        found = at >= 0
        if found and url.regex_max_offset is not None:
            found = body.window_at + at <= url.regex_max_offset
        if found == url.regex_no_match:
            return f"regex {'matched' if url.regex_no_match else 'did not match'} on [{url.path}]"
    return None


async def fetch(
    spec: HttpSpec, url: UrlSpec, ctx: ProbeContext, need_body: bool | None = None
) -> tuple[int, Body]:
    """One GET; raises OSError/ProbeTimeout/ConnectionError/ssl.SSLError on failure."""
    ep: Endpoint = spec.endpoint
    loop = asyncio.get_running_loop()
    plain = ep.bindto is None and ep.bind_port is None and not ep.bind_if and ep.fwmark is None
    sock: socket.socket | None = None
    if not plain:
        sock, addr = open_socket(ep, socket.SOCK_STREAM)
    transport = None
    try:
        if sock is not None:
            await connect(sock, addr, ep.connect_timeout)
        proto = _Response(
            request_bytes(spec, url),
            url.needs_body if need_body is None else need_body,
            md5=url.digest is not None,
            window=regex_window(url),
        )
        tls: ssl.SSLContext | None = None
        server_hostname: str | None = None
        handshake_timeout: float | None = None
        if spec.tls is not None:
            tls = ctx.tls_context(spec.tls)
            # An IP literal is never sent as SNI (and asyncio wants some name).
            sni = url.virtualhost if spec.enable_sni and url.virtualhost else None
            server_hostname = sni or str(ep.host)
            handshake_timeout = ep.connect_timeout
        async with asyncio.timeout(ep.connect_timeout):
            if sock is None:  # no socket options: the loop connects (cheaper in uvloop)
                transport, _ = await loop.create_connection(
                    lambda: proto,
                    str(ep.host),
                    ep.port,
                    ssl=tls,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=handshake_timeout,
                )
            else:
                transport, _ = await loop.create_connection(
                    lambda: proto,
                    sock=sock,
                    ssl=tls,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=handshake_timeout,
                )
                sock = None  # the transport owns it now
            return await proto.done
    except TimeoutError as exc:
        raise ProbeTimeout("timeout") from exc
    finally:
        if transport is not None:
            transport.abort() if spec.tls is None else transport.close()
        if sock is not None:
            sock.close()


async def probe(spec: HttpSpec, ctx: ProbeContext) -> Outcome:
    for url in spec.urls:
        try:
            status, body = await fetch(spec, url, ctx)
        except Exception as exc:
            return Outcome(False, f"{url.path}: {describe_error(exc)}")
        if not url.status_ok(status):
            return Outcome(False, f"HTTP status code error to [{url.path}]: {status}")
        why = await check_body(url, body)
        if why is not None:
            return Outcome(False, why)
    return Outcome(True)
