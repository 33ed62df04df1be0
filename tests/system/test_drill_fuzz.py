"""Drill (issue 8), CI size: 100,000 structure-aware mutated VRRP frames against a live
fastha master and backup (tests/support/drill_fuzz.py has the checks; the full
1,000,000-frame run is benchmarks/drill_fuzz.py). tests/system/test_vrrp_hostile.py is
the hand-made one-of-each-case flood; this one randomises within every case.

    sudo .venv/bin/python -m pytest -s tests/system/test_drill_fuzz.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import drill_fuzz
from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import need_impl

pytestmark = pytest.mark.system

RERUN = "sudo .venv/bin/python -m pytest -s tests/system/test_drill_fuzz.py"


@pytest.mark.parametrize(
    ("version", "advert_int", "auth", "count"),
    [(3, 0.05, None, 100_000), (2, 1.0, "s3cret", 40_000)],
    ids=["v3-50ms-100k", "v2-1s-pass-40k"],
)
def test_drill_fuzz_ci(
    topo: Topology, tmp_path: Path, version: int, advert_int: float, auth: str | None, count: int
) -> None:
    """CI-sized variant: fewer frames than the 1M benchmark, same checks."""
    need_impl("fastha")
    need_tool("tcpdump")
    fig = drill_fuzz.run(
        topo, tmp_path, version=version, advert_int=advert_int, auth=auth,
        count=count, rate=8000.0, seed=version, baseline_s=3.0 if version == 3 else 5.0,
    )  # fmt: skip
    print("\n" + fig.report(f"{RERUN} -k {version}"))
    assert not fig.violations, fig.report(RERUN)
