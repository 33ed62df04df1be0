"""keepalived 2.2.7 as the oracle of the checker side: every scenario of ipvs.py run
under `keepalived -C` and `fastha daemon -C` in one UML boot (a real ip_vs), the
checkpoints (sorted `ipvsadm -Sn`, notify calls, lvs FIFO lines) diffed with
harness.diff against allowlist.toml."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from tests.conformance.harness import diff, load_allowlist
from tests.conformance.ipvs import SCENARIOS
from tests.ipvs import uml
from tests.support.prereq import need_tool
from tests.support.vrrp_nodes import need_impl

pytestmark = [pytest.mark.ipvs, pytest.mark.keepalived]

MEM = "1536M"  # the guest's memory (tests/ipvs/uml.py)


@pytest.fixture(scope="module")
def traces() -> dict[str, dict[str, Any]]:
    """scenario -> impl -> trace, from one guest running every lab at once."""
    need_tool("linux.uml")
    need_tool("ipvsadm")
    need_impl("keepalived")
    need_impl("fastha")
    # Every lab's daemons at once: 768M ran out (the kernel's OOM killer took fastha's
    # checkers) once two scenarios ran both children.
    res = uml.run(".venv/bin/python -m tests.conformance.ipvs run --out /job/ipvs.json",
                  timeout=600, keep=True, mem=MEM, cpu=uml.last_cpu())  # fmt: skip
    try:
        return json.loads((res.job / "ipvs.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pytest.fail(f"no traces from UML (rc {res.rc}):\n{res.out}\n{res.console[-3000:]}")
    finally:
        shutil.rmtree(res.job, ignore_errors=True)


def problems(name: str, got: dict[str, Any]) -> list[str]:
    scen = SCENARIOS[name]
    k, f = got["keepalived"], got["fastha"]
    out = [f"[{impl}] run failed: {t['error']}" for impl, t in got.items() if t.get("error")]
    if k.get("error"):
        return out
    found, _ = diff(name, {"checkpoints": k["checkpoints"]}, {"checkpoints": f["checkpoints"]},
                    load_allowlist()[0])  # fmt: skip
    for p in found:
        i = p[len("checkpoints[") :].split("]", 1)[0]
        label = scen.steps[int(i)].label() if i.isdigit() and int(i) < len(scen.steps) else "?"
        out.append(f"after {label!r}: {p}")
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ipvs_scenario(name: str, traces: dict[str, dict[str, Any]]) -> None:
    assert name in traces, f"{name} did not run in UML"
    got = traces[name]
    bad = problems(name, got)
    logs = "\n".join(f"--- {impl} ---\n{t.get('log', '')[-4000:]}" for impl, t in got.items())
    logs += "".join(f"\n--- {impl}'s BFD peer (keepalived) ---\n{t['peer_log'][-2000:]}"
                    for impl, t in got.items() if t.get("peer_log"))  # fmt: skip
    assert not bad, "\n".join(bad) + "\n" + logs
