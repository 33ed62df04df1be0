"""Drill (issue 8): packet fuzzing against a live fastha master and backup.

A third namespace sends --count structure-aware mutated VRRP frames (every field wrong
in turn, truncated, padded, random bytes, other VRIDs; tests/support/fuzzsend.py) at
--rate frames/s. Figures: frames sent per drop reason vs what each daemon counted,
kernel socket drops, the master's advert interval mean and p99 before vs during the
flood, violations (0 expected; the exit status is 1 otherwise).

    sudo .venv/bin/python benchmarks/drill_fuzz.py                  # 1,000,000 frames, v3
    sudo .venv/bin/python benchmarks/drill_fuzz.py --version 2 --auth s3cret --advert-int 1
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support importable

from tests.support import drill_fuzz
from tests.support.netns import topology


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="drill_fuzz.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=10_000.0)
    p.add_argument("--version", type=int, choices=(2, 3), default=3)
    p.add_argument("--advert-int", type=float, default=0.05)
    p.add_argument("--auth", default=None, help="v2 PASS password")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    a = p.parse_args(argv)
    rerun = "sudo .venv/bin/python benchmarks/drill_fuzz.py " + shlex.join(argv)
    with tempfile.TemporaryDirectory(prefix="drill-fuzz-") as d, topology(Path(d)) as topo:
        fig = drill_fuzz.run(
            topo, Path(d), version=a.version, advert_int=a.advert_int, auth=a.auth,
            count=a.count, rate=a.rate, seed=a.seed, baseline_s=10.0,
        )  # fmt: skip
    print(fig.report(rerun.strip()))
    if a.json:
        print(json.dumps(asdict(fig)))
    return 1 if fig.violations else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
