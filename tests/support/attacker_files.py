"""The file attacks' local user, and places it can reach.

    with local_attacker() as mallory, scratch_dir() as base:
        mallory.run("ln", "-s", "/etc/shadow", f"{base}/tmp/keepalived.data")

`local_attacker()` makes a user with tests.support.attacker's `useradd` (no home, no
login shell) and removes it with its `userdel` on any exit; its commands run through
`setpriv` with its uid, gid and no supplementary groups (an argv, no shell), so the
kernel, not the test, decides what it may do. `scratch_dir()` makes a root-owned 0755
directory under /tmp (pytest's own tmp_path is 0700: the attacker could not reach into
it) with `tmp/` (1777, root's: a private /tmp) and `root/` (0700, root's: where the
victim files live), removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.attacker import useradd, userdel
from tests.support.prereq import need_root, need_tool

PYTHON = "/usr/bin/python3"  # the system's: the attacker needs nothing of ours


@dataclass(frozen=True, slots=True)
class Attacker:
    name: str
    uid: int
    gid: int

    def argv(self, *cmd: str) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--reset-env", "--", *cmd]  # fmt: skip

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*cmd), check=check, capture_output=True, text=True,
                              timeout=30, cwd="/")  # fmt: skip

    def popen(self, *cmd: str, **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*cmd), cwd="/", **kw)  # type: ignore[call-overload,no-any-return]

    def python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(PYTHON, "-c", code, *args)


@contextlib.contextmanager
def local_attacker() -> Iterator[Attacker]:
    need_root()
    for tool in ("useradd", "userdel", "setpriv"):
        need_tool(tool)
    name = f"fha-atk-{secrets.token_hex(3)}"
    pw = useradd(name)
    try:
        yield Attacker(name, pw.pw_uid, pw.pw_gid)
    finally:
        userdel(name)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="fastha-sec-", dir="/tmp"))
    try:
        base.chmod(0o755)
        (base / "tmp").mkdir(mode=0o755)
        (base / "tmp").chmod(0o1777)
        (base / "root").mkdir(mode=0o700)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def victim(base: Path, name: str, text: str = "root's file: must never change\n") -> Path:
    """A root-owned 0600 file in root's directory of `base`."""
    path = base / "root" / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return path
