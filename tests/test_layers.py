"""The packages are the layers (docs/ARCHITECTURE.md): nothing imports upward, and the
core does no I/O.

One layer per package, no per-module exceptions. A package at a layer may import any
package at its own layer or below. The core packages (and the wire layer's Python face)
import nothing that reaches the outside world: no sockets, no clocks, no processes, no
event loop. `fastha._wire` is compiled (timerfd, checksums): the scan sees its Python
face only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "fastha"

# Package -> layer. docs/ARCHITECTURE.md has the same table (tests/unit/test_docs_architecture.py).
LAYERS: dict[str, int] = {
    "fastha": 0,  # the package root: its version, nothing else
    "fastha._wire": 0,
    "fastha.wire": 0,
    "fastha.config": 1,
    "fastha.vrrp": 1,
    "fastha.check": 1,
    "fastha.ipvs": 1,
    "fastha.bfd": 1,
    "fastha.drivers": 2,
    "fastha.probes": 2,
    "fastha.runtime": 3,
    "fastha.daemon": 4,
    "fastha.bench": 5,
    "fastha.cli": 6,
}

# The pure core: what these import may not touch the outside world.
PURE = ("fastha.wire", "fastha.vrrp", "fastha.check", "fastha.ipvs", "fastha.bfd")
IMPURE = frozenset({
    "asyncio", "socket", "os", "time", "subprocess", "select", "selectors", "threading",
    "signal", "pyroute2", "uvloop", "ctypes", "fcntl", "resource", "pwd", "grp", "shutil",
    "glob", "mmap", "multiprocessing", "concurrent",
})  # fmt: skip


def package_of(module: str) -> str:
    """`fastha.vrrp.fsm` -> `fastha.vrrp`; `fastha` -> `fastha`."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    package = package_of(module)
    assert package in LAYERS, f"{package} has no layer: add it to LAYERS and docs/ARCHITECTURE.md"
    return LAYERS[package]


def is_pure(module: str) -> bool:
    return package_of(module) in PURE


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[str]:
    """Every module imported anywhere in the file (function-local imports too)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.append(node.module)
    return found


def fastha_imports(path: Path) -> list[str]:
    return [m for m in imports_of(path) if m == "fastha" or m.startswith("fastha.")]


SOURCES = sorted(SRC.rglob("*.py"))
IDS = [str(p.relative_to(SRC)) for p in SOURCES]


@pytest.mark.unit
@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_no_upward_imports(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    upward = [m for m in fastha_imports(path) if layer_of(m) > mine]
    assert not upward, f"{me} (layer {mine}) imports upward: {upward}"


@pytest.mark.unit
@pytest.mark.parametrize(
    "path", [p for p in SOURCES if is_pure(module_name(p))], ids=lambda p: str(p.relative_to(SRC))
)
def test_core_does_no_io(path: Path) -> None:
    me = module_name(path)
    io = sorted({m for m in imports_of(path) if m.split(".")[0] in IMPURE})
    assert not io, f"{me} is in the pure core ({package_of(me)}) but imports {io}"


@pytest.mark.unit
def test_every_package_has_a_layer() -> None:
    packages = (
        {"fastha"}
        | {module_name(p) for p in SRC.glob("*/__init__.py")}
        | {f"fastha.{p.name.split('.')[0]}" for p in SRC.glob("_*.pyx")}
    )
    assert packages == set(LAYERS), (
        f"missing from LAYERS: {sorted(packages - set(LAYERS))}; "
        f"gone from src: {sorted(set(LAYERS) - packages)}"
    )


MAX_CLASS_LINES = 250  # issue 17: a class that grows past this is doing two jobs


@pytest.mark.unit
def test_no_class_is_too_large() -> None:
    """Every class in src/ fits in MAX_CLASS_LINES lines, decorators and docstring included."""
    big = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = (node.end_lineno or node.lineno) - first + 1
                if size > MAX_CLASS_LINES:
                    big.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {size} lines")
    assert not big, "classes above ~250 lines (split by job):\n" + "\n".join(big)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("importer", "imported", "upward"),
    [
        ("fastha.vrrp.fsm", "fastha.drivers.netlink", True),
        ("fastha.drivers.netlink", "fastha.vrrp.addresses", False),
        ("fastha.probes.http", "fastha.runtime.child_status", True),
        ("fastha.runtime.child", "fastha.runtime.vrrp.runner", False),
        ("fastha.daemon.supervisor", "fastha.runtime.child", False),
        ("fastha.runtime.control", "fastha.daemon.paths", True),
        ("fastha.ipvs.planner", "fastha.check.health", False),
    ],
)
def test_the_rule_tells_up_from_down(importer: str, imported: str, upward: bool) -> None:
    """The checker itself can fail: known upward and downward pairs come out as such."""
    assert (layer_of(imported) > layer_of(importer)) is upward
