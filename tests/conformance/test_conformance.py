"""keepalived 2.2.7 as the oracle: every scenario of scenarios.py run under keepalived,
under fastha and mixed, diffed (harness.py, README.md)."""

from __future__ import annotations

import pytest

from tests.conformance import coverage
from tests.conformance.harness import Outcome, load_allowlist, run_many
from tests.conformance.ipvs import SCENARIOS as IPVS_SCENARIOS
from tests.conformance.scenarios import SCENARIOS, ci_scenarios
from tests.support.prereq import need_root, need_tool
from tests.support.vrrp_nodes import need_impl

# Labs run at once: each is mostly waiting out quiet periods, the host has 2 cores. 8 cut
# the wall time to 10 min but a 3-node mixed run then missed a master at a checkpoint.
WORKERS = 5


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every CI scenario's runs in one pool of parallel labs (run once per module)."""
    need_root()
    for tool in ("ip", "nft", "tcpdump", "sysctl"):
        need_tool(tool)
    need_impl("keepalived")
    need_impl("fastha")
    return run_many(ci_scenarios(), tmp_path_factory.mktemp("conformance"), workers=WORKERS)


@pytest.mark.system
@pytest.mark.keepalived
@pytest.mark.parametrize("name", [s.name for s in ci_scenarios()])
def test_scenario(name: str, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[name]
    assert not out.problems, out.report()


@pytest.mark.unit
def test_allowlist_entries_have_reasons_and_match_something() -> None:
    diffs, skipped = load_allowlist()
    ids = [d.id for d in diffs]
    assert len(ids) == len(set(ids)), "allow-list ids must be unique"
    known = set(coverage.universe())
    for e in skipped:
        assert e.get("reason", "").strip(), e
        assert e["keyword"] in known, f"{e['keyword']} is no keyword fastha accepts"
    for d in diffs:
        for s in d.scenarios:
            assert s == "*" or any(n.startswith(s.rstrip("*"))
                                   for n in [*SCENARIOS, *IPVS_SCENARIOS]), d  # fmt: skip


@pytest.mark.unit
def test_coverage_table() -> None:
    """Prints keyword -> scenarios; fails while a keyword fastha accepts and acts on has
    no scenario CI runs (a --full one does not count) and is not a listed gap ([[gap]] in
    allowlist.toml: known work, shown)."""
    rows, uncovered = coverage.table([*ci_scenarios(), *IPVS_SCENARIOS.values()])  # type: ignore[list-item]
    print(coverage.render(rows))
    assert not uncovered, (
        f"{len(uncovered)} keywords fastha acts on have no conformance scenario: "
        + ", ".join(uncovered)
    )
