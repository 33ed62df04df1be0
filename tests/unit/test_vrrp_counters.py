"""keepalived's STATS_CLEAR: every counter of an instance back to zero."""

from __future__ import annotations

from dataclasses import fields

import pytest

from fastha.vrrp.counters import Counters

pytestmark = pytest.mark.unit


def test_clear_zeroes_every_counter_in_place() -> None:
    c = Counters()
    drops = c.drops
    for f in fields(Counters):
        if f.type == "int":
            setattr(c, f.name, 7)
    c.count_drop("chk_err")
    c.clear()
    assert c == Counters()
    assert c.drops is drops  # the drivers hold this dict
