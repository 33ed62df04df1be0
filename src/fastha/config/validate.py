"""Whole-model validation: every check runs, every problem is collected.

Each side of the model contributes checks (validate_vrrp.py, validate_lvs.py,
validate_scripts.py); a check
takes the model and a `Host` (facts about this machine, such as its interfaces, so tests
can pin them) and yields Diagnostics.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastha.config.diagnostics import Diagnostic


def _user_ids(name: str) -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _group_id(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _host_interfaces() -> frozenset[str]:
    """This process's network namespace's interfaces (if_nameindex: the namespace we are
    in, which /sys/class/net is not after a setns)."""
    try:
        return frozenset(name for _index, name in socket.if_nameindex())
    except OSError:
        return frozenset()


@dataclass(frozen=True, slots=True)
class Host:
    interfaces: frozenset[str] = field(default_factory=_host_interfaces)
    check_interfaces: bool = True
    # Script security (validate_scripts.py): users, groups and files as this host has them.
    check_scripts: bool = True
    user_ids: Callable[[str], tuple[int, int] | None] = _user_ids
    group_id: Callable[[str], int | None] = _group_id
    stat: Callable[[str], os.stat_result] = os.stat
    lstat: Callable[[str], os.stat_result] = os.lstat
    readlink: Callable[[str], str] = os.readlink
    path: str = field(default_factory=lambda: os.environ.get("PATH") or os.defpath)


Check = Callable[[Any, Host], Iterable[Diagnostic]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a whole-model check."""
    CHECKS.append(fn)
    return fn


def validate(config: Any, host: Host | None = None) -> list[Diagnostic]:
    # Importing registers the checks of each side of the model.
    from fastha.config import (  # noqa: F401
        validate_lvs,
        validate_scripts,
        validate_unsupported,
        validate_vrrp,
    )

    host = host or Host()
    out: list[Diagnostic] = []
    for fn in CHECKS:
        out.extend(fn(config, host))
    return out
