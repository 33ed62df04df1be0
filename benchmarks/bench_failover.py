"""`fastha bench failover` from a checkout: the benchmark lives in src/fastha/bench/failover.py
(so the installed CLI runs it); this wrapper only runs it.

    sudo .venv/bin/python benchmarks/bench_failover.py --help
    sudo .venv/bin/python benchmarks/bench_failover.py --json --plot /tmp/failover.png
"""

from __future__ import annotations

from fastha.bench.failover import command

if __name__ == "__main__":
    command(prog_name="bench_failover.py")
