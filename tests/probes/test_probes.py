"""Every probe against real servers on loopback: up, down, and the ways servers fail
(refuse, hang, reset, answer slowly, answer the wrong status, body, rcode or reply)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller

from fastha.check.health import Outcome
from fastha.check.spec import (
    DnsSpec,
    FileSpec,
    HttpSpec,
    MiscSpec,
    PingSpec,
    SmtpSpec,
    StatusRange,
    TcpSpec,
    TlsSpec,
    UdpSpec,
    UrlSpec,
)
from fastha.config.model_lvs import HttpProtocol
from fastha.probes import ProbeContext, run_probe
from fastha.probes import file as file_probe
from fastha.probes import http as http_probe
from fastha.probes import ping as ping_probe
from fastha.probes import udp as udp_probe

from .conftest import ep, run
from .servers import BODY, DnsServer, FullBacklog, HttpServer, free_port

pytestmark = pytest.mark.unit


def probe(spec, ctx: ProbeContext | None = None) -> Outcome:
    async def go() -> Outcome:
        c = ctx or ProbeContext()
        try:
            return await run_probe(spec, c)
        finally:
            if c.scripts is not None:
                await c.scripts.close()

    return run(go())


# ---------------------------------------------------------------- TCP


@pytest.fixture
def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


def test_tcp_up_and_refused(listener: socket.socket) -> None:
    assert probe(TcpSpec(endpoint=ep(listener.getsockname()[1]))).ok
    out = probe(TcpSpec(endpoint=ep(free_port())))
    assert not out.ok and "refused" in out.reason.lower()


def test_tcp_ipv6_and_bindto() -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    s.listen(4)
    try:
        import ipaddress

        spec = TcpSpec(endpoint=ep(s.getsockname()[1], "::1", bindto=ipaddress.ip_address("::1")))
        assert probe(spec).ok
    finally:
        s.close()


def test_tcp_connect_timeout_on_a_full_backlog() -> None:
    fb = FullBacklog()
    try:
        out = probe(TcpSpec(endpoint=ep(fb.port, timeout=0.3)))
        assert not out.ok and out.reason == "timeout"
    finally:
        fb.close()


# ---------------------------------------------------------------- HTTP_GET


@pytest.fixture(scope="module")
def http():
    s = HttpServer()
    yield s
    s.close()


def hspec(port: int, *urls: UrlSpec, timeout: float = 2.0, **kw) -> HttpSpec:
    return HttpSpec(endpoint=ep(port, timeout=timeout), urls=urls, **kw)


def url(path: str, **kw) -> UrlSpec:
    kw.setdefault("status", (StatusRange(lo=200, hi=299),))
    return UrlSpec(path=path, **kw)


def test_http_status_codes(http: HttpServer) -> None:
    assert probe(hspec(http.port, url("/ok"))).ok
    out = probe(hspec(http.port, url("/missing")))
    assert not out.ok and "404" in out.reason
    assert not probe(hspec(http.port, url("/status/503"))).ok
    ranges = (StatusRange(lo=500, hi=503),)
    assert probe(hspec(http.port, url("/status/503", status=ranges))).ok
    assert not probe(hspec(http.port, url("/redirect"))).ok
    assert probe(hspec(http.port, url("/redirect", status=(StatusRange(lo=302, hi=302),)))).ok


def test_http_digest_as_genhash_prints_it(http: HttpServer) -> None:
    good = hashlib.md5(BODY).hexdigest()
    assert probe(hspec(http.port, url("/ok", digest=good))).ok
    assert probe(hspec(http.port, url("/nolength", digest=good))).ok  # body until close
    out = probe(hspec(http.port, url("/ok", digest="0" * 32)))
    assert not out.ok and "MD5 digest error" in out.reason


def test_http_every_url_must_pass(http: HttpServer) -> None:
    assert probe(hspec(http.port, url("/ok"), url("/host"))).ok
    assert not probe(hspec(http.port, url("/ok"), url("/missing"))).ok


def test_http_regex(http: HttpServer) -> None:
    assert probe(hspec(http.port, url("/ok", regex="hello f[a-z]+"))).ok
    assert not probe(hspec(http.port, url("/ok", regex="goodbye"))).ok
    assert probe(hspec(http.port, url("/ok", regex="goodbye", regex_no_match=True))).ok
    assert not probe(hspec(http.port, url("/ok", regex="hello", regex_no_match=True))).ok
    assert probe(hspec(http.port, url("/ok", regex="HELLO", regex_options=("caseless",)))).ok
    assert not probe(hspec(http.port, url("/ok", regex="hello", regex_min_offset=10))).ok


def test_http_request_line_and_host(http: HttpServer) -> None:
    n = len(http.seen)
    assert probe(hspec(http.port, url("/host"))).ok
    assert probe(hspec(http.port, url("/host", virtualhost="www.example.test"))).ok
    assert probe(hspec(http.port, url("/host"), http_protocol=HttpProtocol.V1_1)).ok
    seen = http.seen[n:]
    assert seen[0] == ("/host", f"127.0.0.1:{http.port}", "GET /host HTTP/1.0")
    assert seen[1][1] == "www.example.test"
    assert seen[2][2] == "GET /host HTTP/1.1"


def test_http_request_bytes_match_keepalived() -> None:
    spec = hspec(80, url("/x"), http_protocol=HttpProtocol.V1_0C)
    assert http_probe.request_bytes(spec, spec.urls[0]) == (
        b"GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        b"Host: 127.0.0.1\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"HTTP/1.0 200 OK\r\n", 200),
        (b"HTTP/1.1 503 Service Unavailable\r\nServer: x\r\n", 503),
        (b"HTTP/1.0 204 \r\n", 204),  # an empty reason phrase, its space kept
        (b"HTTP/1.0 200\r\n", 0),  # no space after the code: keepalived's status error
        (b"ICY 200 OK\r\n", 200),  # any first word
        (b"HTTP/1.0 2000 OK\r\n", 0),
        (b"HTTP/1.0 20x OK\r\n", 0),
        (b"HTTP/1.0\r\n200 OK\r\n", 0),  # the first space past the line's end
    ],
)
def test_http_status_code_as_keepalived_extracts_it(head: bytes, code: int) -> None:
    """lib/html.c extract_status_code: three digits between the first space and a space."""
    assert http_probe.status_code(head) == code


def test_http_server_failures(http: HttpServer) -> None:
    out = probe(hspec(http.port, url("/hang"), timeout=0.3))
    assert not out.ok and "timeout" in out.reason
    assert not probe(hspec(http.port, url("/slow"), timeout=0.3)).ok
    assert probe(hspec(http.port, url("/slow"), timeout=5.0)).ok  # slow but in time
    assert not probe(hspec(http.port, url("/reset"))).ok
    assert not probe(hspec(http.port, url("/garbage"))).ok
    assert not probe(hspec(free_port(), url("/ok"))).ok


def test_http_ipv6() -> None:
    s = HttpServer("::1")
    try:
        spec = HttpSpec(endpoint=ep(s.port, "::1"), urls=(url("/host"),))
        assert probe(spec).ok
        assert s.seen[-1][1] == f"[::1]:{s.port}"
    finally:
        s.close()


# ---------------------------------------------------------------- SSL_GET


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    other = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "www.example.test")
    client = ca.issue_cert("checker.example.test")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other.pem"))
    client.private_key_and_cert_chain_pem.write_to_path(str(d / "client.pem"))
    return ca, cert, d


def tls_server(pki, *, require_client: bool = False):
    ca, cert, _d = pki
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    names: list[str | None] = []
    ctx.sni_callback = lambda _s, name, _c: names.append(name)
    if require_client:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return HttpServer(tls=ctx), names


def sspec(port: int, tls: TlsSpec, *, vhost: str | None = None, sni: bool = False) -> HttpSpec:
    return HttpSpec(
        kind="SSL_GET",
        endpoint=ep(port),
        urls=(url("/ok", digest=hashlib.md5(BODY).hexdigest(), virtualhost=vhost),),
        tls=tls,
        enable_sni=sni,
    )


def test_ssl_get_with_and_without_ca(pki) -> None:
    _ca, _cert, d = pki
    srv, names = tls_server(pki)
    try:
        assert probe(sspec(srv.port, TlsSpec())).ok  # keepalived: no verification
        assert probe(sspec(srv.port, TlsSpec(ca=str(d / "ca.pem")))).ok
        out = probe(sspec(srv.port, TlsSpec(ca=str(d / "other.pem"))))
        assert not out.ok and "CERTIFICATE_VERIFY_FAILED" in out.reason
        assert srv.seen[-1][1] == f"127.0.0.1:{srv.port}"
        assert names[0] is None
    finally:
        srv.close()


def test_ssl_get_sni_from_virtualhost(pki) -> None:
    srv, names = tls_server(pki)
    try:
        assert probe(sspec(srv.port, TlsSpec(), vhost="www.example.test", sni=True)).ok
        assert probe(sspec(srv.port, TlsSpec(), vhost="www.example.test", sni=False)).ok
        assert names == ["www.example.test", None]
        assert srv.seen[-1][1] == "www.example.test"
    finally:
        srv.close()


def test_ssl_get_client_certificate(pki) -> None:
    _ca, _cert, d = pki
    srv, _ = tls_server(pki, require_client=True)
    try:
        assert not probe(sspec(srv.port, TlsSpec())).ok
        both = str(d / "client.pem")
        assert probe(sspec(srv.port, TlsSpec(certificate=both, key=both))).ok
    finally:
        srv.close()


# ---------------------------------------------------------------- SMTP_CHECK


class _Handler:
    def __init__(self) -> None:
        self.helos: list[str] = []

    async def handle_HELO(self, server, session, envelope, hostname):
        self.helos.append(hostname)
        session.host_name = hostname
        return "250 fastha-test"


def test_smtp_helo(tmp_path: Path) -> None:
    h = _Handler()
    port = free_port()
    ctl = Controller(h, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        assert probe(SmtpSpec(endpoint=ep(port), helo_name="director.example.test")).ok
        assert h.helos == ["director.example.test"]
    finally:
        ctl.stop()
    assert not probe(SmtpSpec(endpoint=ep(port), helo_name="x")).ok  # stopped: refused


def _fake_smtp(greeting: bytes, helo_reply: bytes | None):
    async def serve(port_box: list[int], stop: asyncio.Event) -> None:
        async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(greeting)
            if helo_reply is not None:
                await r.readline()
                w.write(helo_reply)
                await w.drain()
            await stop.wait()
            w.close()

        srv = await asyncio.start_server(client, "127.0.0.1", 0)
        port_box.append(srv.sockets[0].getsockname()[1])
        return srv

    return serve


@pytest.mark.parametrize(
    ("greeting", "helo_reply", "ok"),
    [
        (b"220-first\r\n220 second\r\n", b"250-a\r\n250 b\r\n", True),
        (b"554 go away\r\n", None, False),
        (b"220 hi\r\n", b"550 no\r\n", False),
        (b"", None, False),  # silent: times out
    ],
)
def test_smtp_replies(greeting: bytes, helo_reply: bytes | None, ok: bool) -> None:
    async def go() -> Outcome:
        stop = asyncio.Event()
        box: list[int] = []
        srv = await _fake_smtp(greeting, helo_reply)(box, stop)
        try:
            return await run_probe(
                SmtpSpec(endpoint=ep(box[0], timeout=0.5), helo_name="h"), ProbeContext()
            )
        finally:
            stop.set()
            srv.close()

    assert run(go()).ok is ok


# ---------------------------------------------------------------- DNS_CHECK


@pytest.fixture(scope="module")
def dns_server():
    s = DnsServer()
    yield s
    s.close()


def test_dns_answers_and_errors(dns_server: DnsServer) -> None:
    p = dns_server.port
    assert probe(DnsSpec(endpoint=ep(p))).ok  # SOA "."
    assert probe(DnsSpec(endpoint=ep(p), qtype="A", name="www.example.test")).ok
    assert dns_server.queries[-1] == "www.example.test. A"
    out = probe(DnsSpec(endpoint=ep(p), name="servfail.example.test"))
    assert not out.ok and "rcode = 2" in out.reason
    assert not probe(DnsSpec(endpoint=ep(p, timeout=0.3), name="silent.example.test")).ok
    assert not probe(DnsSpec(endpoint=ep(p, timeout=0.3), name="wrongid.example.test")).ok
    assert not probe(DnsSpec(endpoint=ep(free_port(kind=socket.SOCK_DGRAM), timeout=0.5))).ok


def test_dns_ipv6() -> None:
    s = DnsServer("::1")
    try:
        assert probe(DnsSpec(endpoint=ep(s.port, "::1"), qtype="AAAA", name="x.test")).ok
    finally:
        s.close()


# ---------------------------------------------------------------- UDP_CHECK


@pytest.fixture
def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    import threading

    def serve() -> None:
        while True:
            try:
                data, peer = s.recvfrom(2048)
            except OSError:
                return
            s.sendto(b"\xab\xcd" + data, peer)

    threading.Thread(target=serve, daemon=True).start()
    yield s.getsockname()[1]
    s.close()


def test_udp_no_reply_required(udp_echo: int) -> None:
    assert probe(UdpSpec(endpoint=ep(udp_echo, timeout=0.3))).ok
    out = probe(UdpSpec(endpoint=ep(free_port(kind=socket.SOCK_DGRAM), timeout=1.0)))
    assert not out.ok and "refused" in out.reason.lower()


def test_udp_silent_server_counts_only_when_a_reply_is_required() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        p = s.getsockname()[1]
        assert probe(UdpSpec(endpoint=ep(p, timeout=0.3))).ok
        assert not probe(UdpSpec(endpoint=ep(p, timeout=0.3), require_reply="")).ok
    finally:
        s.close()


def test_udp_reply_pattern_and_length(udp_echo: int) -> None:
    e = ep(udp_echo, timeout=1.0)
    assert probe(UdpSpec(endpoint=e, payload=b"hi", require_reply="abcd")).ok
    assert probe(UdpSpec(endpoint=e, payload=b"hi", require_reply="axcx6869")).ok
    assert not probe(UdpSpec(endpoint=e, payload=b"hi", require_reply="abce")).ok
    assert not probe(UdpSpec(endpoint=e, payload=b"hi", require_reply="", max_reply_length=3)).ok
    assert udp_probe.reply_matches("", b"")
    assert not udp_probe.reply_matches("abcdef", b"\xab")


# ---------------------------------------------------------------- PING_CHECK


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ping_loopback(host: str) -> None:
    assert probe(PingSpec(endpoint=ep(0, host))).ok


def test_ping_reply_matching() -> None:
    req = ping_probe.echo_request(False, 7, 9, b"payload!")
    assert ping_probe.inet_checksum(req) == 0
    reply = bytes([0]) + req[1:]
    assert ping_probe.is_reply(reply, False, False, 7, 9, b"payload!")
    assert not ping_probe.is_reply(reply, False, False, 7, 10, b"payload!")  # other seq
    assert not ping_probe.is_reply(reply, False, True, 8, 9, b"payload!")  # raw: other id
    assert not ping_probe.is_reply(req, False, False, 7, 9, b"payload!")  # a request


# ---------------------------------------------------------------- MISC_CHECK


def misc(cmd: str, *, timeout: float = 5.0, dynamic: bool = False, user: str | None = None):
    return MiscSpec(argv=("/bin/sh", "-c", cmd), timeout=timeout, dynamic=dynamic, user=user)


@pytest.mark.parametrize(
    ("cmd", "dynamic", "ok", "weight"),
    [
        ("exit 0", False, True, None),
        ("exit 1", False, False, None),
        ("exit 7", False, False, None),
        ("exit 0", True, True, None),
        ("exit 1", True, False, None),
        ("exit 2", True, True, 0),
        ("exit 12", True, True, 10),
        ("exit 255", True, True, 253),
        ("kill -9 $$", True, False, None),
    ],
)
def test_misc_exit_codes(cmd: str, dynamic: bool, ok: bool, weight: int | None) -> None:
    out = probe(misc(cmd, dynamic=dynamic))
    assert (out.ok, out.weight) == (ok, weight)


def test_misc_timeout_and_missing_script() -> None:
    out = probe(misc("sleep 30", timeout=0.3))
    assert not out.ok and out.reason == "timed out"
    assert not probe(MiscSpec(argv=("/nonexistent/check",), timeout=1.0)).ok


def test_misc_runs_as_script_user() -> None:
    import pwd

    # Root switches to nobody; anyone else can only "switch" to themselves.
    user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    uid = pwd.getpwnam(user).pw_uid
    assert probe(misc(f'test "$(id -u)" = {uid}', user=user)).ok
    assert not probe(misc(f'test "$(id -u)" != {uid}', user=user)).ok


# ---------------------------------------------------------------- FILE_CHECK


def test_file_check(tmp_path: Path) -> None:
    f = tmp_path / "weight"
    spec = FileSpec(name="tf", path=str(f), weight=0)
    assert probe(spec).ok  # missing: 0
    f.write_text("3\n")
    assert not probe(spec).ok
    assert probe(FileSpec(name="tf", path=str(f), weight=0, reverse=True)).ok
    assert probe(FileSpec(name="tf", path=str(f), weight=2)).offset == 6
    assert probe(FileSpec(name="tf", path=str(f), weight=2, reverse=True)).offset == -6
    assert probe(FileSpec(name="tf", path=str(f), dynamic=True)).weight == 3
    f.write_text("junk")
    assert file_probe.read_value(str(f)) == 0
