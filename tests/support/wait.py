"""Polling for a condition in tests: one helper, so a timeout always names what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(cond: Callable[[], Any], what: str, deadline: float, step: float = 0.05) -> Any:
    """The first truthy value of ``cond()`` within ``deadline`` seconds; else AssertionError
    naming ``what``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
