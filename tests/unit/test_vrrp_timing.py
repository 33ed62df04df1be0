"""RFC 5798 §6.1 / RFC 3768 §6.1 timer table, with keepalived's microsecond rounding."""

from __future__ import annotations

import pytest

from fastha.vrrp.timing import (
    master_down_interval_ns,
    skew_time_min_ns,
    skew_time_ns,
)

US = 1_000
MS = 1_000_000
S = 1_000_000_000

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("version", "priority", "interval_cs", "skew_ns", "down_ns"),
    [
        # v3: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 (centiseconds)
        (3, 100, 100, 609_375 * US, 3 * S + 609_375 * US),
        (3, 255, 100, 3_906 * US, 3 * S + 3_906 * US),  # 3906.25 us truncated
        (3, 254, 100, 7_812 * US, 3 * S + 7_812 * US),  # 7812.5 us truncated
        (3, 1, 100, 996_093 * US, 3 * S + 996_093 * US),
        (3, 200, 50, 109_375 * US, 1_500 * MS + 109_375 * US),
        (3, 100, 1, 6_093 * US, 30 * MS + 6_093 * US),  # 10 ms adverts
        (3, 150, 4095, 16_955_859 * US, 3 * 40_950 * MS + 16_955_859 * US),
        # v2: Skew_Time = (256 - Priority) / 256 seconds, whatever the interval
        (2, 100, 100, 609_375 * US, 3 * S + 609_375 * US),
        (2, 100, 200, 609_375 * US, 6 * S + 609_375 * US),
        (2, 255, 100, 3_906 * US, 3 * S + 3_906 * US),
        (2, 1, 300, 996_093 * US, 9 * S + 996_093 * US),
    ],
)
def test_rfc_timing_table(
    version: int, priority: int, interval_cs: int, skew_ns: int, down_ns: int
) -> None:
    assert skew_time_ns(version, priority, interval_cs) == skew_ns
    assert master_down_interval_ns(version, priority, interval_cs) == down_ns


def test_v3_skew_matches_rfc_formula_to_the_microsecond() -> None:
    for prio in range(1, 256):
        for cs in (1, 7, 100, 333, 4095):
            exact_us = (256 - prio) * cs * 10_000 / 256
            assert skew_time_ns(3, prio, cs) == int(exact_us) * US


def test_higher_priority_has_shorter_skew() -> None:
    skews = [skew_time_ns(3, p, 100) for p in range(1, 256)]
    assert skews == sorted(skews, reverse=True)


def test_down_timer_adverts_replaces_the_three() -> None:
    assert master_down_interval_ns(3, 100, 100, 1) == 1 * S + 609_375 * US
    assert master_down_interval_ns(3, 100, 100, 10) == 10 * S + 609_375 * US


def test_skew_min_is_priority_255_skew() -> None:
    assert skew_time_min_ns(3, 100) == skew_time_ns(3, 255, 100)
    assert skew_time_min_ns(2, 500) == skew_time_ns(2, 255, 500)
