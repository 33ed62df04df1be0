"""docs/SECURITY.md names the test that performs each attack: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "SECURITY.md").read_text()

pytestmark = pytest.mark.unit


def _references() -> list[tuple[str, str | None]]:
    """(test file, test name or None) for every `tests/...py[::name]`, and every bare
    `::name` with the file named last before it in the same table or paragraph."""
    refs: list[tuple[str, str | None]] = []
    for chunk in DOC.split("\n\n"):
        current: str | None = None
        for m in re.finditer(r"`(tests/[\w/]+\.py)?(?:::(\w+))?(?:\[[^\]]*\])?`", chunk):
            path, name = m.group(1), m.group(2)
            if path:
                current = path
            if current and (path or name):
                refs.append((current, name))
    return refs


def test_security_doc_names_tests_that_exist() -> None:
    refs = _references()
    assert len(refs) > 20, refs
    missing = []
    for path, name in refs:
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(async )?def {name}\(", file.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/SECURITY.md names tests that do not exist: {missing}"
