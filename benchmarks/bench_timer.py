"""Timer benchmark: timerfd PreciseTimer vs loop.call_at (same as `fastha bench timer`).

    .venv/bin/python benchmarks/bench_timer.py --count 500
    .venv/bin/python benchmarks/bench_timer.py --json

Prints figures and in-run ratios; never asserts timings.
"""

from __future__ import annotations

from fastha.bench.timer import command

if __name__ == "__main__":
    command()
