"""HTTP_GET's digest and status as keepalived 2.2.7 computes them, keepalived's own
`genhash` (its checker's code, check_http.c http_process_response) as the oracle.

A loopback server answers canned responses byte for byte (some in pieces); for each,
genhash prints the MD5 it would compare, and fastha's probe with that digest must pass
(its "MD5 digest error" says what fastha computed otherwise). keepalived takes the body
up to ``Content-Length:`` only when spelled so (strstr, case-sensitive) and followed by
the end of the line; else it digests all the server sent. The status code is the three
digits between the first space and the next (lib/html.c extract_status_code).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from fastha.check.spec import HttpSpec, StatusRange, UrlSpec
from fastha.probes import ProbeContext, run_probe
from tests.support.prereq import need_tool

from .conftest import ep, run

pytestmark = pytest.mark.keepalived

BODY = b"hello world, from a real server\n"
# path -> the pieces the server writes (a short pause between them), then it closes
RESPONSES: dict[str, list[bytes]] = {
    "/length": [b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n" + BODY],
    "/nolength": [b"HTTP/1.0 200 OK\r\n\r\n" + BODY],
    "/lowercase": [b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n" + BODY],
    "/longer": [b"HTTP/1.0 200 OK\r\nContent-Length: 500\r\n\r\n" + BODY],
    "/nospace": [b"HTTP/1.0 200 OK\r\nContent-Length:7\r\n\r\n" + BODY],
    "/trailing": [b"HTTP/1.0 200 OK\r\nContent-Length: 5 \r\n\r\n" + BODY],
    "/pieces": [b"HTTP/1.0 200 OK\r\nConte", b"nt-Length: 9\r\n\r", b"\n" + BODY[:4], BODY[4:]],
    "/chunked": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    ],
}


class CannedServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = conn.recv(4096)
                path = req.split(b" ", 2)[1].decode() if req.count(b" ") >= 2 else ""
                pieces = RESPONSES.get(path, [b"HTTP/1.0 404 Not Found\r\n\r\n"])
                try:
                    for i, piece in enumerate(pieces):
                        if i:
                            time.sleep(0.02)
                        conn.sendall(piece)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def canned():
    s = CannedServer()
    yield s
    s.close()


def genhash(port: int, path: str) -> str:
    out = subprocess.run(
        [need_tool("genhash"), "-s", "127.0.0.1", "-p", str(port), "-u", path],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    lines = out.stdout.split()
    assert out.returncode == 0 and lines, (out.stdout, out.stderr)
    return lines[-1]


@pytest.mark.parametrize("path", sorted(RESPONSES))
def test_digest_as_genhash_computes_it(canned: CannedServer, path: str) -> None:
    want = genhash(canned.port, path)
    assert len(want) == 32 and int(want, 16) >= 0
    url = UrlSpec(path=path, status=(StatusRange(lo=200, hi=299),), digest=want)
    out = run(run_probe(HttpSpec(endpoint=ep(canned.port), urls=(url,)), ProbeContext()))
    assert out.ok, out.reason
