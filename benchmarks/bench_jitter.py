"""`fastha bench jitter` from a checkout: the benchmark lives in src/fastha/bench/jitter.py
(so the installed CLI runs it); this wrapper only runs it.

    sudo .venv/bin/python benchmarks/bench_jitter.py --help
    sudo .venv/bin/python benchmarks/bench_jitter.py --json --plot /tmp/jitter.png
"""

from __future__ import annotations

from fastha.bench.jitter import command

if __name__ == "__main__":
    command(prog_name="bench_jitter.py")
