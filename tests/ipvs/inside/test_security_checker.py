"""Script security in the checker child (issue 15 item 1), inside UML's real ip_vs:
the attacks of tests/system/test_security_scripts.py on MISC_CHECK scripts and the
checker's notify scripts, against `fastha daemon -C` and against keepalived 2.2.7 -C.

A local user (useradd in the guest's throwaway root) swaps a root MISC_CHECK script in a
0777 directory and one reached through a link into his own directory, and rewrites a
world-writable MISC_CHECK script, after the checker has started; a world-writable
notify_up and quorum_up are rewritten before. With enable_script_security, none of his
payloads may ever run as root; a control MISC_CHECK in a root-owned directory keeps
running as root; the checker keeps running and keeps its virtual service in ip_vs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.ipvs.inside.conftest import ipvsadm
from tests.support.attacker import Stage, attack, stage, useradd, userdel

HANG_GUARD = 30.0
ROOT = Path(__file__).resolve().parents[3]


def _conf(st: Stage) -> str:
    s = st.scripts
    servers = "".join(
        f"    real_server 198.18.9.{11 + i} 80 {{\n"
        f"        notify_up {s['notify']}\n"
        f'        MISC_CHECK {{\n            misc_path "{s[case]}"\n'
        "            misc_timeout 5\n        }\n    }\n"
        for i, case in enumerate(("control", "dir", "link", "file"))
    )
    return (
        "global_defs {\n    router_id sec\n    enable_script_security\n    script_user root\n}\n"
        "virtual_server 10.10.9.1 80 {\n    delay_loop 1\n    lvs_sched rr\n"
        f"    lvs_method NAT\n    protocol TCP\n    quorum_up {s['notify']}\n{servers}}}\n"
    )


@contextlib.contextmanager
def _checker(impl: str, work: Path, conf: Path) -> Iterator[subprocess.Popen[bytes]]:
    if impl == "keepalived":
        exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
        argv = [exe, "-C", "-n", "-l", "-D", "-f", str(conf), "-p", str(work / "ka.pid"),
                "-c", str(work / "ka_check.pid")]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "fastha.cli.main", "daemon", "-C", "-n", "-l",
                "-f", str(conf)]  # fmt: skip
    with open(work / "daemon.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(HANG_GUARD)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait(path: Path, proc: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not path.exists():
        log = (work / "daemon.log").read_text(errors="replace")
        assert proc.poll() is None, f"the checker exited ({proc.returncode}):\n{log}"
        assert time.monotonic() < deadline, f"{path} never appeared:\n{log}"
        time.sleep(0.05)


def _attack_the_checker(impl: str) -> None:
    name = f"fha-atk-{secrets.token_hex(4)}"
    atk = useradd(name)
    work = Path(tempfile.mkdtemp(prefix="fastha-sec-", dir="/tmp"))
    try:
        work.chmod(0o755)
        st = stage(work, atk)
        attack(st, atk, ("notify",))
        conf = work / "keepalived.conf"
        conf.write_text(_conf(st))
        ipvsadm("-C")
        with _checker(impl, work, conf) as proc:
            control = st.markers / "control.0"
            _wait(control, proc, work)
            attack(st, atk, ("dir", "link", "file"))
            for _ in range(2):  # every MISC_CHECK (delay_loop 1 s) had its turn since
                control.unlink()
                _wait(control, proc, work)
            log = (work / "daemon.log").read_text(errors="replace")
            as_root = [(n, uid) for n, uid in st.marks("pwned.") if uid == 0 or n.endswith(".0")]
            assert not as_root, f"the attacker's code ran as root: {as_root}\n{log}"
            assert proc.poll() is None, log
            table = ipvsadm("-Ln")
            assert "10.10.9.1:80" in table and "198.18.9.11:80" in table, f"{table}\n{log}"
    finally:
        ipvsadm("-C")
        shutil.rmtree(work, ignore_errors=True)
        userdel(name)


def test_checker_scripts_attack_fastha() -> None:
    _attack_the_checker("fastha")


def test_checker_scripts_attack_keepalived() -> None:
    _attack_the_checker("keepalived")
