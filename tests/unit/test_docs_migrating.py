"""docs/MIGRATING.md lists every keyword fastha reads but does not act on, with the
consequence check-config prints, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastha.config.validate_unsupported import GLOBAL, INSTANCE, SYNC_GROUP

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "MIGRATING.md"
ROW = re.compile(r"^\| `(?P<kw>[a-z0-9_]+)` \| (?P<where>[a-z_]+) \| (?P<instead>.*) \|$")


def test_unsupported_keyword_table_matches_the_code() -> None:
    rows = {(m["where"], m["kw"]): m["instead"]
            for line in DOC.read_text().splitlines() if (m := ROW.match(line))}  # fmt: skip
    want = {(where, kw): instead
            for where, table in (("global_defs", GLOBAL), ("vrrp_instance", INSTANCE),
                                 ("vrrp_sync_group", SYNC_GROUP))
            for kw, instead in table.items()}  # fmt: skip
    assert rows == want


def test_allowlist_blocks_are_current() -> None:
    """README's compatibility notes and MIGRATING.md show the conformance allow-list as it
    is (regenerate with `python -m tests.conformance.docs`)."""
    from tests.conformance.docs import stale

    assert stale() == []
