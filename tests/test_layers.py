"""Nothing imports upward: wire -> protocol -> drivers -> application (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "fastha"

# Module prefix -> layer. Longest prefix wins. Config is a peer of the protocol layer:
# it depends only on wire-level facts, and the application turns its model into runtime.
LAYERS: dict[str, int] = {
    "fastha._wire": 0,
    "fastha.wire": 0,
    "fastha.config": 1,
    "fastha.vrrp": 1,
    "fastha.check": 1,
    "fastha.drivers": 2,
    "fastha.check.runner": 3,
    "fastha.check.scheduler": 3,
    "fastha.check.probes": 2,
    "fastha.runtime": 3,
    "fastha.daemon": 3,
    "fastha.bench": 3,
    "fastha.cli": 4,
    "fastha": 0,
}


def layer_of(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m for m in found if m == "fastha" or m.startswith("fastha.")]


SOURCES = sorted(SRC.rglob("*.py"))


@pytest.mark.unit
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_imports(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    upward = [m for m in imports_of(path) if m != "fastha" and layer_of(m) > mine]
    assert not upward, f"{me} (layer {mine}) imports upward: {upward}"
