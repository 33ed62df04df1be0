"""Start where keepalived starts, LVS side (issue 14): the real-world-style configs of
tests/golden/config/fallback (lower-case `lb_kind dr` -> NAT, `persistence_timeout 0`
ignored, a virtual_server line without '{', a missing final '}', a service with no real
server left) are run by keepalived 2.2.7's checker and by fastha's, one after the other
on the same real ip_vs, and `ipvsadm -Sn` must be the same.

The health checkers are taken out of the copies run here: a real server without a checker
is up for both daemons from the start, so the table does not depend on when a check
runs; what is compared is what each daemon made of the rest of the file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ipvs.inside.conftest import ipvsadm

ROOT = Path(__file__).resolve().parents[3]
FALLBACK = ROOT / "tests" / "golden" / "config" / "fallback"
_CHECKER = re.compile(r"^\s*[A-Z_]+_CHECK(ER)?\b")
SETTLE_S = 1.5
HANG_GUARD = 30.0


def without_checkers(text: str) -> str:
    out: list[str] = []
    depth = 0
    for line in text.splitlines():
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if _CHECKER.match(line):
            depth = line.count("{") - line.count("}")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _table_of(cmd: list[str], log: Path) -> list[str]:
    """Run a checker daemon until `ipvsadm -Sn` has settled; the table's lines."""
    ipvsadm("-C")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_GUARD
        last: list[str] | None = None
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{cmd[0]} exited:\n{log.read_text(errors='replace')}"
            now = sorted(ipvsadm("-Sn").splitlines())
            if now != last:
                last, stable_since = now, time.monotonic()
            elif now and time.monotonic() - stable_since >= SETTLE_S:
                return now
            time.sleep(0.2)
        raise AssertionError(f"no settled table:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        ipvsadm("-C")


def test_lvs_fallback_configs_program_what_keepalived_programs(tmp_path: Path) -> None:
    configs = sorted(p for p in FALLBACK.glob("lvs_*.conf"))
    assert configs
    for conf in configs:
        path = tmp_path / conf.name
        path.write_text(without_checkers(conf.read_text()))
        ka = _table_of(
            ["keepalived", "-C", "-n", "-l", "-f", str(path), "-p", f"{tmp_path}/p",
             "-r", f"{tmp_path}/r", "-c", f"{tmp_path}/c", "-b", f"{tmp_path}/b"],
            tmp_path / f"{conf.stem}.keepalived.log",
        )  # fmt: skip
        ours = _table_of(
            [sys.executable, "-m", "fastha.cli.main", "daemon", "-C", "-n", "-l", "-f",
             str(path), "-p", f"{tmp_path}/fp", "-c", f"{tmp_path}/fc",
             "--control-socket", f"{tmp_path}/ctl.sock", "--data-file", f"{tmp_path}/d"],
            tmp_path / f"{conf.stem}.fastha.log",
        )  # fmt: skip
        assert ours == ka, f"{conf.name}:\nkeepalived:\n{ka}\nfastha:\n{ours}"
