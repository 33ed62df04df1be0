"""Drills (issue 8), IPVS part, inside UML: a reload storm and crash recovery of the whole
daemon (`fastha daemon -n -l`: parent, VRRP child, checker child).

One keepalived.conf: VI_1 alone on a veth (MASTER, VIP 198.18.73.100), virtual server
10.30.1.1:80 with two real servers (no health check: always up), and in some variants a
second virtual server 10.30.1.2:80. A foreign entry (10.99.0.1:80, made with ipvsadm
before the daemon starts) must survive everything.

Reload storm: DRILL_IPVS_HUPS (default 100) SIGHUPs to the parent, cycling unchanged |
one weight | VS added | broken syntax | VS removed | bad value; the first 4/5 wait for
the checker's outcome and sample `ipvsadm -Sn` (it must equal the last valid file's
table + the foreign entry), the rest are a burst 2 ms apart with `ipvsadm -Sn` sampled
after each HUP (the entries every variant has must be there). At the end: the last valid
file's table exactly, no child restarted, VI_1 still MASTER, the VIP present.

Crash recovery: DRILL_IPVS_KILLS (default 12) kill -9 of the parent, the VRRP child or the
checker child (seeded RNG, random delay 0-1 s); a killed parent is started again (as
systemd would). After each: the table is exactly the configured one + the foreign entry
(no duplicate, no orphan), exactly the VIP, exactly three fastha processes (the parent
and the two children it reports), restart counters equal to the child kills.

    sudo .venv/bin/python -m tests.ipvs.uml \
        '.venv/bin/python -m pytest -s -o addopts= tests/ipvs/inside/test_drill_ipvs.py'
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fastha.runtime.control import ControlError, request_sync
from tests.ipvs import kmod
from tests.ipvs.inside.conftest import ipvsadm

ROOT = Path(__file__).resolve().parents[3]
HANG_GUARD = 90.0  # a child's respawn backoff doubles
HUPS = int(os.environ.get("DRILL_IPVS_HUPS", "100"))
KILLS = int(os.environ.get("DRILL_IPVS_KILLS", "12"))
SEED = int(os.environ.get("DRILL_SEED", str(random.SystemRandom().randrange(10**6))))
FOREIGN = "-A -t 10.99.0.1:80 -s rr"
VIP = "198.18.73.100"
RERUN = (
    "sudo .venv/bin/python -m tests.ipvs.uml '.venv/bin/python -m pytest -s -o addopts= "
    "tests/ipvs/inside/test_drill_ipvs.py'"
)
KINDS = ("unchanged", "weight", "add VS", "broken syntax", "remove VS", "bad value")


def conf(weight: int = 1, second: bool = False) -> str:
    vs2 = """virtual_server 10.30.1.2 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.74.3 8003 {
        weight 1
    }
}
""" if second else ""  # fmt: skip
    return f"""\
global_defs {{
    router_id drill
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface fhd0
    virtual_router_id 73
    priority 100
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
virtual_server 10.30.1.1 80 {{
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    real_server 198.18.74.1 8001 {{
        weight {weight}
    }}
    real_server 198.18.74.2 8002 {{
        weight 2
    }}
}}
{vs2}"""


def table(weight: int = 1, second: bool = False) -> list[str]:
    rows = [FOREIGN, "-A -t 10.30.1.1:80 -s wrr",
            f"-a -t 10.30.1.1:80 -r 198.18.74.1:8001 -m -w {weight}",
            "-a -t 10.30.1.1:80 -r 198.18.74.2:8002 -m -w 2"]  # fmt: skip
    if second:
        rows += ["-A -t 10.30.1.2:80 -s rr", "-a -t 10.30.1.2:80 -r 198.18.74.3:8003 -m -w 1"]
    return sorted(rows)


STABLE = {FOREIGN, "-A -t 10.30.1.1:80 -s wrr", "-a -t 10.30.1.1:80 -r 198.18.74.2:8002 -m -w 2"}


def saved() -> list[str]:
    return sorted(ipvsadm("-Sn").splitlines())


def vips() -> set[str]:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", "fhd0"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return {a["local"] for i in json.loads(out) for a in i.get("addr_info", ())
            if a.get("family") == "inet"} - {"198.18.73.1"}  # fmt: skip


def fastha_pids() -> dict[int, str]:
    """Every live process of a fastha daemon (parent or child) in the guest."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (d / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        # The process titles (fastha.runtime.proctitle): fastha: parent/vrrp/checker.
        if state != "Z" and cmd.startswith(("fastha: parent", "fastha: vrrp", "fastha: checker")):
            out[int(d.name)] = cmd.strip()
    return out


def until(pred: Callable[[], Any], what: str, log: Callable[[], str] | None = None,
          guard: float = HANG_GUARD) -> Any:  # fmt: skip
    deadline = time.monotonic() + guard
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}\n{log()[-4000:] if log else ''}")
        time.sleep(0.05)


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.conf = tmp / "keepalived.conf"
        self.log = tmp / "daemon.log"
        self.sock = str(tmp / "run" / "control.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def write(self, text: str) -> None:
        part = self.conf.with_suffix(".tmp")
        part.write_text(text)
        os.replace(part, self.conf)

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fastha.cli.main", "daemon", "-n", "-l",
                 "-f", str(self.conf), "-p", str(self.tmp / "parent.pid"),
                 "-r", str(self.tmp / "vrrp.pid"), "-c", str(self.tmp / "check.pid"),
                 "--control-socket", self.sock],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def status(self) -> dict[str, Any] | None:
        """The control socket's answer (what `fastha status --json` prints), asked
        in-process: the waits poll it, and a `fastha status` process per poll cost the
        guest's one CPU a Python start-up each (tests/ipvs/inside/test_daemon_e2e.py
        asks the command line)."""
        try:
            return request_sync(self.sock, "status", 30.0)  # type: ignore[no-any-return]
        except ControlError:
            return None

    def settled(self) -> dict[str, Any] | None:
        st = self.status()
        if st is None or not all(c["running"] for c in st["parent"]["children"].values()):
            return None
        inst = {i["name"]: i["state"] for i in (st.get("vrrp") or {}).get("instances") or ()}
        return st if inst == {"VI_1": "MASTER"} else None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    kmod.load(["veth"])
    ipvsadm("-C")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "link", "add", "fhd0", "type", "veth", "peer", "name", "fhd1"],
                   check=True)  # fmt: skip
    d = Daemon(tmp_path)
    try:
        subprocess.run(["ip", "addr", "add", "198.18.73.1/24", "dev", "fhd0"], check=True)
        for dev in ("fhd0", "fhd1"):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        ipvsadm(*FOREIGN.split())
        d.write(conf())
        d.start()
        until(d.settled, "the daemon settled", d.text)
        until(lambda: saved() == table(), "the table", d.text)
        yield d
    finally:
        d.close()
        for pid in fastha_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "link", "del", "fhd0"], check=False)
        subprocess.run(["ipvsadm", "-C"], check=False)


CHECK_DONE = re.compile(r"Reload finished: .*IPVS operations|fastha_checker\[\d+\]: Reload failed")
PARENT_VERDICT = re.compile(r"accepted, children signalled|the children were not signalled")


def test_drill_reload_storm_ipvs(daemon: Daemon) -> None:
    d = daemon
    rng = random.Random(SEED)
    st0 = d.settled()
    assert st0 is not None
    pids0 = {k: v["pid"] for k, v in st0["parent"]["children"].items()}
    weight, second = 1, False
    violations: list[str] = []
    samples = 0
    steady = HUPS * 4 // 5
    t0 = time.monotonic()
    assert d.proc is not None
    for i in range(HUPS):
        kind = KINDS[i % len(KINDS)]
        valid = kind not in ("broken syntax", "bad value")
        w, s2 = weight, second
        if kind == "weight":
            w = rng.choice([x for x in range(1, 10) if x != weight])
        elif kind == "add VS":
            s2 = True
        elif kind == "remove VS":
            s2 = False
        text = conf(w, s2)
        if kind == "broken syntax":
            text = text.rstrip().rstrip("}")
        elif kind == "bad value":
            text = text.replace("lvs_sched wrr", "lvs_sched nosuch")
        d.write(text)
        before = d.text()
        d.proc.send_signal(signal.SIGHUP)
        if valid:
            weight, second = w, s2
        if i >= steady:
            time.sleep(0.002)
            got = set(saved())
            samples += 1
            if not got >= STABLE:
                violations.append(f"HUP {i} ({kind}, burst): lost {sorted(STABLE - got)}")
            continue
        n0 = len(PARENT_VERDICT.findall(before))
        until(lambda n0=n0: len(PARENT_VERDICT.findall(d.text())) > n0,
              f"the parent's verdict on HUP {i}", d.text)  # fmt: skip
        if valid:
            c0 = len(CHECK_DONE.findall(before))
            until(lambda c0=c0: len(CHECK_DONE.findall(d.text())) > c0,
                  f"the checker's outcome on HUP {i}", d.text)  # fmt: skip
        samples += 1
        if saved() != table(weight, second):
            violations.append(f"HUP {i} ({kind}): table {saved()}, want {table(weight, second)}")
    storm_s = time.monotonic() - t0
    try:
        until(lambda: saved() == table(weight, second), "the last valid table", d.text, 30)
    except BaseException:
        violations.append(f"end: table {saved()}, want {table(weight, second)}")
    st = d.settled()
    if st is None:
        violations.append("end: not settled (VI_1 not MASTER or a child down)")
    else:
        pids = {k: v["pid"] for k, v in st["parent"]["children"].items()}
        restarts = {k: v["restarts"] for k, v in st["parent"]["children"].items()}
        if pids != pids0 or any(restarts.values()):
            violations.append(f"children replaced: {pids0} -> {pids}, restarts {restarts}")
    if vips() != {VIP}:
        violations.append(f"end: VIPs {vips()}")
    text = d.text()
    accepted = text.count("accepted, children signalled")
    refused = text.count("the children were not signalled")
    ops = sum(int(m) for m in re.findall(r"; (\d+) IPVS operations", text))
    print(
        f"\ndrill reload-storm (IPVS, UML): HUPs {HUPS} ({steady} waited, {HUPS - steady} burst)"
        f" in {storm_s:.1f} s, seed {SEED}; parent accepted {accepted}, refused {refused}; "
        f"IPVS operations {ops}; ipvsadm -Sn samples {samples}\n"
        f"  final: {'2 VS' if second else '1 VS'}, weight {weight}; foreign entry kept\n"
        f"  violations: {len(violations)}\n"
        + "".join(f"    - {v}\n" for v in violations[:20])
        + f"  rerun: {RERUN}  (inside: DRILL_SEED={SEED}, DRILL_IPVS_HUPS=N)"
    )
    assert not violations, "\n".join(violations)


def test_drill_crash_ipvs(daemon: Daemon) -> None:
    d = daemon
    rng = random.Random(SEED)
    violations: list[str] = []
    faults = {"parent": 0, "vrrp": 0, "check": 0}
    child_kills = {"vrrp": 0, "check": 0}
    t0 = time.monotonic()
    for trial in range(KILLS):
        st = until(d.settled, f"settled before trial {trial}", d.text)
        kind = rng.choice(("parent", "vrrp", "check"))
        time.sleep(rng.uniform(0, 1.0))
        assert d.proc is not None
        if kind == "parent":
            old = set(fastha_pids())
            os.kill(d.proc.pid, signal.SIGKILL)
            d.proc.wait()
            try:
                until(lambda o=old: not (o & set(fastha_pids())), "the killed generation gone",
                      guard=10)  # fmt: skip
            except BaseException:
                left = {p: c for p, c in fastha_pids().items() if p in old}
                violations.append(f"trial {trial}: left after the parent's kill: {left}")
                for p in left:
                    os.kill(p, signal.SIGKILL)
            child_kills = {"vrrp": 0, "check": 0}
            d.start()
        else:
            pid = st["parent"]["children"][kind]["pid"]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            child_kills[kind] += 1
            until(lambda k=kind, p=pid: (s := d.status()) and s["parent"]["children"][k]["pid"]
                  not in (None, p), f"a new {kind} child", d.text)  # fmt: skip
        faults[kind] += 1
        where = f"trial {trial} (kill {kind})"
        st = until(d.settled, f"settled after trial {trial}", d.text)
        with contextlib.suppress(BaseException):  # judged just below
            until(lambda: saved() == table() and vips() == {VIP}, "the table and VIP", guard=30)
        got = ipvsadm("-Sn").splitlines()
        if sorted(got) != table():
            violations.append(f"{where}: table {sorted(got)}, want {table()}")
        if vips() != {VIP}:
            violations.append(f"{where}: VIPs {vips()}")
        parent = st["parent"]
        expect = {parent["pid"], *(c["pid"] for c in parent["children"].values())}
        # A child the parent has just forked shows its title ("fastha: checker") once
        # its Python has started: waited for, as an edge; one that never shows (or a
        # process of the killed generation that stays) is the violation.
        with contextlib.suppress(BaseException):  # judged just below
            until(lambda e=expect: set(fastha_pids()) == e, "the three processes", guard=30)
        procs = fastha_pids()
        if set(procs) != expect:
            violations.append(f"{where}: processes {procs}, want {sorted(expect)}")
        restarts = {k: v["restarts"] for k, v in parent["children"].items()}
        if restarts != child_kills:
            exits = {k: v.get("last_exit_status") for k, v in parent["children"].items()}
            violations.append(f"{where}: restarts {restarts} for kills {child_kills}, "
                              f"last exits {exits}\n{d.text()[-3000:]}")  # fmt: skip
    print(
        f"\ndrill crash (IPVS, UML): trials {KILLS}, seed {SEED}, faults injected "
        f"{sum(faults.values())} kill -9 (parent {faults['parent']}, VRRP child "
        f"{faults['vrrp']}, checker child {faults['check']}), {time.monotonic() - t0:.0f} s\n"
        f"  violations: {len(violations)}\n"
        + "".join(f"    - {v}\n" for v in violations[:20])
        + f"  rerun: {RERUN}  (inside: DRILL_SEED={SEED}, DRILL_IPVS_KILLS=N)"
    )
    assert not violations, "\n".join(violations)
