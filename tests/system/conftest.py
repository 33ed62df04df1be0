"""System-test fixtures: root, tools, and a namespace topology torn down on any outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_root, need_tool


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    """A switch namespace with a bridge; add nodes with ``topo.node(name, ipv4=..)``."""
    need_root()
    need_tool("ip")
    t = Topology(tmp_path)
    try:
        yield t
    finally:
        t.close()
