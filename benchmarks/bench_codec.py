"""VRRP codec figures: _wire vs a struct-based codec vs scapy, same run, with ratios.

    .venv/bin/python benchmarks/bench_codec.py [--json]

Prints figures; never asserts (timings belong in benchmarks, not tests).
"""

from __future__ import annotations

import sys

from fastha.bench.codec import command

if __name__ == "__main__":
    command(sys.argv[1:])
