"""docs/ARCHITECTURE.md's package table is the layer test's: same packages, same layers;
and the README links the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.test_layers import LAYERS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()

pytestmark = pytest.mark.unit


def _table() -> dict[str, int]:
    """`| `fastha.x` | layer | owns |` rows of the "Packages and layers" section."""
    section = DOC.split("\n## Packages and layers\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, int] = {}
    for m in re.finditer(r"^\| `(fastha[\w.]*)` \| (\d+) \| (.+?) \|$", section, re.M):
        package, layer, owns = m.group(1), int(m.group(2)), m.group(3).strip()
        assert package not in rows, f"{package} twice in the table"
        assert owns, f"{package}: say what it owns"
        rows[package] = layer
    return rows


def test_package_table_matches_the_layer_test() -> None:
    # The package root holds only the version: it has no row.
    expected = {p: layer for p, layer in LAYERS.items() if p != "fastha"}
    assert _table() == expected


def test_readme_links_the_architecture_page() -> None:
    assert "(docs/ARCHITECTURE.md)" in (ROOT / "README.md").read_text()
