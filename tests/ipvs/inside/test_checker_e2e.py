"""The checker child end to end in a real ip_vs: real servers on loopback addresses,
``fastha daemon -C -n -l`` as a subprocess, ``ipvsadm -Ln`` as the judge.

Edges, never durations: each wait polls the table until it matches (the deadline only
guards against a hang). Checkers run at delay_loop 1 s / connect_timeout 1 s / retry 1.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
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

HANG_GUARD = 30.0  # seconds: a wait that lasts this long has failed

Table = dict[str, tuple[str, dict[str, tuple[str, int]]]]

CONF = """\
global_defs {
    lvs_timeouts tcp 901 tcpfin 31 udp 61
}
virtual_server_group WEB {
    10.10.1.1-3 443
    fwmark 8
}
virtual_server 10.10.0.1 80 {
    delay_loop 1
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    real_server 198.18.1.1 8001 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.18.1.2 8002 {
        weight 3
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server 10.10.0.2 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method DR
    protocol TCP
    quorum 1
    sorry_server 198.18.9.9 80
    real_server 198.18.1.3 80 {
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_port 8080
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server fwmark 7 {
    delay_loop 1
    lvs_sched rr
    lvs_method DR
    real_server 198.18.1.1 {
        # the same probe as 10.10.0.1:80's first real server: run once, used by both
        TCP_CHECK {
            connect_port 8001
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server group WEB {
    delay_loop 1
    lvs_sched wlc
    lvs_method TUN
    protocol TCP
    real_server 198.18.1.4 8443 {
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server fd00::100 80 {
    delay_loop 1
    lvs_sched lc
    lvs_method NAT
    protocol TCP
    persistence_timeout 60
    persistence_granularity 64
    real_server fd00::1 8001 {
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
"""

FOREIGN_SVC = "TCP  10.99.0.1:80"
UP: Table = {
    FOREIGN_SVC: ("rr", {"10.99.0.2:80": ("Masq", 1)}),
    "TCP  10.10.0.1:80": ("wrr", {"198.18.1.1:8001": ("Masq", 2),
                                  "198.18.1.2:8002": ("Masq", 3),
                                  "10.99.0.3:80": ("Masq", 5)}),  # foreign, in our service
    "TCP  10.10.0.2:80": ("rr", {"198.18.1.3:80": ("Route", 1)}),
    "FWM  7": ("rr", {"198.18.1.1:0": ("Route", 1)}),
    # TUN in a group: the entry's port, 0 for a fwmark (keepalived ipvs_group_cmd); the
    # checks still probe 8443
    "TCP  10.10.1.1:443": ("wlc", {"198.18.1.4:443": ("Tunnel", 1)}),
    "TCP  10.10.1.2:443": ("wlc", {"198.18.1.4:443": ("Tunnel", 1)}),
    "TCP  10.10.1.3:443": ("wlc", {"198.18.1.4:443": ("Tunnel", 1)}),
    "FWM  8": ("wlc", {"198.18.1.4:0": ("Tunnel", 1)}),
    "TCP  [fd00::100]:80": ("lc persistent 60 mask 64", {"[fd00::1]:8001": ("Masq", 1)}),
}  # fmt: skip


# ---------------------------------------------------------------- the oracle


def table() -> Table:
    """``ipvsadm -Ln`` parsed: "PROT  ADDR" -> (scheduler and flags, {dest: (fwd, weight)})."""
    out: Table = {}
    cur: dict[str, tuple[str, int]] | None = None
    for line in ipvsadm("-Ln").splitlines()[3:]:
        m = re.match(r"\s+-> (\S+)\s+(\S+)\s+(\d+)", line)
        if m:
            assert cur is not None
            cur[m[1]] = (m[2], int(m[3]))
            continue
        m = re.match(r"(\S+\s+\S+) (.*?)\s*$", line)
        assert m, line
        cur = {}
        out[m[1]] = (m[2], cur)
    return out


def wait_for(
    what: str, pred: Callable[[Table], bool], proc: subprocess.Popen | None = None
) -> Table:
    deadline = time.monotonic() + HANG_GUARD
    while True:
        t = table()
        if pred(t):
            return t
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"checker exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {HANG_GUARD}s: {t}")
        time.sleep(0.1)


# ---------------------------------------------------------------- real servers


class Listener:
    """A TCP real server that accepts and closes; stop() refuses connections."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    def start(self) -> None:
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        self.sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.close()

    def stop(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == "/health" else 404
        body = b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, object]]:
    for addr in ("198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"):
        subprocess.run(["ip", "addr", "replace", f"{addr}/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "-6", "addr", "replace", "fd00::1/128", "dev", "lo", "nodad"],
                   check=True)  # fmt: skip
    tcp = {n: Listener(h, p) for n, (h, p) in {
        "rs1": ("198.18.1.1", 8001), "rs2": ("198.18.1.2", 8002),
        "rs4": ("198.18.1.4", 8443), "rs6": ("fd00::1", 8001)}.items()}  # fmt: skip
    for lst in tcp.values():
        lst.start()
    httpd = http.server.ThreadingHTTPServer(("198.18.1.3", 8080), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {**tcp, "http": httpd}
    httpd.shutdown()
    for lst in tcp.values():
        lst.stop()


@contextlib.contextmanager
def checker(tmp_path: Path, *flags: str) -> Iterator[subprocess.Popen]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    logf = open(tmp_path / "checker.log", "w")  # noqa: SIM115
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The operator's command line: keepalived's -C -n -l, through the fastha CLI.
    proc = subprocess.Popen([sys.executable, "-m", "fastha.cli.main", "daemon", "-C", "-n",
                             "-l", "-f", str(conf), *flags], stdout=logf, stderr=subprocess.STDOUT, env=env,
                            cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logf.close()


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(HANG_GUARD)
    except subprocess.TimeoutExpired:
        pytest.fail("checker did not stop on SIGTERM")


def foreign_entries() -> None:
    ipvsadm("-C")
    ipvsadm("-A", "-t", "10.99.0.1:80", "-s", "rr")
    ipvsadm("-a", "-t", "10.99.0.1:80", "-r", "10.99.0.2:80", "-m")
    ipvsadm("-A", "-t", "10.10.0.1:80", "-s", "wrr")  # ours, created by someone else
    ipvsadm("-a", "-t", "10.10.0.1:80", "-r", "10.99.0.3:80", "-m", "-w", "5")


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "checker.log").read_text()


# ---------------------------------------------------------------- the tests


def test_checker_table_follows_health_and_release_on_stop(servers, tmp_path: Path) -> None:
    foreign_entries()
    with checker(tmp_path) as proc:
        wait_for("the configured table", lambda t: t == UP, proc)
        assert ipvsadm("-Ln", "--timeout").split()[-3:] == ["901", "31", "61"]

        # Three failures at once: a plain real server (shared by VS 10.10.0.1:80 and
        # FWM 7: one probe, both lose it), an inhibited one, an HTTP status.
        servers["rs1"].stop()
        servers["rs2"].stop()
        Health.status = 500
        down = {**UP,
                "TCP  10.10.0.1:80": ("wrr", {"198.18.1.2:8002": ("Masq", 0),
                                              "10.99.0.3:80": ("Masq", 5)}),
                "FWM  7": ("rr", {}),
                "TCP  10.10.0.2:80": ("rr", {"198.18.9.9:80": ("Route", 1)})}  # fmt: skip
        wait_for("removal, inhibit and the sorry server", lambda t: t == down, proc)

        servers["rs1"].start()
        servers["rs2"].start()
        Health.status = 200
        wait_for("the real servers back", lambda t: t == UP, proc)

        assert proc.poll() is None
        assert stop(proc) == 0
    # Ours are gone (with the foreign dest inside our service); the foreign service stays.
    assert table() == {FOREIGN_SVC: UP[FOREIGN_SVC]}
    text = log_text(tmp_path)
    assert text.count("Removing service [198.18.1.1]:tcp:8001 from VS [10.10.0.1]:tcp:80") == 1, (
        text
    )
    assert "Removing service [198.18.1.1]:udp:0 from VS FWM 7" in text
    assert "Checker started: 5 checks" in text  # one probe for the shared real server
    assert "Disabling service [198.18.1.2]:tcp:8002 from VS [10.10.0.1]:tcp:80" in text
    assert "Adding sorry server [198.18.9.9]:tcp:80 to VS [10.10.0.2]:tcp:80" in text
    assert "Removing VS [10.10.0.1]:tcp:80" in text
    assert "Traceback" not in text, text


def test_checker_dont_release_ipvs_keeps_the_table(servers, tmp_path: Path) -> None:
    foreign_entries()
    with checker(tmp_path, "-I") as proc:
        wait_for("the configured table", lambda t: t == UP, proc)
        assert stop(proc) == 0
    assert table() == UP
    assert "Leaving IPVS table in place" in log_text(tmp_path)
    ipvsadm("-C")
