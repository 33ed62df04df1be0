"""Start Debian's keepalived 2.2.7 for real, briefly, in a namespace of its own: does it
run with this configuration, and with which values (its `-d` dump)?

`keepalived -t` only gives an exit code (5 for any problem); whether keepalived then
*runs* is a different question, and the oracle for fastha's start-up path. Each run gets
a fresh network namespace with `lo` and a veth `eth0` (the corpus's interfaces), private
pid files, `-n -l -D -d` (foreground, console log, detail, dump the config), and stops at
"Startup complete", at its exit, or after `settle` seconds, whichever comes first.

This kernel has no ip_vs: keepalived's checker child exits FATAL at "Initializing ipvs",
after parsing and validate_check_config() (check_daemon.c), which never fails. So
reaching that line counts as running (the VRRP child initialises ipvs too, for
lvs_sync_daemon); `-P` runs are otherwise real.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.keepalived import keepalived_path
from tests.support.vrrp_peer import FASTHA

_counter = itertools.count()
_STAMP = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: ")


@dataclass(frozen=True, slots=True)
class StartResult:
    runs: bool
    returncode: int | None  # None: it was still running (we stopped it)
    log: str

    def lines(self) -> list[str]:
        return [_STAMP.sub("", line) for line in self.log.splitlines()]

    def section(self, header: str, name: str) -> dict[str, str]:
        """`Key = value` lines of one dumped object (`VRRP Instance = VI_1`,
        `VRRP Script = chk`), the first of each key."""
        out: dict[str, str] = {}
        inside = False
        for line in self.lines():
            text = line.strip()
            key, sep, value = text.partition(" = ")
            if sep and key == header:
                if inside:
                    break
                inside = value == name
                continue
            if inside and (text.startswith("------<") or (sep and not line.startswith("   "))):
                break
            if inside and sep:
                out.setdefault(key, value)
        return out


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def start(
    conf: str | os.PathLike[str],
    *,
    args: Sequence[str] = ("-P",),
    settle: float = 4.0,
    until: tuple[str, ...] = ("Startup complete", "Initializing ipvs"),
    impl: str = "keepalived",
) -> StartResult:
    """Run keepalived (or, `impl="fastha"`, fastha's daemon, the same way) on `conf` (a
    path) in a new namespace; see the module docstring."""
    binary = keepalived_path() if impl == "keepalived" else str(FASTHA)
    if binary is None:
        raise RuntimeError("keepalived is not installed (apt-get install keepalived)")
    ns = f"fhks{os.getpid() % 10000}x{next(_counter)}"
    _ip("netns", "add", ns)
    proc: subprocess.Popen[bytes] | None = None
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "eth0p", "up")
        with tempfile.TemporaryDirectory(prefix="fastha-ka-") as tmp:
            log = Path(tmp) / "log"
            if impl == "keepalived":
                argv = ["ip", "netns", "exec", ns, binary, *args, "-n", "-l", "-D", "-d",
                        "-f", str(Path(conf).resolve()), "-p", f"{tmp}/p", "-r", f"{tmp}/r",
                        "-c", f"{tmp}/c", "-b", f"{tmp}/b"]  # fmt: skip
            else:
                argv = ["ip", "netns", "exec", ns, binary, "daemon", *args, "-n", "-l",
                        "-f", str(Path(conf).resolve()), "-p", f"{tmp}/p", "-r", f"{tmp}/r",
                        "-c", f"{tmp}/c", "--control-socket", f"{tmp}/ctl.sock",
                        "--json-file", f"{tmp}/j", "--data-file", f"{tmp}/d",
                        "--stats-file", f"{tmp}/s"]  # fmt: skip
            with log.open("wb") as out:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
            deadline = time.monotonic() + settle
            while proc.poll() is None and time.monotonic() < deadline:
                if any(mark in log.read_text(errors="replace") for mark in until):
                    break
                time.sleep(0.05)
            rc = proc.poll()
            if rc is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            text = log.read_text(errors="replace")
            runs = rc is None or any(mark in text for mark in until)
            return StartResult(runs=runs, returncode=rc, log=text)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", ns)


def starts(conf: str | os.PathLike[str], *, checker: bool) -> tuple[bool, str]:
    """Would keepalived (parent + children) start and keep running with `conf`?
    -> (verdict, the logs read)."""
    vrrp = start(conf, args=("-P",))
    if not vrrp.runs:
        return False, vrrp.log
    if not checker:
        return True, vrrp.log
    check = start(conf, args=("-C",), until=("Initializing ipvs",))
    return check.runs, vrrp.log + check.log
