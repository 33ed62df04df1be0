"""A real local attacker for the security tests: a user made with useradd, the files a
root daemon's scripts live in, and what that user can do to them with his own rights.

    pw = useradd("fha-atk-1234")          # removed with userdel(name) whatever happens
    st = stage(base, pw)                  # scripts in a 0777 dir, via a link into his
    attack(st, pw, ("dir", "link"))       # dir, world-writable; payloads touch markers
    st.marks("pwned.")                    # [(marker name, owner uid)]
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CASES = ("dir", "link", "file", "notify")


def useradd(name: str) -> pwd.struct_passwd:
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--user-group",
         "--shell", "/usr/sbin/nologin", name],
        check=True, capture_output=True,
    )  # fmt: skip
    return pwd.getpwnam(name)


def userdel(name: str) -> None:
    """userdel refuses while a process of the user lives (a script just finishing):
    retry a few times, then force it."""
    for _ in range(50):
        if subprocess.run(["userdel", name], check=False, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["userdel", "--force", name], check=True, capture_output=True)


def as_user(pw: pwd.struct_passwd, command: str) -> None:
    """Run a shell snippet as that user (no root left: uid, gid and groups dropped)."""
    subprocess.run(
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
         "--", "/bin/sh", "-ec", command],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\nexit 0\n")
    path.chmod(mode)
    return path


@dataclass
class Stage:
    base: Path
    markers: Path
    scripts: dict[str, Path]  # case -> the path the config names
    payloads: dict[str, str]  # case -> the payload text

    def marks(self, prefix: str) -> list[tuple[str, int]]:
        """(name, owner uid) of every marker file starting with prefix."""
        return sorted(
            (p.name, p.stat().st_uid) for p in self.markers.iterdir() if p.name.startswith(prefix)
        )


def stage(base: Path, atk: pwd.struct_passwd) -> Stage:
    markers = base / "markers"
    markers.mkdir()
    markers.chmod(0o777)
    safe, opened, theirs = base / "safe", base / "open", base / "theirs"
    safe.mkdir()
    opened.mkdir()
    opened.chmod(0o777)
    theirs.mkdir()
    os.chown(theirs, atk.pw_uid, atk.pw_gid)
    (safe / "link").symlink_to(theirs)
    benign = "true"
    scripts = {
        "control": script(safe / "control.sh", f"touch {markers}/control.$(id -u)"),
        "dir": script(opened / "chk.sh", benign),
        "link": safe / "link" / "chk.sh",
        "file": script(safe / "writable.sh", benign, 0o777),
        "notify": script(safe / "notify.sh", benign, 0o777),
    }
    script(theirs / "chk.sh", benign)  # root's file, in the attacker's directory
    payloads = {
        case: f"#!/bin/sh\ntouch {markers}/pwned.{case}.$(id -u)\nexit 0\n" for case in CASES
    }
    return Stage(base, markers, scripts, payloads)


def attack(st: Stage, atk: pwd.struct_passwd, cases: tuple[str, ...]) -> None:
    """What the attacker can do with his own rights: replace a file in a directory he
    may write (dir, link), rewrite a file he may write (file, notify)."""
    for case in cases:
        path, payload = st.scripts[case], st.payloads[case]
        if case in ("dir", "link"):
            cmd = f"rm -f {path}; printf '%s' '{payload}' > {path}; chmod 755 {path}"
        else:
            cmd = f"printf '%s' '{payload}' > {path}"
        as_user(atk, cmd)
