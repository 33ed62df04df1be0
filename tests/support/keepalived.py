"""Run Debian's keepalived in config-test mode (`keepalived -t`), safely.

keepalived -t still behaves like a daemon being started: it writes pid files, may
fork and logs to syslog. Here every run gets pid files of its own in a fresh temporary
directory (never /run/keepalived*.pid of a real daemon), `-n` (no fork), `-l -D`
(detailed log to the console, which -t sends to stderr), and a hard timeout.

Facts learned from keepalived 2.2.7 (`keepalived -t`):
- exit 0: no problem logged as a config error;
- exit 5: any config problem, warnings included (unknown keyword, deprecated keyword
  with a "Please use" note, missing interface, a track script that is missing or
  insecure, a value out of range);
- exit 6: scripts configured without `enable_script_security` (SECURITY VIOLATION);
- a main file that does not exist is *not* an error for 2.2.7 -t: it logs
  "Config files missing" and exits 0 (a directory is skipped, exit 0, too).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastha.bench.daemons import keepalived_binary

TIMEOUT = 30.0

# `(FILE: Line N) message` as keepalived -t prints problems tied to a line.
_LINE_RE = re.compile(r"^\((?P<file>[^:]+): Line (?P<line>\d+)\) (?P<msg>.*)$")


@dataclass(frozen=True, slots=True)
class KeepalivedResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def messages(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def located(self) -> list[tuple[str, int, str]]:
        """(file, line, message) of every problem keepalived tied to a line."""
        out = []
        for line in self.messages:
            m = _LINE_RE.match(line)
            if m:
                out.append((m["file"], int(m["line"]), m["msg"]))
        return out


def keepalived_path() -> str | None:
    return keepalived_binary()


def version(binary: str | None = None) -> str:
    binary = binary or keepalived_path()
    if binary is None:
        return ""
    proc = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    m = re.search(r"Keepalived v(\S+)", proc.stdout + proc.stderr)
    return m.group(1) if m else ""


def check(
    path: str | os.PathLike[str],
    config_id: str | None = None,
    *,
    binary: str | None = None,
    timeout: float = TIMEOUT,
    cwd: str | os.PathLike[str] | None = None,
) -> KeepalivedResult:
    """`keepalived -t -f PATH [-i ID]` with private pid files; never touches a live daemon."""
    binary = binary or keepalived_path()
    if binary is None:
        raise FileNotFoundError("keepalived is not installed")
    with tempfile.TemporaryDirectory(prefix="fastha-kt-") as tmp:
        pid = Path(tmp)
        argv = [
            binary,
            "-t",
            "-f",
            os.fspath(path),
            "-n",
            "-l",
            "-D",
            "-p",
            str(pid / "keepalived.pid"),
            "-r",
            str(pid / "vrrp.pid"),
            "-c",
            str(pid / "checkers.pid"),
            "-b",
            str(pid / "bfd.pid"),
        ]
        if config_id is not None:
            argv += ["-i", config_id]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=os.fspath(cwd) if cwd is not None else tmp,
        )
    return KeepalivedResult(proc.returncode, proc.stdout, proc.stderr)
