"""The checker child's initial IPVS apply: 1,000 virtual servers x 10 real servers from a
keepalived.conf into a real ip_vs (UML), against ``ipvsadm -R`` restoring the same table.

Same guest, same table as benchmarks/bench_ipvs.py (which times the bare driver). Here
the whole path the checker takes at start is timed: config load, plan + health + desired
table, then ``CheckerRunner.start`` (dump, plan, batched apply), a reload of the same file
(no operation), a reload changing one real server's weight (one edit), and the SIGTERM
path (``stop``: remove what it owns). Figures from a UML guest: compare them with each other,
not with other machines. Never asserts a timing.

    .venv/bin/python benchmarks/bench_checker_apply.py [--services 1000] [--dests 10]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uml_bench

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_ipvs import restore_text, table  # noqa: E402


def conf_text(n_svc: int, n_dest: int) -> str:
    """keepalived.conf for bench_ipvs.table(): real servers without checkers (alive)."""
    out = []
    for s in table(n_svc, n_dest):
        out.append(f"virtual_server {s.addr} {s.port} {{\n    lvs_sched {s.scheduler}\n"
                   "    lvs_method NAT\n    protocol TCP\n")  # fmt: skip
        out += [f"    real_server {d.addr} {d.port} {{\n        weight {d.weight}\n    }}\n"
                for d in s.dests]  # fmt: skip
        out.append("}\n")
    return "".join(out)


async def guest(n_svc: int, n_dest: int, rounds: int) -> dict:
    """Runs inside UML."""
    from fastha.config.loader import load
    from fastha.drivers.ipvs import IPVS
    from fastha.runtime.check.runner import CheckerRunner, CheckOptions

    n = n_svc * (n_dest + 1)
    res: dict[str, list[float]] = {"load": [], "build": [], "start": [], "stop": [],
                                   "ipvsadm": [], "reload_same": [], "reload_one": []}  # fmt: skip
    text0 = conf_text(n_svc, n_dest)
    # The first real server's weight, 1 -> 9: one edit in one virtual server.
    text1 = text0.replace("        weight 1\n", "        weight 9\n", 1)
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as fh, \
            tempfile.NamedTemporaryFile("w", suffix=".conf") as fh1:  # fmt: skip
        fh.write(text0)
        fh.flush()
        fh1.write(text1)
        fh1.flush()
        changed = load(fh1.name).config
        text = restore_text(table(n_svc, n_dest))
        async with IPVS() as ipvs:
            for _ in range(rounds):
                await ipvs.flush()
                t0 = time.perf_counter()
                loaded = load(fh.name)
                assert loaded.ok, loaded.errors[:3]
                t1 = time.perf_counter()
                runner = CheckerRunner(loaded.config, CheckOptions())
                t2 = time.perf_counter()
                await runner.start(ipvs)
                t3 = time.perf_counter()
                assert runner.counters.ops == n and not runner.counters.failed_ops
                res["load"].append(t1 - t0)
                res["build"].append(t2 - t1)
                res["start"].append(t3 - t2)
                # Reload (the config already parsed: the parse is timed as "load").
                same = load(fh.name).config
                t0 = time.perf_counter()
                assert await runner.reloader.reload(same) is not None
                res["reload_same"].append(time.perf_counter() - t0)
                assert runner.counters.last_reload_ops == 0
                t0 = time.perf_counter()
                assert await runner.reloader.reload(changed) is not None
                res["reload_one"].append(time.perf_counter() - t0)
                assert runner.counters.last_reload_ops == 1
                t0 = time.perf_counter()
                await runner.stop()
                res["stop"].append(time.perf_counter() - t0)
                assert await ipvs.services(dests=False) == []
                t0 = time.perf_counter()
                subprocess.run(["ipvsadm", "-R"], input=text, text=True, check=True)
                res["ipvsadm"].append(time.perf_counter() - t0)
            await ipvs.flush()
    return res


def main() -> None:
    import logging

    logging.getLogger("fastha").setLevel(logging.WARNING)
    got = uml_bench.main("bench_checker_apply.py", guest)
    if got is None:
        return
    a, best = got
    n = a.services * (a.dests + 1)
    print(f"checker initial apply in UML, {a.services} VS x {a.dests} RS = {n} entries, "
          f"best of {a.rounds}")  # fmt: skip
    print(f"  config load:                        {best['load'] * 1e3:8.1f} ms")
    print(f"  plan + health + desired table:      {best['build'] * 1e3:8.1f} ms")
    print(f"  runner start (dump, plan, apply):   {best['start'] * 1e3:8.1f} ms "
          f"{n / best['start']:9.0f} entries/s")  # fmt: skip
    print(
        f"  reload, same file (0 operations):   {best['reload_same'] * 1e3:8.1f} ms (+ config load)"
    )
    print(f"  reload, one weight (1 operation):   {best['reload_one'] * 1e3:8.1f} ms")
    print(f"  runner stop (remove what it owns):  {best['stop'] * 1e3:8.1f} ms")
    print(f"  ipvsadm -R (same table):            {best['ipvsadm'] * 1e3:8.1f} ms "
          f"{n / best['ipvsadm']:9.0f} entries/s")  # fmt: skip
    print(f"  ratio ipvsadm -R / runner start:    {best['ipvsadm'] / best['start']:8.2f}x")


if __name__ == "__main__":
    main()
