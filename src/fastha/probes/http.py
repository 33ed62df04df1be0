"""HTTP_GET and SSL_GET (keepalived check_http.c).

Each url in turn: connect (TLS for SSL_GET, SNI = the virtual host with `enable_sni`),
send keepalived's request, read the response. The url passes when its status code is in
one of its `status_code` ranges (default 200-299), the MD5 of the body equals its
`digest` (hex, as `genhash` prints it: the raw bytes after the header, not de-chunked,
up to the Content-Length when there is one, as check_http.c http_process_response) and
its `regex` matches the body (or does not, with `regex_no_match`). The probe passes
when every url passes.

`start` is the callback form the scheduler runs, on the probes' `Connector` as TCP_CHECK
(no Task, Future, transport or loop timer per check): a non-blocking socket, its connect
and then its answer watched in the Connector's epoll set (one ``epoll_ctl`` each), the
request sent with one ``send``, the answer read with one ``recv`` per segment the server
wrote, the socket closed once the answer is complete: at the header for a url with
neither digest nor regex, at the Content-Length, else at the server's close. Deadlines
as check_http.c sets them: connect and TLS handshake within connect_timeout of the
connect's start, the answer's first bytes within connect_timeout of the request, then
(HTTP_GET) each further read within connect_timeout of the one before, (SSL_GET) the
whole answer within that first one. TLS runs on
an `ssl.SSLObject` over two `MemoryBIO`s: the handshake's flights and the request leave
with one ``send`` each, and what the server sent is decrypted from one ``recv`` (OpenSSL
on the socket reads each record's header and body with a read each). As keepalived
(``SSL_set_quiet_shutdown``), no close_notify is sent. `probe` awaits the same thing.

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

import contextlib
import os
import re
import select
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastha.check.health import Outcome
from fastha.check.spec import HttpSpec, UrlSpec
from fastha.config.model_lvs import HttpProtocol
from fastha.probes import ProbeContext, ProbeDone, awaited
from fastha.probes._net import ConnectDone, Connecting, describe_error, open_socket
from fastha.wire.timer import monotonic_ns

if TYPE_CHECKING:
    import ssl

    import regex
else:
    ssl = None  # the module, bound by the first SSL_GET (_tls_module)
    regex = None  # the module, bound by the first url with a regex (regex_of)

# The digest's MD5 from CPython's own implementation: hashlib's maps OpenSSL's libcrypto
# (~3.7 MB of RSS) for the same result, hardly faster (4 KiB: 6.1 vs 6.3 µs).
try:
    from _md5 import md5 as _new_md5  # type: ignore[import-not-found]  # CPython-private: no stub
except ImportError:  # a Python built without it
    from hashlib import md5 as _new_md5

MAX_HEADER = 64 * 1024
# Bytes asked of one recv: a loopback answer (header and a small page) in one read.
RECV_SIZE = 64 * 1024
# Bytes of the body the regex sees, from regex_min_offset: what is kept of a body.
REGEX_WINDOW = 1024 * 1024
# Kept before regex_min_offset too, so lookbehind and ^ see what precedes it there (the
# search starts at regex_min_offset, as keepalived's start_offset).
REGEX_LOOKBEHIND = 256
# A match that takes longer fails the url (fail closed, regex_no_match too).
REGEX_TIMEOUT_S = 0.5

# regex_options -> the regex module's flag (its name: the module loads with the first
# url that has a regex; ~1.4 MB of RSS that most HTTP_GETs never use).
_RE_FLAGS = {
    "caseless": "IGNORECASE",
    "multiline": "MULTILINE",
    "dotall": "DOTALL",
    "extended": "VERBOSE",
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


def _tls_module() -> None:
    """``ssl`` here, at the first SSL_GET: OpenSSL (~4.5 MB of RSS) stays out of a
    checker without one (its loop runs without TLS: fastha.runtime.notls)."""
    global ssl
    import ssl


def regex_of(url: UrlSpec) -> regex.Pattern[bytes]:
    """The url's compiled pattern (``regex.error`` when it does not compile)."""
    global regex
    key = (url.regex or "", url.regex_options)
    pat = _regex_cache.get(key)
    if pat is None:
        import regex

        flags = 0
        for o in url.regex_options:
            if o in _RE_FLAGS:
                flags |= getattr(regex, _RE_FLAGS[o])
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


# id(url) -> (url, spec, request): a check sends the same request every delay_loop, and
# hashing the frozen specs to look it up would cost more than building it. Identity is
# checked, so an id reused after a reload cannot return another spec's request.
_requests: dict[int, tuple[UrlSpec, HttpSpec, bytes]] = {}


def _request(spec: HttpSpec, url: UrlSpec) -> bytes:
    hit = _requests.get(id(url))
    if hit is not None and hit[0] is url and hit[1] is spec:
        return hit[2]
    if len(_requests) >= 1 << 16:
        _requests.clear()
    req = request_bytes(spec, url)
    _requests[id(url)] = (url, spec, req)
    return req


_CONTENT_LENGTH = b"Content-Length:"
# strtoul after it: leading white space, a sign, digits.
_LENGTH_VALUE = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def status_code(head: bytes) -> int:
    """lib/html.c extract_status_code: the three digits between the first space of the
    response and a space after them; 0 (no status, a status code error) otherwise."""
    sp = head.find(b" ")
    cr = head.find(b"\r")
    if sp < 0 or 0 <= cr < sp:
        return 0
    code = head[sp + 1 : sp + 4]
    if len(head) < sp + 5 or head[sp + 4] != 0x20 or not code.isdigit():
        return 0  # (strtoul's sign or blank there can only give a code below 100)
    return int(code)


def content_length(head: bytes) -> int | None:
    """lib/html.c extract_content_length: the value after ``Content-Length:`` spelled so
    (case-sensitive, as keepalived's strstr), ending its line; None (the body runs to the
    server's close) otherwise. keepalived searches the whole first read, body included;
    this, the header only."""
    at = head.find(_CONTENT_LENGTH)
    if at < 0:
        return None
    rest = head[at + len(_CONTENT_LENGTH) :]
    m = _LENGTH_VALUE.match(rest)
    if m is None:  # no digits: strtoul gives 0 and points at what follows the colon
        return 0 if rest[:1] in (b"\r", b"\n", b"") else None
    if rest[m.end() : m.end() + 1] not in (b"\r", b"\n", b""):
        return None
    n = int(m.group(2))
    return None if m.group(1) == b"-" and n else n  # a negative one wraps: no limit


class _Response:
    """Reads one response as it arrives: `feed` each piece, `eof` at the server's close;
    then `result()` is (status, Body) or raises why there is none. Complete (`feed`
    returns True) once the header is in for a url that needs no body, or at the
    Content-Length. The body is never held: it is hashed as it arrives and only its
    ``window`` [start, end) kept."""

    __slots__ = (
        "buf",
        "error",
        "got",
        "header_end",
        "length",
        "md5",
        "need_body",
        "status",
        "window",
    )

    def __init__(
        self, need_body: bool, *, md5: bool = False, window: tuple[int, int] | None = None
    ) -> None:
        self.need_body = need_body
        self.buf = bytearray()  # the header (when it came in pieces), then the regex window
        self.header_end = -1
        self.status = -1
        self.length: int | None = None
        self.got = 0  # body bytes seen
        self.md5 = _new_md5(usedforsecurity=False) if md5 else None
        self.window = window
        self.error: BaseException | None = None

    def feed(self, data: bytes) -> bool:
        """Take the next piece; True once the response is complete or broken (`error`)."""
        if self.header_end < 0:
            if self.buf:
                self.buf += data
                data = bytes(self.buf)
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEADER:
                    self.error = ConnectionError("HTTP header too long")
                    return True
                if not self.buf:
                    self.buf += data
                return False
            self.buf.clear()
            self._parse_header(data[: end + 2])
            self.header_end = end + 4
            if not self.need_body:
                return True
            data = data[end + 4 :]
        self._body(data)
        return self.length is not None and self.got >= self.length

    def _parse_header(self, head: bytes) -> None:
        self.status = status_code(head)
        if self.need_body:
            self.length = content_length(head)

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

    def result(self, exc: BaseException | None = None) -> tuple[int, Body]:
        """(status, Body); raises the parse error, or ``exc`` (how the connection ended)
        or ConnectionError when no header came."""
        if self.error is not None:
            raise self.error
        if self.status < 0:
            raise exc or ConnectionError("no HTTP response header")
        md5 = self.md5.hexdigest() if self.md5 is not None else None
        at = self.window[0] if self.window is not None else 0
        return self.status, Body(self.got, md5, bytes(self.buf), at)


def _search(pat: regex.Pattern[bytes], window: bytes, pos: int) -> int:
    """Where the first match starts (-1: none); runs in the regex thread, the GIL released."""
    # The thread inherits checker_rt_priority's SCHED_RR: a match that long without a
    # blocking call would trip RLIMIT_RTTIME, whose SIGKILL takes the whole checker.
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    m = pat.search(window, pos, timeout=REGEX_TIMEOUT_S, concurrent=True)
    return -1 if m is None else m.start()


def check_status_digest(url: UrlSpec, status: int, body: Body) -> str | None:
    """None when the status code and the digest pass (check_http.c's order), else why not."""
    if not url.status_ok(status):
        return f"HTTP status code error to [{url.path}]: {status}"
    if url.digest is not None and body.md5 != url.digest:
        return f"MD5 digest error to [{url.path}], expected {url.digest} got {body.md5}"
    return None


def regex_verdict(url: UrlSpec, body: Body, at: int) -> str | None:
    """None when a match at ``at`` (-1: none) in the window passes the url's regex."""
    found = at >= 0
    if found and url.regex_max_offset is not None:
        found = body.window_at + at <= url.regex_max_offset
    if found == url.regex_no_match:
        return f"regex {'matched' if url.regex_no_match else 'did not match'} on [{url.path}]"
    return None


def _regex_failure(url: UrlSpec, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"regex timed out on [{url.path}] after {REGEX_TIMEOUT_S:g} s"
    return f"regex error on [{url.path}]: {exc!r}"


_OK = Outcome(True)
_IN = select.EPOLLIN


class _Get:
    """One HTTP_GET / SSL_GET probe in flight: its urls one after the other, each on a
    socket of its own (as keepalived), every step a callback of the Connector."""

    __slots__ = (
        "conn", "ctx", "deadline", "done", "ended", "i", "inc", "out", "resp", "sock", "spec",
        "tls", "url",
    )  # fmt: skip  # the names fill two lines, not thirteen

    def __init__(self, spec: HttpSpec, ctx: ProbeContext, done: ProbeDone) -> None:
        self.spec = spec
        self.ctx = ctx
        self.done = done
        self.i = 0
        self.url = spec.urls[0]
        self.sock: socket.socket | None = None
        self.conn: Connecting | None = None
        self.resp: _Response | None = None
        self.tls: ssl.SSLObject | None = None
        self.inc: ssl.MemoryBIO | None = None
        self.out: ssl.MemoryBIO | None = None
        self.deadline = 0
        self.ended = False

    # ------------------------------------------------------------ the steps

    def open(self, now: int) -> None:
        """Connect for the current url."""
        ep = self.spec.endpoint
        url = self.url
        try:
            sock, addr = open_socket(ep, socket.SOCK_STREAM)
        except OSError as exc:
            self._fail(exc, now)
            return
        self.sock = sock
        self.deadline = now + int(ep.connect_timeout * 1e9)  # the connect's (and handshake's)
        self.resp = _Response(url.needs_body, md5=url.digest is not None, window=regex_window(url))
        try:
            c = self.ctx.connects().connect(sock, addr, ep.connect_timeout, self._connected, now)
        except OSError as exc:  # the epoll set refused it (ENOMEM, ENOSPC)
            self._fail(exc, now)
            return
        if c is not None:
            self.conn = c

    def _connected(self, exc: BaseException | None, now: int) -> None:
        if exc is not None:
            self._fail(exc, now)
            return
        spec = self.spec
        try:
            if spec.tls is not None:
                _tls_module()  # (against a handshake: free)
                self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
                url = self.url
                # An IP literal is never sent as SNI.
                sni = url.virtualhost if spec.enable_sni and url.virtualhost else None
                ctx = self.ctx.tls_context(spec.tls)
                self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
                self._handshake(now)
                return
            assert self.sock is not None
            req = _request(spec, self.url)
            if self.sock.send(req) != len(req):
                raise ConnectionError("request not sent whole")
            self._wait(self._readable, now)
        except Exception as e:  # OSError, ssl.SSLError
            self._broke(e, now)

    def _wait(self, then: ConnectDone, now: int | None = None) -> None:
        """``then`` once the socket is readable, or ProbeTimeout at the deadline: the one
        set so far, or (``now`` given) connect_timeout from ``now``."""
        assert self.sock is not None
        if now is not None:
            self.deadline = now + int(self.spec.endpoint.connect_timeout * 1e9)
        self.conn = self.ctx.connects().wait(self.sock, _IN, self.deadline, then, self.conn)

    def _handshake(self, now: int) -> None:
        tls = self.tls
        assert tls is not None and self.out is not None and self.sock is not None
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            self._wait(self._handshake_readable)
            return
        # Done: the request leaves with the handshake's last flight, in one send.
        tls.write(_request(self.spec, self.url))
        self._flush()
        self._wait(self._readable, now)

    def _flush(self) -> None:
        assert self.out is not None and self.sock is not None
        data = self.out.read()
        if data and self.sock.send(data) != len(data):
            raise ConnectionError("TLS record not sent whole")

    def _handshake_readable(self, exc: BaseException | None, now: int) -> None:
        try:
            if exc is not None:
                raise exc
            assert self.sock is not None and self.inc is not None
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                self._wait(self._handshake_readable)
                return
            if not data:
                raise ConnectionResetError("connection closed during the TLS handshake")
            self.inc.write(data)
            self._handshake(now)
        except Exception as e:
            self._broke(e, now)

    def _readable(self, exc: BaseException | None, now: int) -> None:
        resp, sock = self.resp, self.sock
        assert resp is not None and sock is not None
        try:
            if exc is not None:
                raise exc
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                self._wait(self._readable)
                return
            except OSError as e:  # reset: what came before it may be a whole answer
                self._answer(resp.result(e), now)
                return
            if self.tls is None:
                if not data or resp.feed(data):
                    self._answer(resp.result(), now)
                else:
                    self._wait(self._readable, now)
                return
            self._tls_data(data, now)
        except Exception as e:
            self._broke(e, now)

    def _tls_data(self, data: bytes, now: int) -> None:
        tls, inc, resp = self.tls, self.inc, self.resp
        assert tls is not None and inc is not None and resp is not None
        if data:
            inc.write(data)
        else:
            inc.write_eof()
        while True:
            try:
                plain = tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # close_notify, or EOF
                plain = b""
            except ssl.SSLError:
                if resp.status < 0:
                    raise
                plain = b""  # a broken end after the answer began: judge what came
            if not plain:
                self._answer(resp.result(), now)
                return
            if resp.feed(plain):
                self._answer(resp.result(), now)
                return
        if not data:
            self._answer(resp.result(), now)
            return
        self._wait(self._readable)

    def _answer(self, got: tuple[int, Body], now: int) -> None:
        """The current url's response is in (the socket is done with)."""
        self._close_socket()
        status, body = got
        url = self.url
        why = check_status_digest(url, status, body)
        if why is not None:
            self._end(Outcome(False, why), now)
            return
        if url.regex is None:
            self._next(now)
            return
        try:
            pat = regex_of(url)
        except regex.error as exc:
            self._end(Outcome(False, f"bad regex on [{url.path}]: {exc}"), now)
            return
        pos = (url.regex_min_offset or 0) - body.window_at
        fut = _regex_thread().submit(_search, pat, body.window, pos)
        loop = self.ctx.connects().loop

        def matched(f: Future[int]) -> None:  # in the regex thread: back to the loop
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._matched, f, body)

        fut.add_done_callback(matched)

    def _matched(self, fut: Future[int], body: Body) -> None:
        now = monotonic_ns()
        if self.ended:
            return
        try:
            why = regex_verdict(self.url, body, fut.result())
        except Exception as exc:
            why = _regex_failure(self.url, exc)
        if why is not None:
            self._end(Outcome(False, why), now)
        else:
            self._next(now)

    def _next(self, now: int) -> None:
        """The url passed: the next one, or the probe passed."""
        self.i += 1
        if self.i >= len(self.spec.urls):
            self._end(_OK, now)
            return
        self.url = self.spec.urls[self.i]
        self.conn = None
        self.tls = self.inc = self.out = None
        self.open(now)

    # ------------------------------------------------------------ endings

    def _fail(self, exc: BaseException, now: int) -> None:
        self._close_socket()
        self._end(Outcome(False, f"{self.url.path}: {describe_error(exc)}"), now)

    def _broke(self, exc: Exception, now: int) -> None:
        """A step raised: the url fails, unless ``done`` itself raised (then the
        Connector reports it to the loop's exception handler)."""
        if self.ended:
            raise exc
        self._fail(exc, now)

    def _end(self, outcome: Outcome, now: int) -> None:
        if self.ended:
            return
        self.ended = True
        self.done(outcome, now)

    def _close_socket(self) -> None:
        c, self.conn = self.conn, None
        if c is not None:
            c.cancel()  # out of the Connector's set if it still waits, and closed
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def cancel(self) -> None:
        """Forget the probe: its socket closed, ``done`` never called."""
        self.ended = True
        self._close_socket()


def start(
    spec: HttpSpec, ctx: ProbeContext, done: ProbeDone, now_ns: int | None = None
) -> _Get | None:
    """GET every url, then ``done(outcome, now_ns)``, exactly once (before this returns
    when the answer is immediate: then None; else the probe in flight, to cancel)."""
    g = _Get(spec, ctx, done)
    g.open(monotonic_ns() if now_ns is None else now_ns)
    return None if g.ended else g


async def probe(spec: HttpSpec, ctx: ProbeContext) -> Outcome:
    return await awaited(start, spec, ctx)
