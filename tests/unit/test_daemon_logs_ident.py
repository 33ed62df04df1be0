"""`--syslog-ident keepalived`: the lines reach a real syslog socket under keepalived's
idents (Keepalived_vrrp, Keepalived_healthcheckers), and under fastha's without it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastha.runtime import logs

pytestmark = pytest.mark.unit


@pytest.fixture
def syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setattr(logs, "DEV_LOG", str(path))
    monkeypatch.setenv(logs.IDENT_ENV, "fastha")  # restored (removed) after the test
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield sock
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:], root.level = saved
        sock.close()


@pytest.mark.parametrize(
    ("style", "name", "ident"),
    [
        ("keepalived", "fastha_vrrp", "Keepalived_vrrp"),
        ("keepalived", "fastha_checker", "Keepalived_healthcheckers"),
        ("keepalived", "fastha", "Keepalived"),
        ("fastha", "fastha_vrrp", "fastha_vrrp"),
    ],
)
def test_ident(syslog: socket.socket, style: str, name: str, ident: str) -> None:
    logs.set_ident_style(style)
    assert os.environ[logs.IDENT_ENV] == style  # what the children inherit
    logs.configure(name, console=False)
    logging.getLogger("fastha.vrrp").info("(VI_1) Entering MASTER STATE")
    line = syslog.recv(4096).decode()
    assert line.endswith(f"{ident}[{os.getpid()}]: (VI_1) Entering MASTER STATE\x00"), line


def test_unknown_style_refused() -> None:
    with pytest.raises(ValueError, match="syslog ident style"):
        logs.set_ident_style("Keepalived")
