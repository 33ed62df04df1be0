"""The VRRP state machine is the only writer of its state (issue 17; DESIGN.md).

Two checks that each fail on their own: at run time, nothing can assign a Machine's
fields (read-only properties over slots); in the source, no module but `vrrp/fsm.py`
(and `vrrp/machine_view.py`, which declares the fields) assigns an attribute of a
machine or touches its private names (`m._arm(...)`, `inst.machine._state`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fastha.vrrp.fsm import Machine
from fastha.vrrp.machine_view import MachineView
from fastha.vrrp.params import InstanceParams

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "fastha"
OWNERS = {SRC / "vrrp" / "fsm.py", SRC / "vrrp" / "machine_view.py"}


def private_names() -> set[str]:
    """The machine's private fields and methods, as declared."""
    names: set[str] = set()
    for cls in Machine.__mro__[:-1]:  # not object
        names.update(getattr(cls, "__slots__", ()))
        names.update(n for n in vars(cls) if n.startswith("_") and not n.startswith("__"))
    return names


def public_names() -> list[str]:
    return sorted(n for n in dir(Machine) if not n.startswith("_"))


# -- at run time ----------------------------------------------------------------------


@pytest.mark.parametrize("name", public_names())
def test_no_public_field_can_be_assigned(name: str) -> None:
    m = Machine(InstanceParams("VI_1"))
    attr = getattr(Machine, name)
    if callable(attr) and not isinstance(attr, property):
        return  # a method, e.g. handle
    assert isinstance(attr, property) and attr.fset is None and attr.fdel is None, name
    with pytest.raises(AttributeError):
        setattr(m, name, getattr(m, name))


def test_no_new_attribute_can_be_added() -> None:
    m = Machine(InstanceParams("VI_1"))
    assert not hasattr(m, "__dict__")
    with pytest.raises(AttributeError):
        m.sync_gate = None  # type: ignore[attr-defined]  # the point: no such field


def test_machine_adds_no_fields_to_its_view() -> None:
    # Every field is declared (and documented) once, in MachineView.
    assert Machine.__slots__ == ()
    assert set(private_names()) >= set(MachineView.__slots__)


# -- in the source --------------------------------------------------------------------


def _machine_locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function binds to a machine: `m = self.machine`, `m = Machine(...)`."""
    found: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _is_machine_expr(value, set()):
                found.update(t.id for t in targets if isinstance(t, ast.Name))
        if isinstance(node, ast.arg | ast.AnnAssign):
            ann = node.annotation
            if isinstance(ann, ast.Name) and ann.id == "Machine":
                name = node.arg if isinstance(node, ast.arg) else getattr(node.target, "id", "")
                found.add(name)
    return found


def _is_machine_expr(node: ast.AST | None, local: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "machine"
    if isinstance(node, ast.Name):
        return node.id in local
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "Machine"
    return False


class _Checker(ast.NodeVisitor):
    def __init__(self, filename: str, private: set[str]) -> None:
        self.filename = filename
        self.private = private
        self.local: list[set[str]] = [set()]  # machine names bound in each enclosing function
        self.found: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.local.append(_machine_locals(node))
        self.generic_visit(node)
        self.local.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        where = f"{self.filename}:{node.lineno}: {ast.unparse(node)}"
        on_machine = _is_machine_expr(node.value, self.local[-1])
        if on_machine and isinstance(node.ctx, ast.Store | ast.Del):
            self.found.add(f"{where} assigns a machine's field")
        elif on_machine and node.attr.startswith("_"):
            self.found.add(f"{where} reaches into a machine")
        elif node.attr in self.private and not (
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            self.found.add(f"{where} uses a machine's private name")
        self.generic_visit(node)


def violations(source: str, filename: str, private: set[str]) -> list[str]:
    checker = _Checker(filename, private)
    checker.visit(ast.parse(source, filename))
    return sorted(checker.found)


SOURCES = sorted(p for p in SRC.rglob("*.py") if p not in OWNERS)


def test_the_rule_tells_right_from_wrong() -> None:
    bad = (
        "def reload(self, inst, params):\n"
        "    m = inst.machine\n"
        "    m.params = params\n"
        "    m._arm(1, 2, 3, [])\n"
        "    inst.machine.sync_gate = None\n"
        "    inst.machine.counters.advert_sent += 1\n"  # a counter, not a field: allowed
        "def fix(m: Machine):\n"
        "    m.effective_priority = 255\n"
        "def peek(other):\n"
        "    return other._timers\n"
    )
    found = violations(bad, "bad.py", private_names())
    assert [f.split(": ", 1)[0] for f in found] == [
        "bad.py:10",
        "bad.py:3",
        "bad.py:4",
        "bad.py:5",
        "bad.py:8",
    ], found
    good = (
        "def reload(self, inst, params):\n"
        "    for a in inst.machine.handle(Reconfigure(params), 0):\n"
        "        inst.execute(a)\n"
        "    self._timers = {}\n"
        "    return inst.machine.state\n"
    )
    assert violations(good, "good.py", private_names()) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_machine_writes_its_state(path: Path) -> None:
    found = violations(path.read_text(), str(path.relative_to(SRC)), private_names())
    assert not found, "\n".join(found)
