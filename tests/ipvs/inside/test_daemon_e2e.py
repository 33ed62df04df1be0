"""The whole daemon inside UML (it needs a real ip_vs): `fastha daemon -n -l` (the
parent) with both children from one keepalived.conf holding two VRRP instances alone on
a veth pair and one virtual server with two real servers on loopback.

Judges, all independent of the daemon's own word: `ip monitor address` for VIP flaps,
`ipvsadm -Sn` for IPVS operations, the process table for children, a real SMTP server
(aiosmtpd) for the alerts, and the JSON schema for `fastha status --json`.

Edges, never durations: every wait polls until the condition holds (HANG_GUARD only
guards against a hang).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiosmtpd.controller import Controller

from fastha.runtime.control import ControlError, request_sync
from tests.ipvs import kmod
from tests.ipvs.inside.conftest import ipvsadm
from tests.ipvs.inside.test_checker_reload import Counting

ROOT = Path(__file__).resolve().parents[3]
HANG_GUARD = 45.0
SCHEMA = json.loads((ROOT / "src/fastha/daemon/status.schema.json").read_text())
SMTP_PORT = 8025


def conf(prio2: int = 100, extra_vip: str = "") -> str:
    return f"""\
global_defs {{
    router_id e2e
    notification_email {{
        ops@example.com
    }}
    notification_email_from fastha@example.com
    smtp_server 127.0.0.1 {SMTP_PORT}
    smtp_connect_timeout 5
    smtp_alert true
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface fhd0
    virtual_router_id 71
    priority 100
    advert_int 1
    virtual_ipaddress {{
        198.18.71.100/24
{extra_vip}    }}
}}
vrrp_instance VI_2 {{
    state BACKUP
    interface fhd0
    virtual_router_id 72
    priority {prio2}
    advert_int 1
    virtual_ipaddress {{
        198.18.71.101/24
    }}
}}
virtual_server 10.30.0.1 80 {{
    delay_loop 1
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    real_server 198.18.72.1 8001 {{
        weight 2
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 198.18.72.2 8002 {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def until(pred: Callable[[], Any], what: str, log: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + HANG_GUARD
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}\n{log() if log else ''}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ")[1][0] != "Z"


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.content.decode().splitlines():
            if line.startswith("Subject: "):
                self.subjects.append(line[len("Subject: ") :])
        return "250 OK"


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.conf = tmp / "keepalived.conf"
        self.conf.write_text(conf())
        self.log = tmp / "daemon.log"
        self.sock = str(tmp / "run" / "control.sock")
        self.files = {k: str(tmp / f"keepalived.{k}") for k in ("data", "stats", "json")}
        self.pid_files = {k: tmp / f"{k}.pid" for k in ("parent", "vrrp", "check")}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fastha.cli.main", "daemon", "-n", "-l", "-D",
                 "-f", str(self.conf), "-p", str(self.pid_files["parent"]),
                 "-r", str(self.pid_files["vrrp"]), "-c", str(self.pid_files["check"]),
                 "--control-socket", self.sock, "--data-file", self.files["data"],
                 "--stats-file", self.files["stats"], "--json-file", self.files["json"]],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def status(self) -> dict[str, Any]:
        """The control socket's answer, asked in-process: the waits poll it, and a
        `fastha status` process per poll cost the guest's one CPU a Python start-up
        each. The command line is asked once (status_cli)."""
        try:
            return request_sync(self.sock, "status", 30.0)  # type: ignore[no-any-return]
        except ControlError as exc:
            raise AssertionError(str(exc)) from None

    def status_cli(self) -> dict[str, Any]:
        r = subprocess.run(
            [sys.executable, "-m", "fastha.cli.main", "status", "--json", "--socket", self.sock],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    def children(self) -> dict[str, int]:
        try:
            st = self.status()
        except AssertionError:
            return {}
        return {k: v["pid"] for k, v in st["parent"]["children"].items() if v["pid"]}

    def states(self) -> dict[str, str]:
        try:
            st = self.status()
        except AssertionError:  # not answering yet
            return {}
        vrrp = st.get("vrrp") or {}
        return {i["name"]: i["state"] for i in vrrp.get("instances") or ()}

    def reload_segment(self, marker: str, count: int) -> str:
        """HUP; wait until `marker` appears `count` more times; the log since the HUP."""
        before = self.text()
        n = before.count(marker)
        self.proc.send_signal(signal.SIGHUP)
        until(lambda: self.text().count(marker) >= n + count, f"{count} x {marker!r}", self.text)
        return self.text()[len(before) :]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    kmod.load(["veth"])
    ipvsadm("-C")
    ip("link", "set", "lo", "up")
    ip("link", "add", "fhd0", "type", "veth", "peer", "name", "fhd1")
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=SMTP_PORT)
    servers: dict[str, Counting] = {}
    try:
        ip("addr", "add", "198.18.71.1/24", "dev", "fhd0")
        ip("link", "set", "fhd0", "up")
        ip("link", "set", "fhd1", "up")
        for host, port in (("198.18.72.1", 8001), ("198.18.72.2", 8002)):
            ip("addr", "replace", f"{host}/32", "dev", "lo")
            servers[host] = Counting(host, port)
        smtp.start()
        yield {"inbox": inbox, "servers": servers, "tmp": tmp_path}
    finally:
        with contextlib.suppress(Exception):
            smtp.stop()
        for s in servers.values():
            s.close()
        subprocess.run(["ip", "link", "del", "fhd0"], check=False)
        subprocess.run(["ipvsadm", "-C"], check=False)


def vips() -> set[str]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", "fhd0"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    addrs = {a["local"] for i in json.loads(out) for a in i.get("addr_info", ())
             if a.get("family") == "inet"}  # fmt: skip
    return addrs - {"198.18.71.1"}


def saved() -> list[str]:
    return sorted(ipvsadm("-Sn").splitlines())


TABLE = [
    "-A -t 10.30.0.1:80 -s wrr",
    "-a -t 10.30.0.1:80 -r 198.18.72.1:8001 -m -w 2",
    "-a -t 10.30.0.1:80 -r 198.18.72.2:8002 -m -w 3",
]


def test_daemon_end_to_end(env: dict[str, Any]) -> None:
    inbox: Inbox = env["inbox"]
    d = Daemon(env["tmp"])
    monitor_log = env["tmp"] / "monitor.log"
    monitor: subprocess.Popen[bytes] | None = None
    try:
        # Start: both children, both instances MASTER (alone on the link), the table.
        until(lambda: d.states() == {"VI_1": "MASTER", "VI_2": "MASTER"}, "two masters",
              d.text)  # fmt: skip
        until(lambda: vips() == {"198.18.71.100", "198.18.71.101"}, "the VIPs", d.text)
        until(lambda: sorted(saved()) == sorted(TABLE), "the IPVS table", d.text)
        until(lambda: all(s.accepted for s in env["servers"].values()), "first probes")
        pids = until(lambda: (c := d.children()) and len(c) == 2 and c, "two children")
        assert d.pid_files["parent"].read_text() == f"{d.proc.pid}\n"
        assert {k: int(d.pid_files[k].read_text()) for k in ("vrrp", "check")} == pids

        # fastha status --json: both children's data, valid against the schema.
        status = d.status_cli()
        jsonschema.validate(status, SCHEMA)
        assert {i["name"] for i in status["vrrp"]["instances"]} == {"VI_1", "VI_2"}
        [vs] = status["check"]["virtual_servers"]
        assert vs["vs"] == "[10.30.0.1]:tcp:80"
        until(lambda: all(r["last_check"] == "ok" for r in
                          d.status()["check"]["virtual_servers"][0]["real_servers"]),
              "both real servers checked")  # fmt: skip
        table_text = subprocess.run(
            [sys.executable, "-m", "fastha.cli.main", "status", "--socket", d.sock],
            capture_output=True, text=True, cwd=ROOT, check=True,
        ).stdout  # fmt: skip
        assert "VI_1" in table_text and "[198.18.72.2]:tcp:8002" in table_text

        # SMTP: each instance's MASTER mail, sent by the VRRP child.
        until(lambda: {"[e2e] VRRP Instance VI_1 - Entering MASTER state",
                       "[e2e] VRRP Instance VI_2 - Entering MASTER state"}
              <= set(inbox.subjects), "the MASTER mails", d.text)  # fmt: skip

        # From here on, any address event on fhd0 is seen.
        monitor = subprocess.Popen(["ip", "-o", "monitor", "address", "dev", "fhd0"],
                                   stdout=open(monitor_log, "w"),  # noqa: SIM115
                                   stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(0.3)  # ip monitor subscribes asynchronously (not a timing assertion)
        entering = d.text().count("Entering")

        # (a) HUP, unchanged file: no state change, no VIP flap, no IPVS operation.
        before = saved()
        seg = d.reload_segment("Reload finished", 2)
        assert "0 IPVS operations" in seg, seg
        assert d.text().count("Entering") == entering
        assert saved() == before
        assert monitor_log.read_text().strip() == ""
        assert d.children() == pids

        # (b) VI_2's priority and a VIP added to VI_1: only that changes.
        d.conf.write_text(conf(prio2=110, extra_vip="        198.18.71.102/24\n"))
        seg = d.reload_segment("Reload finished", 2)
        until(lambda: "198.18.71.102" in vips(), "the new VIP")
        events = monitor_log.read_text().splitlines()
        assert events and all("198.18.71.102" in e and "Deleted" not in e for e in events), events
        assert d.text().count("Entering") == entering
        assert saved() == before
        prios = {i["name"]: i["effective_priority"] for i in d.status()["vrrp"]["instances"]}
        assert prios == {"VI_1": 100, "VI_2": 110}

        # (c) a broken file: refused with file:line; everything keeps running.
        d.conf.write_text(conf(prio2=110) + "vrrp_instance VI_3 {\n    virtual_router_id 300\n}\n")
        seg = d.reload_segment("Reload failed", 1)
        assert f"{d.conf}:" in seg, seg
        assert seg.count("Reloading") == 1, seg  # the parent's: no child was told
        assert d.children() == pids
        assert d.states() == {"VI_1": "MASTER", "VI_2": "MASTER"}
        assert saved() == before

        # keepalived's signals: data, stats and JSON files where we said.
        d.proc.send_signal(signal.SIGUSR1)
        d.proc.send_signal(signal.SIGUSR2)
        d.proc.send_signal(signal.SIGRTMIN + 2)
        check_data = d.files["data"].replace(".data", "_check.data")
        until(lambda: all(os.path.exists(p) for p in (*d.files.values(), check_data)),
              "the dump files", d.text)  # fmt: skip
        assert " VRRP Instance = VI_1" in Path(d.files["data"]).read_text()
        assert "VRRP Instance: VI_2" in Path(d.files["stats"]).read_text()
        assert " VS = [10.30.0.1]:tcp:80" in Path(check_data).read_text()
        assert {e["data"]["iname"] for e in json.loads(Path(d.files["json"]).read_text())} == {
            "VI_1", "VI_2"}  # fmt: skip

        # A real server goes down: the checker's mail and the table follow.
        env["servers"]["198.18.72.2"].close()
        until(lambda: "-a -t 10.30.0.1:80 -r 198.18.72.2:8002 -m -w 3" not in saved(),
              "the dead real server removed", d.text)  # fmt: skip
        until(lambda: "[e2e] Realserver [198.18.72.2]:tcp:8002 of virtual server "
                      "[10.30.0.1]:tcp:80 - DOWN" in inbox.subjects, "the DOWN mail")  # fmt: skip

        # kill -9 of the VRRP child: respawned (logged), state recovers. A respawned child
        # reads the file again, as keepalived's do: put the last good one back first.
        d.conf.write_text(conf(prio2=110, extra_vip="        198.18.71.102/24\n"))
        os.kill(pids["vrrp"], signal.SIGKILL)
        until(lambda: f"VRRP child (pid {pids['vrrp']}) died with status SIGKILL, restarting"
                      in d.text(), "the respawn line", d.text)  # fmt: skip
        new = until(lambda: (c := d.children()).get("vrrp") not in (None, pids["vrrp"]) and c,
                    "a new VRRP child", d.text)  # fmt: skip
        assert new["check"] == pids["check"]
        until(lambda: d.states() == {"VI_1": "MASTER", "VI_2": "MASTER"}, "masters again",
              d.text)  # fmt: skip
        until(lambda: vips() == {"198.18.71.100", "198.18.71.101", "198.18.71.102"},
              "the VIPs back")  # fmt: skip
        # kill -9 of the checker child: respawned, its table stays right.
        os.kill(pids["check"], signal.SIGKILL)
        new = until(lambda: (c := d.children()).get("check") not in (None, pids["check"]) and c,
                    "a new checker child", d.text)  # fmt: skip
        until(lambda: d.text().count("Checker started") >= 2, "the checker restarted", d.text)
        until(lambda: saved() == [TABLE[0], TABLE[1]], "the table after the respawn", d.text)

        # SIGTERM: VIPs and owned IPVS entries released, children reaped, exit 0.
        ipvsadm("-A", "-t", "10.99.0.1:80", "-s", "rr")  # foreign: must stay
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(HANG_GUARD) == 0, d.text()
        assert vips() == set()
        assert saved() == ["-A -t 10.99.0.1:80 -s rr"]
        assert not any(alive(p) for p in new.values())
        assert not any(p.exists() for p in d.pid_files.values())
    finally:
        if monitor is not None:
            monitor.kill()
            monitor.wait()
        d.close()


def test_kill_9_of_the_parent_takes_the_children_at_once(env: dict[str, Any]) -> None:
    """A crash of the daemon: no child lingers, and none says goodbye (no priority 0)."""
    d = Daemon(env["tmp"])
    try:
        until(lambda: d.states() == {"VI_1": "MASTER", "VI_2": "MASTER"}, "two masters",
              d.text)  # fmt: skip
        pids = d.children()
        sent = {i["name"]: i["stats"]["pri_zero_sent"] for i in d.status()["vrrp"]["instances"]}
        assert sent == {"VI_1": 0, "VI_2": 0}
        d.proc.kill()
        d.proc.wait()
        until(lambda: not any(alive(p) for p in pids.values()), "the children gone", d.text)
        assert "Stopping" not in d.text()  # no clean shutdown ran in any child
    finally:
        d.close()
