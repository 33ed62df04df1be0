"""`python -m tests.conformance [--full | NAME...] [--no-mixed] [--keep]`."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.conformance import coverage
from tests.conformance.harness import run_many
from tests.conformance.scenarios import SCENARIOS, ci_scenarios


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scripts/conformance")
    p.add_argument("names", nargs="*")
    p.add_argument("--full", action="store_true", help="every scenario (also full_only)")
    p.add_argument("--no-mixed", action="store_true", help="keepalived and fastha runs only")
    p.add_argument("--keep", action="store_true", help="keep the labs' files")
    p.add_argument("--workers", type=int, default=5)
    a = p.parse_args(argv)
    if a.names:
        unknown = [n for n in a.names if n not in SCENARIOS]
        if unknown:
            p.error(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
        todo = [SCENARIOS[n] for n in a.names]
    else:
        todo = list(SCENARIOS.values()) if a.full else ci_scenarios()
    base = Path(tempfile.mkdtemp(prefix="fastha-conformance-"))
    t = time.monotonic()
    outs = run_many(todo, base, mixed=not a.no_mixed, workers=a.workers)
    failed = 0
    for s in todo:
        out = outs[s.name]
        verdict = "FAIL" if out.problems else "ok"
        print(f"{verdict:4} {s.name} ({len(out.runs)} runs)")
        if out.problems:
            failed += 1
            print(out.report())
    print(f"{len(todo)} scenarios in {time.monotonic() - t:.0f} s, {failed} failed")
    from tests.conformance.ipvs import SCENARIOS as IPVS_SCENARIOS

    # What CI runs (test_coverage_table): a keyword only a --full scenario uses is uncovered.
    rows, uncovered = coverage.table([*ci_scenarios(), *IPVS_SCENARIOS.values()])  # type: ignore[list-item]
    print(coverage.render(rows))
    if a.keep:
        print(f"labs kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed or uncovered else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
