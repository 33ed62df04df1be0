"""Prerequisites: a test that needs something missing fails loudly, never skips."""

from __future__ import annotations

import os
import shutil

import pytest


def need_tool(name: str) -> str:
    """Path of an executable the test needs; fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `bash scripts/test` (it installs it)")
    return path


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, raw sockets); CI runs as root")
