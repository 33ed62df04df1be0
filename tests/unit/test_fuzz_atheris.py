"""Coverage-guided fuzzing (atheris) of the VRRP decoder and the config loader, bounded
for CI (issue 8). The harness is tests/support/fuzz_atheris.py; run it longer with

    .venv/bin/python -m tests.support.fuzz_atheris wire -max_total_time=600
    .venv/bin/python -m tests.support.fuzz_atheris config -max_total_time=600

atheris must be installed (`.venv/bin/pip install atheris`): missing, the test fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _fuzz(target: str, runs: int, seconds: int) -> str:
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is not installed: .venv/bin/pip install atheris")
    cmd = [sys.executable, "-m", "tests.support.fuzz_atheris", target,
           f"-runs={runs}", f"-max_total_time={seconds}", "-seed=1"]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout + r.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", out)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", out)
    print(
        f"atheris {target}: {done.group(1) if done else '?'} inputs in "
        f"{done.group(2) if done else '?'} s, final cov/ft {cov[-1] if cov else '?'}, "
        f"exit {r.returncode}; violations {0 if r.returncode == 0 else 1}; rerun: "
        f"{' '.join(cmd[1:])}"
    )
    assert r.returncode == 0 and done, f"fuzzing {target} found a problem:\n{out[-4000:]}"
    return out


@pytest.mark.unit
def test_atheris_wire_decode_never_raises() -> None:
    _fuzz("wire", runs=300_000, seconds=20)


@pytest.mark.unit
def test_atheris_config_loader_never_raises() -> None:
    _fuzz("config", runs=4_000, seconds=20)
