"""sd_notify against a real datagram socket playing systemd: path and abstract."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastha.daemon.sdnotify import Notifier

pytestmark = pytest.mark.unit


def fields(sock: socket.socket) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
    else:
        name = f"fastha-test-notify-{os.getpid()}"
        sock.bind("\0" + name)
        address = "@" + name
    sock.settimeout(10)
    try:
        yield sock, address
    finally:
        sock.close()


def test_ready_reloading_stopping(
    systemd: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = systemd
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    notify = Notifier.from_env()
    assert "NOTIFY_SOCKET" not in os.environ  # children must not inherit it
    assert notify.enabled
    try:
        assert notify.ready("running")
        assert fields(sock) == {"READY": "1", "STATUS": "running"}
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notify.reloading()
        got = fields(sock)
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert got["RELOADING"] == "1" and got["STATUS"] == "reloading"
        assert before <= int(got["MONOTONIC_USEC"]) <= after
        assert notify.stopping()
        assert fields(sock) == {"STOPPING": "1", "STATUS": "stopping"}
        assert notify.status("3 instances MASTER")
        assert fields(sock) == {"STATUS": "3 instances MASTER"}
    finally:
        notify.close()


def test_without_systemd_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notify = Notifier.from_env()
    assert not notify.enabled
    assert notify.ready() is False


def test_systemd_gone_is_not_fatal(tmp_path: Path) -> None:
    notify = Notifier(str(tmp_path / "nobody-listens"))
    assert notify.ready() is False
    notify.close()
