"""Static checks as tests: ruff (lint and format) over the project and mypy (pyproject's
[tool.mypy]: strict) over src/fastha, the _wire.pyi stub included; and every type-ignore,
fmt-skip and fmt-off comment in src/ says why.

The tools come with the `test` extra (scripts/install "test,bench"); a missing one fails
the test, it never skips. A failure lists the problems per file, then the tool's output.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "fastha"

pytestmark = pytest.mark.unit

# The path at the start of a tool's line (group 1).
RUFF_PATH = re.compile(r"([^:\s]+\.pyi?):\d+:")
MYPY_PATH = re.compile(r"([^:]+):\d+: error")
HIT_PATH = re.compile(r"([^:]+):")


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m module args` from the project root (where pyproject configures it)."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"{module} is not installed in {sys.prefix}: it comes with the test extra "
            '(bash scripts/install "test,bench")'
        )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _per_file(lines: list[str], pattern: re.Pattern[str]) -> str:
    """`path: count` for every line that starts with a path."""
    counts = Counter(m.group(1) for line in lines if (m := pattern.match(line)))
    return "\n".join(f"  {path}: {n}" for path, n in counts.most_common())


def test_ruff_check() -> None:
    r = _run("ruff", "check", "--no-cache", "--output-format=concise")
    per_file = _per_file(r.stdout.splitlines(), RUFF_PATH)
    assert r.returncode == 0, f"ruff check, per file:\n{per_file}\n\n{r.stdout}{r.stderr}"


def test_ruff_format() -> None:
    r = _run("ruff", "format", "--no-cache", "--diff")
    files = re.findall(r"^--- (\S+)$", r.stdout, re.M)
    assert r.returncode == 0, (
        f"ruff format would reformat {len(files)} files (run `ruff format` on them):\n"
        + "\n".join(f"  {f}" for f in files)
        + f"\n\n{r.stdout}{r.stderr}"
    )


def test_mypy(tmp_path: Path) -> None:
    report = tmp_path / "report"
    r = _run(
        "mypy",
        "--config-file",
        "pyproject.toml",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--linecount-report",
        str(report),
    )
    errors = [line for line in r.stdout.splitlines() if ": error: " in line]
    per_file = _per_file(errors, MYPY_PATH)
    assert r.returncode == 0, (
        f"mypy: {len(errors)} errors, per file:\n{per_file}\n\n{r.stdout}{r.stderr}"
    )
    # The compiled module's contract is checked too: mypy reads the stub, not the .so.
    checked = (report / "linecount.txt").read_text().split()
    assert "fastha._wire" in checked, "mypy did not check src/fastha/_wire.pyi"


# A suppression's reason is text after it on its line ("fmt: skip  # aligned table"), or
# a comment on the line just above (where it must stand alone: fmt: off).
MARKER = re.compile(r"#\s*(type:\s*ignore(\[[^\]]*\])?|fmt:\s*(skip|off))")


def _unexplained(path: Path) -> list[str]:
    out: list[str] = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = MARKER.search(line)
        if m is None:
            continue
        after = line[m.end() :].strip()
        above = lines[i - 1].strip() if i else ""
        if not re.match(r"#\s*\S", after) and not above.startswith("#"):
            out.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    return out


def test_suppressions_say_why() -> None:
    sources = sorted([*SRC.rglob("*.py"), *SRC.rglob("*.pyi")])
    found = [hit for path in sources for hit in _unexplained(path)]
    assert not found, (
        f"{len(found)} type-ignore/fmt-skip/fmt-off comments without their reason (after "
        "it on the line, or a comment on the line above); per file:\n"
        f"{_per_file(found, HIT_PATH)}\n\n" + "\n".join(found)
    )
