"""Config parse time: fastha's `load` vs `keepalived -t`, same generated file, same run.

    .venv/bin/python benchmarks/bench_config.py
    .venv/bin/python benchmarks/bench_config.py --instances 255 --virtual-servers 100 \
        --real-servers 50 --runs 5 --json

The file (tests/support/genconf.py) has 255 vrrp_instances and 100 virtual_servers with
50 real_servers each (~50,000 lines). fastha is timed in-process (`load`, which is
preprocess + parse + validate) and as the CLI (`fastha check-config`, interpreter start
included); keepalived as `keepalived -t` (process start included, its own pid files).
Medians of --runs runs each. Prints figures and ratios; never asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import keepalived  # noqa: E402
from tests.support.genconf import big_config  # noqa: E402


def _median_time(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=255)
    ap.add_argument("--virtual-servers", type=int, default=100)
    ap.add_argument("--real-servers", type=int, default=50)
    ap.add_argument("--interface", default="eth0")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    from fastha.config.loader import load

    text = big_config(args.instances, args.virtual_servers, args.real_servers, args.interface)
    with tempfile.TemporaryDirectory(prefix="fastha-bench-config-") as tmp:
        path = Path(tmp) / "keepalived.conf"
        path.write_text(text)
        lines = text.count("\n") + 1

        result = load(path)  # warm-up, and a sanity check of what is being timed
        fastha_exit = int(result.exit_code)
        load_med, load_all = _median_time(lambda: load(path), args.runs)

        fastha_bin = str(Path(sys.executable).with_name("fastha"))
        cli_cmd = [fastha_bin, "check-config", "-f", str(path)]
        cli_med, cli_all = _median_time(
            lambda: subprocess.run(cli_cmd, capture_output=True, check=False), args.runs
        )

        ka_path = keepalived.keepalived_path()
        ka: dict[str, object] = {"available": ka_path is not None}
        if ka_path is not None:
            first = keepalived.check(path, binary=ka_path)
            ka_med, ka_all = _median_time(lambda: keepalived.check(path, binary=ka_path), args.runs)
            ka.update(
                version=keepalived.version(ka_path),
                exit=first.returncode,
                median_s=ka_med,
                runs_s=ka_all,
            )

    figures = {
        "file": {
            "lines": lines,
            "bytes": len(text.encode()),
            "vrrp_instances": args.instances,
            "virtual_servers": args.virtual_servers,
            "real_servers_per_vs": args.real_servers,
        },
        "fastha_load": {"median_s": load_med, "runs_s": load_all, "exit": fastha_exit},
        "fastha_cli": {"median_s": cli_med, "runs_s": cli_all},
        "keepalived_t": ka,
    }
    if ka_path is not None:
        figures["ratio_load_vs_keepalived"] = load_med / ka["median_s"]  # type: ignore[operator]
        figures["ratio_cli_vs_keepalived"] = cli_med / ka["median_s"]  # type: ignore[operator]

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    f = figures["file"]
    print(
        f"config: {f['lines']} lines, {f['bytes'] / 1e6:.2f} MB, {args.instances} vrrp_instances, "
        f"{args.virtual_servers} virtual_servers x {args.real_servers} real_servers "
        f"(median of {args.runs}, cpu={os.cpu_count()})"
    )
    print(f"fastha load()            {load_med * 1e3:9.1f} ms   exit {fastha_exit}")
    print(f"fastha check-config CLI  {cli_med * 1e3:9.1f} ms   (interpreter start included)")
    if ka_path is not None:
        print(
            f"keepalived -t {ka['version']:<10} {ka['median_s'] * 1e3:9.1f} ms   exit {ka['exit']}"  # type: ignore[operator]
        )
        print(
            f"ratio fastha load / keepalived -t : {figures['ratio_load_vs_keepalived']:.2f}x\n"
            f"ratio fastha CLI  / keepalived -t : {figures['ratio_cli_vs_keepalived']:.2f}x"
        )
    else:
        print("keepalived not installed: no comparison")


if __name__ == "__main__":
    main()
