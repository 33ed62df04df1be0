"""Pid files as keepalived writes and reads them (the parent's and each child's)."""

from __future__ import annotations

import contextlib
import os

from fastha.drivers.files import write_atomic


def write_pid_file(path: str, pid: int) -> None:
    """keepalived's format: the pid and a newline, mode 0644, replaced atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # As the dump files: no predictable temporary a planted symlink could redirect.
    write_atomic(path, f"{pid}\n".encode(), 0o644)


def remove_pid_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def running_pid(path: str | None) -> int | None:
    """The live process a pid file names (not us), as keepalived's keepalived_running()."""
    if not path:
        return None
    try:
        with open(path) as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
