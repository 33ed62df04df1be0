"""SMTP alerts on the wire as keepalived 2.2.7 sends them: one node with `smtp_alert`
starts alone (its first mail: "Entering BACKUP state") and mails a recording SMTP
server in its namespace; the dialogue it recorded (commands, headers, body, the end of
the data; the Date header's value aside) and the lines it logged about it are the same
with fastha as with keepalived. The `keepalived` parameter compares keepalived with
itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.netns import Topology
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster
from tests.system.test_logs_keepalived import _PREFIX, compare  # _PREFIX: time and process

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

TIMEOUT = 15
PORT = 2525
# A server that says yes to everything and writes down every line it is sent.
RECORDER = r"""
import socket, sys
out = open(sys.argv[2], "wb")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(5)
out.write(b"--- listening\n"); out.flush()
while True:
    c, _ = s.accept()
    f = c.makefile("rb")
    c.sendall(b"220 recorder ESMTP\r\n")
    data = False
    while line := f.readline():
        out.write(line); out.flush()
        if data:
            if line == b".\r\n":
                data = False
                c.sendall(b"250 queued\r\n")
        elif line[:4].upper() == b"DATA":
            data = True
            c.sendall(b"354 go on\r\n")
        elif line[:4].upper() == b"QUIT":
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"250 ok\r\n")
    out.write(b"--- closed\n"); out.flush()
    c.close()
"""
GLOBALS = (
    "notification_email {",
    "    ops@example.com",
    "    pager@example.com",
    "}",
    "notification_email_from lb-a@example.com",
    f"smtp_server 127.0.0.1 {PORT}",
    "smtp_helo_name lb-a.example.com",
    "smtp_connect_timeout 5",
    "router_id LB_A",
)


def until(path: Path, text: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while text not in (got := path.read_bytes().decode(errors="replace") if path.exists() else ""):
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} in {path} after {TIMEOUT} s:\n{got}")
        time.sleep(0.05)
    return got


def smtp_lines(log: str) -> list[str]:
    """The daemon's SMTP lines (prefix removed) up to the first mail's last."""
    out = []
    for raw in log.splitlines():
        line = _PREFIX.sub("", raw).rstrip()
        if "SMTP" in line:
            out.append(line)
            if line == "SMTP alert successfully sent.":
                break
    return out


def first_mail(topo: Topology, impl: str, record: Path) -> list[str]:
    router = Router(version=2, advert_int=1, global_extra=GLOBALS)
    spec = NodeSpec("subject", impl, 100, extra=("smtp_alert",))  # type: ignore[arg-type]
    with VrrpCluster(topo, router, [spec], observer=False) as c:
        subject = c["subject"]
        subject.peer.extra_args = ("-D",)  # keepalived logs a mail sent with -D only
        server = topo.python_popen(subject.node, RECORDER, str(PORT), str(record))
        try:
            until(record, "--- listening")
            c.start(subject)
            text = until(record, "--- closed")
            c.stop(subject)
            log = smtp_lines(subject.peer.log())
        finally:
            server.kill()
            server.wait()
    mail = text.split("--- listening\n", 1)[1].split("--- closed", 1)[0]
    return [
        *log,
        *("Date: <now>" if line.startswith("Date: ") else line for line in mail.split("\n")),
    ]  # (each line of the mail keeps its \r: CRLF is compared too)


@pytest.mark.parametrize("impl", ["keepalived", "fastha"])
def test_the_first_alert_is_keepalived_s_byte_for_byte(impl: str, tmp_path: Path) -> None:
    compare(
        tmp_path,
        impl,
        first_mail,
        "Subject: [LB_A] VRRP Instance VI_1 - Entering BACKUP state\r",
        "Remote SMTP server [127.0.0.1]:2525 connected.",
    )
