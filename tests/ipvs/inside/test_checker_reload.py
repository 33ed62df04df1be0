"""Checker reload and ha_suspend in a real ip_vs: ``fastha daemon -C -n -l`` as a
subprocess, SIGHUP after rewriting its file, ``ipvsadm -Sn`` as the judge of what was
touched and the daemon's "Reload finished: ...; N IPVS operations" line as its count.

Edges, never durations: each wait polls the table or the log until it matches (the
deadline only guards against a hang).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ipvs.inside.conftest import ipvsadm
from tests.ipvs.inside.test_checker_e2e import HANG_GUARD, stop, table, wait_for

ROOT = Path(__file__).resolve().parents[3]


def vs(addr: str, body: str, extra: str = "") -> str:
    return (f"virtual_server {addr} 80 {{\n    delay_loop 1\n    lvs_sched wrr\n"
            f"    lvs_method NAT\n    protocol TCP\n{extra}{body}}}\n")  # fmt: skip


def rs(addr: str, port: int, weight: int = 1) -> str:
    return (f"    real_server {addr} {port} {{\n        weight {weight}\n        TCP_CHECK {{\n"
            "            connect_timeout 1\n            retry 1\n"
            "            delay_before_retry 1\n        }\n    }\n")  # fmt: skip


class Counting:
    """A TCP real server that counts the connections it accepted (probes)."""

    def __init__(self, host: str, port: int) -> None:
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[dict[str, Counting]]:
    hosts = {"a": ("198.18.2.1", 8001), "b": ("198.18.2.2", 8002), "c": ("198.18.2.3", 8003),
             "s": ("198.18.2.5", 8005)}  # fmt: skip
    for host, _ in hosts.values():
        subprocess.run(["ip", "addr", "replace", f"{host}/32", "dev", "lo"], check=True)
    out = {n: Counting(h, p) for n, (h, p) in hosts.items()}
    yield out
    for c in out.values():
        c.close()


class Daemon:
    def __init__(self, tmp_path: Path, conf: str) -> None:
        self.conf = tmp_path / "keepalived.conf"
        self.conf.write_text(conf)
        self.log = tmp_path / "checker.log"
        self.logf = open(self.log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastha.cli.main", "daemon", "-C", "-n", "-l", "-f",
             str(self.conf)], stdout=self.logf, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=ROOT)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def wait_log(self, what: str, count: int = 1) -> str:
        deadline = time.monotonic() + HANG_GUARD
        while self.text().count(what) < count:
            if self.proc.poll() is not None:
                pytest.fail(f"checker exited ({self.proc.returncode}) waiting for {what!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what!r} x{count} after {HANG_GUARD}s:\n{self.text()}")
            time.sleep(0.05)
        return self.text()

    def reload(self, conf: str | None) -> str:
        """Rewrite the file (unless None), HUP, wait for the reload's last line."""
        if conf is not None:
            self.conf.write_text(conf)
        n = self.text().count("Reload finished") + self.text().count("Reload failed")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + HANG_GUARD
        while True:
            text = self.text()
            if text.count("Reload finished") + text.count("Reload failed") > n:
                return text.split("Reloading")[-1]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail(f"no end of reload:\n{text}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


@contextlib.contextmanager
def daemon(tmp_path: Path, conf: str) -> Iterator[Daemon]:
    d = Daemon(tmp_path, conf)
    try:
        yield d
    finally:
        d.close()


def saved() -> list[str]:
    return sorted(ipvsadm("-Sn").splitlines())


OP_WORDS = ("Adding", "Removing", "Changing", "Updating", "Enabling", "Disabling")


def op_lines(segment: str) -> list[str]:
    return [ln for ln in segment.splitlines() if any(w in ln for w in OP_WORDS)]


def until(pred: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}")
        time.sleep(0.05)


V1 = vs("10.20.0.1", rs("198.18.2.1", 8001, 2) + rs("198.18.2.2", 8002, 3))
V2 = vs("10.20.0.2", rs("198.18.2.1", 8001))
V3 = vs("10.20.0.3", rs("198.18.2.3", 8003, 4))
FOREIGN = {"TCP  10.99.0.1:80": ("rr", {"10.99.0.2:80": ("Masq", 1)})}


def test_checker_reload_changes_only_what_changed(servers, tmp_path: Path) -> None:
    ipvsadm("-C")
    # (d) foreign entries: a service of someone else's and a real server inside ours.
    ipvsadm("-A", "-t", "10.99.0.1:80", "-s", "rr")
    ipvsadm("-a", "-t", "10.99.0.1:80", "-r", "10.99.0.2:80", "-m")
    ipvsadm("-A", "-t", "10.20.0.1:80", "-s", "wrr")
    ipvsadm("-a", "-t", "10.20.0.1:80", "-r", "10.99.0.3:80", "-m", "-w", "5")
    up = {**FOREIGN,
          "TCP  10.20.0.1:80": ("wrr", {"198.18.2.1:8001": ("Masq", 2),
                                        "198.18.2.2:8002": ("Masq", 3),
                                        "10.99.0.3:80": ("Masq", 5)}),
          "TCP  10.20.0.2:80": ("wrr", {"198.18.2.1:8001": ("Masq", 1)})}  # fmt: skip
    with daemon(tmp_path, V1 + V2) as d:
        wait_for("the configured table", lambda t: t == up, d.proc)
        d.wait_log("Checker started")
        # every check has run at least once: nothing pending that could change
        until(lambda: all(servers[n].accepted for n in "ab"), "first probes")

        # (a) unchanged file: no operation at all.
        before = saved()
        seg = d.reload(None)
        assert "Reload finished: 2 virtual servers (0 added, 0 removed, 0 changed, " \
               "2 unchanged), 2 checks (2 kept, 0 started, 0 stopped); " \
               "0 IPVS operations" in seg, seg  # fmt: skip
        assert op_lines(seg) == [], seg
        assert saved() == before

        # (b) one real server's weight: exactly one edit.
        seg = d.reload(vs("10.20.0.1", rs("198.18.2.1", 8001, 7) + rs("198.18.2.2", 8002, 3))
                       + V2)  # fmt: skip
        assert "; 1 IPVS operations" in seg, seg
        ops = op_lines(seg)
        assert len(ops) == 1, seg
        assert ops[0].endswith("Changing weight from 2 to 7 for active service "
                               "[198.18.2.1]:tcp:8001 of VS [10.20.0.1]:tcp:80"), seg  # fmt: skip
        up["TCP  10.20.0.1:80"][1]["198.18.2.1:8001"] = ("Masq", 7)
        assert table() == up
        v1 = vs("10.20.0.1", rs("198.18.2.1", 8001, 7) + rs("198.18.2.2", 8002, 3))

        # (c) a virtual server removed, another added: its service and real server come,
        # the removed one goes whole; the foreign entries stay (d).
        seg = d.reload(v1 + V3)
        assert "(1 added, 1 removed, 0 changed, 1 unchanged)" in seg, seg
        assert "1 started, 0 stopped); 3 IPVS operations" in seg, seg
        assert "Removing VS [10.20.0.2]:tcp:80" in seg
        del up["TCP  10.20.0.2:80"]
        up["TCP  10.20.0.3:80"] = ("wrr", {"198.18.2.3:8003": ("Masq", 4)})
        assert table() == up

        # (e) a broken file: nothing changes; the error names file:line.
        before = saved()
        broken = v1 + V3 + "virtual_server 10.20.0.4 80 {\n    lvs_sched nosuch\n}\n"
        line = broken.splitlines().index("    lvs_sched nosuch") + 1
        seg = d.reload(broken)
        assert "Reload failed: configuration has errors; keeping the running one" in seg, seg
        assert f"{d.conf}:{line}:" in seg, seg
        assert op_lines(seg) == [] and saved() == before

        # A real server dropped from a virtual server goes; the foreign one inside stays.
        seg = d.reload(vs("10.20.0.1", rs("198.18.2.2", 8002, 3)) + V3)
        assert "; 1 IPVS operations" in seg, seg
        assert "Removing service [198.18.2.1]:tcp:8001 from VS [10.20.0.1]:tcp:80" in seg
        up["TCP  10.20.0.1:80"][1].pop("198.18.2.1:8001")
        assert table() == up
        assert stop(d.proc) == 0
    assert table() == FOREIGN
    text = (tmp_path / "checker.log").read_text()
    assert "Traceback" not in text, text
    ipvsadm("-C")


def test_checker_ha_suspend_follows_the_vip(servers, tmp_path: Path) -> None:
    ipvsadm("-C")
    subprocess.run(["ip", "addr", "del", "10.20.5.1/32", "dev", "lo"], capture_output=True)
    conf = (vs("10.20.5.1", rs("198.18.2.5", 8005), extra="    ha_suspend\n")
            + vs("10.20.0.3", rs("198.18.2.3", 8003)))  # fmt: skip
    what = "healthchecker for service [198.18.2.5]:tcp:8005 for VS [10.20.5.1]:tcp:80"
    s, c = servers["s"], servers["c"]
    with daemon(tmp_path, conf) as d:
        d.wait_log(f"Suspending {what}")
        # The other virtual server's checker runs (twice) while this one's does not.
        n = c.accepted
        until(lambda: c.accepted >= n + 2, "the control checker probing")
        assert s.accepted == 0

        # The VIP arrives (VRRP made this director master): checking starts.
        subprocess.run(["ip", "addr", "add", "10.20.5.1/32", "dev", "lo"], check=True)
        d.wait_log(f"Activating {what}")
        until(lambda: s.accepted >= 2, "the suspended checker probing")

        # The VIP leaves: checking stops (a probe already running may still land).
        subprocess.run(["ip", "addr", "del", "10.20.5.1/32", "dev", "lo"], check=True)
        d.wait_log(f"Suspending {what}", 2)
        m, n = s.accepted, c.accepted
        until(lambda: c.accepted >= n + 3, "the control checker probing")
        assert s.accepted <= m + 1
        # Suspension does not touch the table: the real server stays as it was.
        assert table()["TCP  10.20.5.1:80"][1] == {"198.18.2.5:8005": ("Masq", 1)}
        assert stop(d.proc) == 0
    assert "Traceback" not in (tmp_path / "checker.log").read_text()
    ipvsadm("-C")


def checker_pid(parent: int) -> int:
    """The checker child of the daemon ``parent`` (its /proc/PID/comm)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                if ppid == parent and (entry / "comm").read_text().strip() == "fastha: checker":
                    return int(entry.name)
    pytest.fail(f"no checker child of {parent}")


def maps_openssl(pid: int) -> bool:
    """Whether the process has OpenSSL's libssl mapped (what ``import ssl`` loads)."""
    return "/libssl.so" in Path(f"/proc/{pid}/maps").read_text()


def test_checker_reload_adds_an_ssl_get(servers, tmp_path: Path) -> None:
    """A checker started without SSL_GET runs without OpenSSL (runtime/notls); the
    reload that adds one loads it then, in the same process, and the real server behind
    real TLS (``alpha``: down until a check passes) enters the table."""
    import hashlib
    import ssl

    import trustme

    from tests.probes.servers import BODY, HttpServer

    ipvsadm("-C")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("198.18.2.5").configure_cert(ctx)
    https = HttpServer("198.18.2.5", tls=ctx)
    ssl_get = (
        f"    real_server 198.18.2.5 {https.port} {{\n        SSL_GET {{\n"
        f"            url {{\n                path /ok\n"
        f"                digest {hashlib.md5(BODY).hexdigest()}\n            }}\n"
        "            connect_timeout 2\n        }\n    }\n"
    )  # fmt: skip
    try:
        with daemon(tmp_path, V2) as d:
            wait_for("the TCP_CHECK's table", lambda t: "TCP  10.20.0.2:80" in t, d.proc)
            d.wait_log("Checker started")
            until(lambda: servers["a"].accepted > 0, "first probe")
            pid = checker_pid(d.proc.pid)
            assert not maps_openssl(pid)

            seg = d.reload(V2 + vs("10.20.0.4", ssl_get, "    alpha\n"))
            assert "Reload finished" in seg, seg
            dest = f"198.18.2.5:{https.port}"
            up = lambda t: dest in t.get("TCP  10.20.0.4:80", ("", {}))[1]  # noqa: E731
            wait_for("the SSL_GET's real server up", up, d.proc)
            assert checker_pid(d.proc.pid) == pid  # reloaded, not restarted
            assert maps_openssl(pid)
            assert any(r[0] == "/ok" for r in https.seen)
            stop(d.proc)
    finally:
        https.close()
