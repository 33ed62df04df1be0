"""The checker's lines operators grep, in keepalived 2.2.7's words (inside UML: both
checkers need a real ip_vs). keepalived -C and fastha -C run, one after the other, the
same keepalived.conf through the same scenario:

1. start: `Gained quorum 1+0=1 <= 1 for VS ...`, `Activating healthchecker for service
   [..]:tcp:8001 for VS [..]:tcp:80` (the initial table is programmed without a line),
   then the real server answers (`TCP connection to [..]:tcp:8001 success.`);
2. it stops listening: `TCP_CHECK on service [..]:tcp:8001 failed.`, `Removing service
   [..]:tcp:8001 from VS [..]:tcp:80`, `Lost quorum ...`;
3. it listens again: `TCP connection ... success.`, `Adding service ...`, `Gained quorum`;
4. SIGTERM: `Shutting down service [..]:tcp:8001 from VS [..]:tcp:80`;

and the normalised lines (timestamps and process prefix removed) are compared. The
keepalived-vs-keepalived parameter proves the scenario is deterministic enough.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ipvs.inside.conftest import ipvsadm
from tests.ipvs.inside.test_checker_reload import Counting

ROOT = Path(__file__).resolve().parents[3]
RS = ("198.18.77.1", 8001)
CONF = f"""
virtual_server 10.30.7.1 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum 1
    real_server {RS[0]} {RS[1]} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""
WANTED = re.compile(
    r"TCP connection to|TCP_CHECK on service|service \[|quorum|sorry server|Changing weight"
    r"|healthchecker for service"  # "Activating BFD healthchecker": both log it (not compared)
)
_PREFIX = re.compile(r"^(?:\w{3} \w{3} +\d+ [\d:]+ \d{4}: |\d{4}-\d\d-\d\d [\d:,]+ \S+\[\d+\]: )")


def normalised(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw).rstrip()
        if WANTED.search(line) and not line.startswith(" "):
            out.append(line)
    return out


def command(impl: str, conf: Path, tmp: Path) -> list[str]:
    pids = ["-p", str(tmp / "p.pid"), "-r", str(tmp / "v.pid"), "-c", str(tmp / "c.pid")]
    if impl == "keepalived":
        exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
        return [exe, "-C", "-n", "-l", "-D", "-f", str(conf), *pids]
    return [sys.executable, "-m", "fastha.cli.main", "daemon", "-C", "-n", "-l", "-D",
            "-f", str(conf), *pids, "--control-socket", str(tmp / "ctl.sock")]  # fmt: skip


def until(pred, what: str, log: Path, guard: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + guard
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def scenario(impl: str, tmp: Path) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    ipvsadm("-C")
    conf = tmp / "keepalived.conf"
    conf.write_text(CONF)
    log = tmp / f"{impl}.log"
    server = Counting(*RS)
    with open(log, "w") as out:
        proc = subprocess.Popen(command(impl, conf, tmp), stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:

        def lines(pattern: str) -> int:
            return sum(1 for x in normalised(log.read_text()) if pattern in x)

        until(lambda: lines("success.") >= 1, "the first success", log)
        server.close()
        until(lambda: lines("Lost quorum") >= 1, "the real server removed", log)
        server = Counting(*RS)
        until(lambda: lines("success.") >= 2, "the real server back", log)
        until(lambda: lines("Gained quorum") >= 2, "the quorum back", log)
        time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.close()
        ipvsadm("-C")
    return normalised(log.read_text())


def compare(impl: str, tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "replace", f"{RS[0]}/32", "dev", "lo"], check=True)
    oracle = scenario("keepalived", tmp_path / "oracle")
    got = scenario(impl, tmp_path / "subject")
    assert any("failed." in x for x in oracle), oracle  # the scenario ran
    assert got == oracle, "\n".join(["keepalived 2.2.7:", *oracle, "", f"{impl}:", *got])


# Two functions, not a parametrized one: tests/ipvs/test_ipvs.py reports by function name.
def test_checker_lines_keepalived_twice(tmp_path: Path) -> None:
    compare("keepalived", tmp_path)


def test_checker_lines_match_keepalived(tmp_path: Path) -> None:
    compare("fastha", tmp_path)
