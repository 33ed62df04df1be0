"""HTTP_GET and SSL_GET (keepalived check_http.c).

Each url in turn: connect (TLS for SSL_GET, SNI = the virtual host with `enable_sni`),
send keepalived's request, read the response. The url passes when its status code is in
one of its `status_code` ranges (default 200-299), the MD5 of the body equals its
`digest` (hex, as `genhash` prints it: the raw bytes after the header, not de-chunked)
and its `regex` matches the body (or does not, with `regex_no_match`). The probe passes
when every url passes.

The request, byte for byte as keepalived sends it:

    GET /path HTTP/1.0\\r\\n
    User-Agent: KeepAliveClient\\r\\n
    [Connection: close\\r\\n]          (http_protocol 1.0C and 1.1)
    Host: <virtualhost | address[:port]>\\r\\n\\r\\n
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket

from fastha.check.health import Outcome
from fastha.check.probes import ProbeContext
from fastha.check.probes._net import ProbeTimeout, connect, describe_error, open_socket
from fastha.check.spec import Endpoint, HttpProtocol, HttpSpec, UrlSpec

MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024  # keepalived reads it all; we bound it

_RE_FLAGS = {
    "caseless": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
}
_regex_cache: dict[tuple[str, tuple[str, ...]], re.Pattern[bytes]] = {}


def regex_of(url: UrlSpec) -> re.Pattern[bytes]:
    key = (url.regex or "", url.regex_options)
    pat = _regex_cache.get(key)
    if pat is None:
        flags = 0
        for o in url.regex_options:
            flags |= _RE_FLAGS.get(o, 0)
        pat = _regex_cache[key] = re.compile(key[0].encode(), flags)
    return pat


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
    """Collects one response; `done` resolves to (status, body) once the server closes,
    the Content-Length is complete, or (status-only urls) the header is in."""

    def __init__(self, request: bytes, need_body: bool) -> None:
        self.request = request
        self.need_body = need_body
        self.buf = bytearray()
        self.header_end = -1
        self.status = -1
        self.length: int | None = None
        self.done: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: duck-typed.
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def _finish(self, exc: BaseException | None = None) -> None:
        if self.done.done():
            return
        if self.status < 0:
            self.done.set_exception(exc or ConnectionError("no HTTP response header"))
        else:
            self.done.set_result((self.status, bytes(self.buf[self.header_end :])))

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
        self.buf += data
        if self.header_end < 0 and not self._parse_header():
            return
        if not self.need_body:
            self._finish()
        elif self.length is not None and len(self.buf) - self.header_end >= self.length:
            del self.buf[self.header_end + self.length :]
            self._finish()
        elif len(self.buf) - self.header_end > MAX_BODY:
            self.done.set_exception(ConnectionError("HTTP body too long"))

    def eof_received(self) -> bool | None:
        self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc)


def check_body(url: UrlSpec, body: bytes) -> str | None:
    """None when the body passes the url's digest and regex, else why not."""
    if url.digest is not None:
        got = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if got != url.digest:
            return f"MD5 digest error to [{url.path}], expected {url.digest} got {got}"
    if url.regex is not None:
        start = url.regex_min_offset or 0
        m = regex_of(url).search(body, start)
        if m is not None and url.regex_max_offset is not None and m.start() > url.regex_max_offset:
            m = None
        if (m is None) != url.regex_no_match:
            return f"regex {'matched' if url.regex_no_match else 'did not match'} on [{url.path}]"
    return None


async def fetch(
    spec: HttpSpec, url: UrlSpec, ctx: ProbeContext, need_body: bool | None = None
) -> tuple[int, bytes]:
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
            request_bytes(spec, url), url.needs_body if need_body is None else need_body
        )
        kw: dict[str, object] = {}
        if spec.tls is not None:
            kw["ssl"] = ctx.tls_context(spec.tls)
            # An IP literal is never sent as SNI (and asyncio wants some name).
            sni = url.virtualhost if spec.enable_sni and url.virtualhost else None
            kw["server_hostname"] = sni or str(ep.host)
            kw["ssl_handshake_timeout"] = ep.connect_timeout
        async with asyncio.timeout(ep.connect_timeout):
            if sock is None:  # no socket options: the loop connects (cheaper in uvloop)
                where = {"host": str(ep.host), "port": ep.port}
                transport, _ = await loop.create_connection(lambda: proto, **where, **kw)
            else:
                transport, _ = await loop.create_connection(lambda: proto, sock=sock, **kw)
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
        why = check_body(url, body)
        if why is not None:
            return Outcome(False, why)
    return Outcome(True)
