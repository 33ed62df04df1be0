"""`fastha bench checkers` end to end, small: 20 real servers x TCP_CHECK for 5 s under
fastha -C and keepalived -C in one UML guest. The JSON has every field, both daemons
did checks (counted by the guest's kernel and by the real servers, not by the daemons),
both put every real server into IPVS, took out of it the two real servers that stopped
listening and put them back once they listened again, and --plot writes a PNG. No figure is judged:
speed is the bench's output, not a test's business.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prereq import need_root, need_tool
from tests.system.test_bench_cli import assert_png, assert_summary

pytestmark = [pytest.mark.ipvs, pytest.mark.keepalived]

IMPLS = ["fastha", "keepalived"]
SERVERS = 20
FIELDS = {
    "impl", "seconds", "processes", "first_round_s", "checks", "accepts", "checks_due",
    "checks_per_s", "checks_due_per_s", "cpu_ms", "cpu_pct", "cpu_ms_per_1000_checks",
    "rss_kib", "rss_kib_per_process", "ipvs_dests", "gap_excess_ms", "gap_excess_samples_ms",
    "guest_busy_pct", "rs_down_to_ipvs_ms", "rs_up_to_ipvs_ms", "rs_down_to_ipvs_samples_ms",
    "rs_failures", "rs_failures_missed",
}  # fmt: skip


def test_checkers_short_run(tmp_path: Path) -> None:
    need_root()
    need_tool("linux.uml")
    need_tool("ipvsadm")
    if not Path("/usr/sbin/keepalived").exists():
        pytest.fail("keepalived is not installed (Debian package keepalived)")
    png = tmp_path / "checkers.png"
    r = subprocess.run(
        [sys.executable, "-m", "fastha.cli.main", "bench", "checkers", "--servers",
         str(SERVERS), "--seconds", "5", "--failures", "2", "--peer", "keepalived", "--json",
         "--plot", str(png)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    doc = json.loads(r.stdout)
    assert doc["bench"] == "checkers" and doc["impls"] == IMPLS
    assert doc["config"]["servers"] == SERVERS and doc["config"]["kind"] == "tcp"
    for impl in IMPLS:
        res = doc["results"][impl]
        assert set(res) == FIELDS, (impl, set(res) ^ FIELDS)
        assert res["checks"] > 0 and res["accepts"] > 0, (impl, res)
        assert res["ipvs_dests"] == SERVERS, (impl, res["ipvs_dests"])
        assert res["cpu_ms"] >= 0 and res["rss_kib"] > 0 and res["processes"] >= 2, res
        assert_summary(res["gap_excess_ms"], len(res["gap_excess_samples_ms"]))
        # each real server taken down left IPVS, and came back once it listened again
        assert res["rs_failures"] == 2 and res["rs_failures_missed"] == 0, (impl, res)
        assert_summary(res["rs_down_to_ipvs_ms"], 2)
    rt = doc["ratios"]
    assert rt["of"] == "fastha/keepalived"
    assert set(rt) == {"of", "cpu_ms_per_1000_checks", "checks_per_s", "cpu_pct", "rss_kib",
                       "gap_excess_ms", "rs_down_to_ipvs_ms"}  # fmt: skip
    assert not math.isnan(rt["checks_per_s"])
    assert_png(png)
