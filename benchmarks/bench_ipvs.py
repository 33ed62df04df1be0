"""Program 1,000 virtual servers x 10 real servers into a real ip_vs (UML), two ways.

Same guest, same table: fastha's driver (plan from an empty dump, batched netlink
requests) against ``ipvsadm -R`` restoring the equivalent ``-S`` text. Each is timed from
an empty table to the full table, flushed in between; prints both and the ratio. Figures
are from a UML guest (syscalls cost far more than on bare metal): compare them to each
other, not to other machines. Never asserts a timing.

    .venv/bin/python benchmarks/bench_ipvs.py [--services 1000] [--dests 10] [--rounds 3]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import uml_bench

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def table(n_svc: int, n_dest: int):
    from fastha.ipvs.model import Dest, Fwd, Service

    svcs = []
    for i in range(n_svc):
        vip = f"10.{i // 250 % 250}.{i % 250}.1"
        dests = tuple(Dest(f"192.168.{j}.{i % 250 + 1}", 8000 + i // 250, weight=1 + j,
                           fwd=Fwd.MASQ) for j in range(n_dest))  # fmt: skip
        svcs.append(Service(vip, 80, scheduler="wlc", dests=dests))
    return svcs


def restore_text(svcs) -> str:
    lines = []
    for s in svcs:
        lines.append(f"-A -t {s.addr}:{s.port} -s {s.scheduler}")
        lines += [f"-a -t {s.addr}:{s.port} -r {d.addr}:{d.port} -m -w {d.weight}"
                  for d in s.dests]  # fmt: skip
    return "\n".join(lines) + "\n"


async def guest(n_svc: int, n_dest: int, rounds: int) -> dict:
    """Runs inside UML."""
    from fastha.drivers.ipvs import IPVS
    from fastha.ipvs.planner import plan

    svcs = table(n_svc, n_dest)
    text = restore_text(svcs)
    res: dict[str, list[float]] = {"fastha": [], "fastha_plan": [], "ipvsadm": [],
                                   "fastha_dump": []}  # fmt: skip
    async with IPVS() as ipvs:
        for _ in range(rounds):
            await ipvs.flush()
            t0 = time.perf_counter()
            ops = plan(svcs, await ipvs.services())
            t1 = time.perf_counter()
            r = await ipvs.apply(ops)
            t2 = time.perf_counter()
            assert not r.failed and r.done == n_svc * (n_dest + 1), r
            res["fastha"].append(t2 - t0)
            res["fastha_plan"].append(t1 - t0)
            t3 = time.perf_counter()
            dumped = await ipvs.services()
            res["fastha_dump"].append(time.perf_counter() - t3)
            assert plan(svcs, dumped) == []
            await ipvs.flush()
            t0 = time.perf_counter()
            subprocess.run(["ipvsadm", "-R"], input=text, text=True, check=True)
            res["ipvsadm"].append(time.perf_counter() - t0)
            n = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True,
                               check=True).stdout.count("\n")  # fmt: skip
            assert n == n_svc * (n_dest + 1), n
        await ipvs.flush()
    return res


def main() -> None:
    got = uml_bench.main("bench_ipvs.py", guest)
    if got is None:
        return
    a, best = got
    n = a.services * (a.dests + 1)
    print(
        f"IPVS in UML, {a.services} services x {a.dests} real servers = {n} entries, "
        f"best of {a.rounds}"
    )
    print(
        f"  fastha driver (dump+plan+apply): {best['fastha'] * 1e3:8.1f} ms "
        f"(plan {best['fastha_plan'] * 1e3:.1f} ms)  {n / best['fastha']:9.0f} entries/s"
    )
    print(
        f"  ipvsadm -R:                      {best['ipvsadm'] * 1e3:8.1f} ms "
        f"            {n / best['ipvsadm']:9.0f} entries/s"
    )
    print(f"  ratio ipvsadm/fastha:            {best['ipvsadm'] / best['fastha']:8.2f}x")
    print(f"  fastha full dump of the table:   {best['fastha_dump'] * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
