"""Loopback servers for the probe tests: HTTP(S) in a thread, DNS (dnspython) in a
thread, TCP/UDP helpers. Each binds an ephemeral port on 127.0.0.1 or ::1."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.rrset

BODY = b"<html>hello fastha</html>\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    seen: list[tuple[str, str, str]]  # (path, Host header, request line) per request

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, **headers: str) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", ""), self.requestline))  # type: ignore[attr-defined]
        p = self.path
        if p == "/ok":
            self._send(200, BODY)
        elif p == "/status/503":
            self._send(503, b"busy")
        elif p == "/redirect":
            self._send(302, b"", Location="/ok")
        elif p == "/slow":
            time.sleep(1.5)
            self._send(200, BODY)
        elif p == "/hang":
            time.sleep(30)
        elif p == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif p == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        elif p == "/nolength":  # body until close
            self.wfile.write(b"HTTP/1.0 200 OK\r\n\r\n" + BODY)
        elif p == "/host":
            self._send(200, self.headers.get("Host", "").encode())
        elif p.startswith("/repeat/"):  # /repeat/<hex bytes>/<count>: a body made at will
            _, _, unit_hex, count = p.split("/")
            unit, n = bytes.fromhex(unit_hex), int(count)
            self.send_response(200)
            self.send_header("Content-Length", str(len(unit) * n))
            self.end_headers()
            chunk = unit * max(1, 65536 // len(unit))  # written in pieces: no big buffer here
            per = len(chunk) // len(unit)
            while n > 0:
                k = min(n, per)
                self.wfile.write(chunk if k == per else unit * k)
                n -= k
        else:
            self._send(404, b"not found")


class HttpServer:
    """http.server in a daemon thread; `.port`, `.seen` (requests), optional TLS."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Srv(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.srv = Srv((host, 0), Handler)
        self.srv.seen = []  # type: ignore[attr-defined]
        if tls is not None:
            self.srv.socket = tls.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        return self.srv.seen  # type: ignore[attr-defined]

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


class DnsServer:
    """A UDP DNS server: answers SOA/A for any name, except names starting with
    `servfail.` (SERVFAIL), `silent.` (no answer) and `wrongid.` (another id, then
    nothing)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            q = dns.message.from_wire(data)
            name = q.question[0].name.to_text()
            self.queries.append(f"{name} {dns.rdatatype.to_text(q.question[0].rdtype)}")
            if name.startswith("silent."):
                continue
            r = dns.message.make_response(q)
            if name.startswith("servfail."):
                r.set_rcode(dns.rcode.SERVFAIL)
            elif name.startswith("wrongid."):
                r.id = (q.id + 1) & 0xFFFF
            else:
                r.answer.append(
                    dns.rrset.from_text(q.question[0].name, 60, "IN", "SOA", "ns. host. 1 2 3 4 5")
                    if q.question[0].rdtype == dns.rdatatype.SOA
                    else dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.1")
                )
            self.sock.sendto(r.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on (bound then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class FullBacklog:
    """A listener whose accept queue is full: further SYNs are dropped, so a connect
    hangs until the checker's connect_timeout."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex((host, self.port))
            self.fillers.append(c)
        time.sleep(0.05)

    def close(self) -> None:
        for c in self.fillers:
            c.close()
        self.sock.close()
