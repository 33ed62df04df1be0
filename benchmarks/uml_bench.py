"""The host side shared by the benchmarks that run inside the UML kernel (ip_vs).

Each such benchmark has a `guest(services, dests, rounds)` coroutine returning
{metric: [seconds per round]}; `main` parses the common options, runs the script again
inside a UML guest with --guest, and hands back the best round of each metric.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Guest = Callable[[int, int, int], Awaitable[dict[str, list[float]]]]


def main(script: str, guest: Guest) -> tuple[argparse.Namespace, dict[str, float]] | None:
    """None inside the guest (it printed its JSON); else (options, best of each metric)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--dests", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.guest:
        print(json.dumps(asyncio.run(guest(a.services, a.dests, a.rounds))))
        return None
    from tests.ipvs import uml

    r = uml.run(
        f".venv/bin/python benchmarks/{script} --guest --services {a.services} "
        f"--dests {a.dests} --rounds {a.rounds}",
        timeout=900,
    )
    if r.rc != 0:
        sys.exit(f"guest failed (rc {r.rc}):\n{r.out}")
    res: dict[str, Any] = json.loads(r.out.strip().splitlines()[-1])
    return a, {k: min(v) for k, v in res.items()}
