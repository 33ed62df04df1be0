"""Scrape (or attack) a metrics endpoint from inside a test's namespace.

python -m tests.support.metrics_client scrape HOST PORT
    prints the body of one GET /metrics (exit 1 on anything but 200)
python -m tests.support.metrics_client flood HOST PORT SECONDS
    for SECONDS: keeps opening connections that never send a request, and
    connections that send one and never read the answer (1 KiB receive buffer);
    meanwhile a normal scraper scrapes once a second (up to 3 tries, 3 s each);
    prints JSON {"opened", "scrapes_ok", "scrapes_failed", "last_families"}
"""

from __future__ import annotations

import json
import socket
import sys
import time


def scrape(host: str, port: int, timeout: float = 3.0) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        deadline = time.monotonic() + timeout
        while chunk := s.recv(65536):
            raw += chunk
            if time.monotonic() > deadline:
                raise TimeoutError("slow answer")
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(head[:80].decode(errors="replace") or "no answer")
    return body


def flood(host: str, port: int, seconds: float) -> dict[str, object]:
    held: list[socket.socket] = []
    opened = ok = failed = 0
    last = 0
    end = time.monotonic() + seconds
    next_scrape = time.monotonic() + 1.0
    while time.monotonic() < end:
        for slow in (False, True):
            try:
                s = socket.socket()
                if slow:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                s.settimeout(1.0)
                s.connect((host, port))
                if slow:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                held.append(s)
                opened += 1
            except OSError:
                pass
        if len(held) > 400:  # stay under the fd limit: drop the oldest
            for s in held[:100]:
                s.close()
            del held[:100]
        if time.monotonic() >= next_scrape:
            next_scrape = time.monotonic() + 1.0
            for _ in range(3):
                try:
                    body = scrape(host, port)
                    last = body.count(b"# TYPE ")
                    ok += 1
                    break
                except OSError:
                    failed += 1
        time.sleep(0.005)
    for s in held:
        s.close()
    return {"opened": opened, "scrapes_ok": ok, "scrapes_failed": failed, "last_families": last}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "scrape":
        try:
            sys.stdout.buffer.write(scrape(argv[1], int(argv[2])))
        except OSError as exc:
            print(f"scrape failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 4 and argv[0] == "flood":
        print(json.dumps(flood(argv[1], int(argv[2]), float(argv[3]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
