"""`fastha bench scale` from a checkout: the benchmark lives in src/fastha/bench/scale.py
(so the installed CLI runs it); this wrapper only runs it.

    sudo .venv/bin/python benchmarks/bench_scale.py --help
    sudo .venv/bin/python benchmarks/bench_scale.py --json --plot /tmp/scale.png
"""

from __future__ import annotations

from fastha.bench.scale import command

if __name__ == "__main__":
    command(prog_name="bench_scale.py")
