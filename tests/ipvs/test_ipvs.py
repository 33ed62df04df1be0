"""IPVS in a real kernel: each test in tests/ipvs/inside, run in one UML boot."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.ipvs

INSIDE = Path(__file__).parent / "inside"
NAMES = sorted(
    node.name
    for path in INSIDE.glob("test_*.py")
    for node in ast.parse(path.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
)


@pytest.mark.parametrize("name", NAMES)
def test_in_uml(uml_results: dict[str, tuple[str, str]], name: str) -> None:
    assert name in uml_results, f"{name} did not run inside UML"
    outcome, details = uml_results[name]
    assert outcome == "passed", f"{name}: {outcome}\n{details}"
