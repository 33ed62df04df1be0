"""Whole-model validation: every check runs, every problem is collected.

Each side of the model contributes checks (validate_vrrp.py, validate_lvs.py); a check
takes the model and a `Host` (facts about this machine, such as its interfaces, so tests
can pin them) and yields Diagnostics.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastha.config.diagnostics import Diagnostic


def _host_interfaces() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/sys/class/net"))
    except OSError:
        return frozenset()


@dataclass(frozen=True, slots=True)
class Host:
    interfaces: frozenset[str] = field(default_factory=_host_interfaces)
    check_interfaces: bool = True


Check = Callable[[Any, Host], Iterable[Diagnostic]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a whole-model check."""
    CHECKS.append(fn)
    return fn


def validate(config: Any, host: Host | None = None) -> list[Diagnostic]:
    # Importing registers the checks of each side of the model.
    from fastha.config import validate_lvs, validate_vrrp  # noqa: F401

    host = host or Host()
    out: list[Diagnostic] = []
    for fn in CHECKS:
        out.extend(fn(config, host))
    return out
