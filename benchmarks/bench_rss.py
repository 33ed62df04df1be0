"""Memory of the whole daemon, fastha next to keepalived, in the same run.

    sudo .venv/bin/python benchmarks/bench_rss.py                 # 1 and 255 instances
    sudo .venv/bin/python benchmarks/bench_rss.py --instances 1 --json

Per implementation and instance count, one namespace with one director on a veth pair
runs the lab's keepalived.conf (bench/lab.keepalived_conf: K VRRP
instances, one VIP each; alone, it becomes master of all) plus one virtual_server with
one TCP_CHECK real server on loopback, so that both daemons start their checker child
too. Each runs as a full daemon, no -P/-C: ``fastha daemon -n -l`` and
``keepalived -n -l -D``, one after the other (never side by side).

Once every instance is MASTER (read from the console log) and ``--settle`` seconds
have passed, each process in the namespace is read from /proc: VmRSS (what `ps` and
the issue's table call RSS) and Pss (smaps_rollup: shared pages divided among the
processes sharing them -- keepalived's children are forks of its parent and share its
pages copy-on-write, fastha's are fresh interpreters that share only the files they
map). Roles come from the process titles (fastha) or the process tree (keepalived:
the parent is the daemon's pid; its child running vrrp is the one whose pid is in the
VRRP pid file). Ratios are fastha / keepalived.

Both checkers need IPVS (keepalived's exits FATAL without it and takes the daemon down;
fastha's is respawned), and this machine's kernel has none: ``--uml`` runs the whole
bench inside the User-Mode-Linux guest the IPVS tests boot (tests/ipvs/uml.py: the
host's root read-only, same venv, ip_vs loaded). ``--vrrp-only`` runs both daemons with
-P and no virtual_server (parent + VRRP child, the issue's table), on the host.

Measured on the 2-core VM (MB RSS, parent + vrrp + checker; keepalived 2.2.7 in the same
run), main (d5e6c32) -> branch rss:

    --uml, 1 instance     32.2 + 42.7 + 44.3 = 119.3  ->  28.4 + 36.1 + 31.1 = 95.7  (keepalived 17.0)
    --uml, 255 instances  33.8 + 50.7 + 44.8 = 129.4  ->  30.1 + 44.4 + 32.1 = 106.5 (keepalived 17.4)
    --vrrp-only, 1        32.6 + 43.2        =  75.7  ->  28.7 + 35.4        = 64.1  (keepalived 13.1)
    --vrrp-only, 255      34.2 + 51.2        =  85.4  ->  30.2 + 43.4        = 73.7  (keepalived 13.3)

main (466eb6c) -> branch rss2 (no OpenSSL outside the checker: runtime/notls; pyroute2's
ssl and unittest deferred; one job task per busy instance only; model_bfd); --vrrp-only
two runs each, back to back (spread within 0.4 MB), --uml one; keepalived 13.0-13.4 /
17.0-17.4 MB in every run:

    --vrrp-only, 1        28.9 + 37.0        =  65.8  ->  23.7 + 30.2        = 53.9
    --vrrp-only, 255      30.6 + 44.5        =  75.1  ->  25.7 + 37.0        = 62.7
    --uml, 1 instance     28.7 + 37.0 + 31.4 =  97.0  ->  23.6 + 31.5 + 30.5 = 85.6  (one run)
    --uml, 255 instances  30.3 + 44.2 + 32.5 = 107.0  ->  25.6 + 36.9 + 31.6 = 94.0  (one run)

main (85de2c9) -> branch rss3 (the checker's loop without OpenSSL too, ssl at the first
SSL_GET; orjson at the control socket's first request; no parser in a child with its
parent's snapshot; getopt for the children's command line); each mode two runs, before
and after back to back, at 2901d75 and again at bdd5559 (all within 0.5 MB of these);
keepalived 12.8-13.6 / 17.0-17.4 MB:

    --vrrp-only, 1        24.0 + 30.3        =  54.3  ->  23.7 + 29.1        = 52.9
    --vrrp-only, 255      25.6 + 37.1        =  62.8  ->  25.2 + 36.0        = 61.2
    --uml, 1 instance     23.8 + 30.7 + 30.7 =  85.2  ->  23.6 + 29.6 + 25.7 = 78.8
    --uml, 255 instances  25.5 + 37.4 + 31.6 =  94.4  ->  25.1 + 36.5 + 26.3 = 87.9

Not in these figures (TCP_CHECK only, no alerts): an HTTP_GET checker no longer loads
libcrypto for its digest (-3.7 MB) nor the regex module without a regex url (-1.4 MB),
and the first SMTP alert no longer loads aiosmtplib with email, hmac and ssl (-6.6 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastha.bench.daemons import keepalived_command
from fastha.bench.lab import Director, LabSpec, keepalived_conf, unique_name
from fastha.bench.topology import ns_pids

ROLES = ("parent", "vrrp", "checker")
MASTER_RE = re.compile(r"\((VI_\d+)\) Entering MASTER STATE")

VIRTUAL_SERVER = """
virtual_server 198.18.1.250 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 127.0.0.1 9 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


def proc_kib(pid: int) -> dict[str, int]:
    """VmRSS and Pss of a process in KiB; {} when it is gone."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1])
    return out


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def ppid(pid: int) -> int:
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    return 0


def roles(impl: str, daemon_pid: int, rundir: Path, ns: str) -> dict[str, int]:
    """role -> pid of the daemon's processes in ``ns``."""
    out: dict[str, int] = {}
    pids = ns_pids(ns)
    if impl == "fastha":
        for p in pids:
            title = cmdline(p)
            for role in ROLES:
                if title.startswith(f"fastha: {role}"):
                    out[role] = p
        return out
    out["parent"] = daemon_pid
    vrrp_pid = 0
    with contextlib.suppress(OSError, ValueError):
        vrrp_pid = int((rundir / "vrrp.pid").read_text())
    for p in pids:
        if p != daemon_pid and ppid(p) == daemon_pid:
            out["vrrp" if p == vrrp_pid else "checker"] = p
    return out


def command(impl: str, conf: Path, rundir: Path, vrrp_only: bool) -> list[str]:
    if impl == "keepalived":
        cmd = keepalived_command(conf, rundir)
        if not vrrp_only:
            cmd.remove("-P")  # the full daemon: VRRP and checker children
        return cmd
    return [
        sys.executable, "-I", "-m", "fastha.cli.main", "daemon", "-n", "-l",
        *(["-P"] if vrrp_only else []),
        "-f", str(conf),
        "-p", str(rundir / "fastha.pid"),
        "-r", str(rundir / "vrrp.pid"),
        "-c", str(rundir / "checkers.pid"),
    ]  # fmt: skip  # option and value on one line, as `fastha daemon --help` lists them


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    """A namespace with lo and eth0 up (eth0: a veth whose peer eth1 is in it too, so no
    bridge module is needed: the UML guest has none); everything in it killed at the end."""
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        ip("-n", name, "addr", "add", "198.18.0.11/16", "dev", "eth0")
        ip("-n", name, "link", "set", "eth1", "up")
        ip("-n", name, "link", "set", "eth0", "up")
        yield name
    finally:
        for p in ns_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def one(impl: str, instances: int, settle: float, workdir: Path, vrrp_only: bool) -> dict[str, Any]:
    name = unique_name(f"fhr{impl[0]}")
    spec = LabSpec(
        name=name, directors=(Director("a", "fastha", 150),), advert_int=1, instances=instances
    )
    rundir = workdir / f"{impl}-{instances}"
    rundir.mkdir(parents=True, exist_ok=True)
    conf = rundir / "keepalived.conf"
    conf.write_text(
        keepalived_conf(spec, spec.directors[0]) + ("" if vrrp_only else VIRTUAL_SERVER)
    )
    log_path = rundir / "daemon.log"
    with namespace(name) as ns:
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *command(impl, conf, rundir, vrrp_only)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd="/",
            )
        try:
            deadline = time.monotonic() + 60 + instances * 0.2
            masters: set[str] = set()
            while time.monotonic() < deadline and proc.poll() is None:
                masters = set(MASTER_RE.findall(log_path.read_text(errors="replace")))
                if len(masters) >= instances:
                    break
                time.sleep(0.2)
            if len(masters) < instances:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"{impl}: {len(masters)}/{instances} masters\n{tail}")
            time.sleep(settle)
            pids = roles(impl, proc.pid, rundir, ns)
            mem = {role: proc_kib(pid) for role, pid in pids.items()}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {
        "impl": impl,
        "instances": instances,
        "pids": pids,
        "kib": mem,
        "rss_kib": sum(m.get("rss", 0) for m in mem.values()),
        "pss_kib": sum(m.get("pss", 0) for m in mem.values()),
    }


def in_guest(argv: list[str]) -> int:
    """This script again, inside a UML guest (tests/ipvs/uml.py of this checkout)."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from tests.ipvs import uml

    inner = " ".join(a for a in argv if a != "--uml") + " --guest"
    python = root / ".venv" / "bin" / "python"
    r = uml.run(f"{python} {Path(__file__).resolve()} {inner}", timeout=900, mem="1536M")
    sys.stdout.write(r.out)
    return r.rc


def mb(kib: int | None) -> str:
    return "-" if not kib else f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, action="append", help="default: 1 and 255")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after all are MASTER")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-keepalived", action="store_true")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--uml", action="store_true", help="run inside a UML guest with IPVS")
    mode.add_argument("--vrrp-only", action="store_true", help="-P, no virtual_server")
    ap.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)  # inside UML
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces)")
    if args.uml:
        return in_guest(argv if argv is not None else sys.argv[1:])
    if not args.vrrp_only and not Path("/proc/net/ip_vs").exists():
        try:  # keepalived's checker exits FATAL without IPVS and takes its daemon down
            subprocess.run(["modprobe", "ip_vs"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            ap.error("no IPVS in this kernel: --uml (all three processes) or --vrrp-only")
    if args.guest:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.ipvs import kmod

        kmod.load(["veth"])
    impls = ["fastha"] if args.no_keepalived else ["fastha", "keepalived"]
    counts = args.instances or [1, 255]
    workdir = Path(tempfile.mkdtemp(prefix="fastha-bench-rss-"))
    results: dict[str, dict[str, Any]] = {}
    for k in counts:
        for impl in impls:
            results[f"{impl}/{k}"] = one(impl, k, args.settle, workdir, args.vrrp_only)
    ratios: dict[str, dict[str, float]] = {}
    for k in counts:
        f, ka = results.get(f"fastha/{k}"), results.get(f"keepalived/{k}")
        if f and ka and ka["rss_kib"] and ka["pss_kib"]:
            ratios[str(k)] = {
                "rss": round(f["rss_kib"] / ka["rss_kib"], 2),
                "pss": round(f["pss_kib"] / ka["pss_kib"], 2),
            }
    if args.json:
        doc = {"bench": "rss", "vrrp_only": args.vrrp_only, "results": results, "ratios": ratios}
        print(json.dumps(doc))
        return 0
    print(f"{'impl':<12}{'inst':>5}  " + "  ".join(f"{r + ' RSS/PSS MB':>20}" for r in ROLES)
          + f"  {'total RSS':>9}  {'total PSS':>9}")  # fmt: skip
    for r in results.values():
        cells = [
            f"{mb(r['kib'].get(role, {}).get('rss'))} / {mb(r['kib'].get(role, {}).get('pss'))}"
            for role in ROLES
        ]
        print(
            f"{r['impl']:<12}{r['instances']:>5}  "
            + "  ".join(f"{c:>20}" for c in cells)
            + f"  {mb(r['rss_kib']):>9}  {mb(r['pss_kib']):>9}"
        )
    for k, rt in ratios.items():
        print(
            f"ratio fastha/keepalived, {k} instance(s): RSS {rt['rss']:.2f}x  PSS {rt['pss']:.2f}x"
        )
    print(f"(work directory with confs and logs: {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
