"""`measure.grid_lateness_us`: a sender's lateness against its own fixed grid.

Synthetic timestamps with known lateness (no clocks): what comes back must be what was
put in, less the most punctual advert's.
"""

from __future__ import annotations

import random

import pytest

from fastha.bench import measure

pytestmark = pytest.mark.unit

PERIOD_NS = 10_000_000


def sender(lateness_us: list[float], period_ns: int = PERIOD_NS, lost: frozenset[int] = frozenset(),
           t0: int = 123_456_789) -> list[int]:  # fmt: skip
    return [t0 + k * period_ns + round(late * 1000)
            for k, late in enumerate(lateness_us) if k not in lost]  # fmt: skip


def check(lateness_us: list[float], got: list[float], lost: frozenset[int] = frozenset()) -> None:
    kept = [late for k, late in enumerate(lateness_us) if k not in lost]
    want = [late - min(kept) for late in kept]
    assert len(got) == len(want)
    worst = max(abs(g - w) for g, w in zip(got, want, strict=True))
    assert worst < 5.0, f"recovered lateness off by up to {worst:.1f} µs"


def test_skewed_gaps_do_not_wrap_the_grid() -> None:
    # Each advert 2 µs earlier than the one before, back to 100 µs late every 50: the
    # median gap is 9.998 ms while the grid is 10 ms. Over 6,000 slots a period taken
    # from the median gap is 12 ms off: more than a slot.
    lateness = [100.0 - 2.0 * (k % 50) for k in range(6000)]
    got = measure.grid_lateness_us(sender(lateness), 10.0)
    check(lateness, got)


def test_late_adverts_and_lost_ones_keep_their_slots() -> None:
    rng = random.Random(7)
    lateness = [rng.uniform(0, 40) if rng.random() < 0.95 else rng.uniform(100, 7000)
                for _ in range(6000)]  # fmt: skip
    lost = frozenset(rng.sample(range(1, 5999), 30))
    got = measure.grid_lateness_us(sender(lateness, lost=lost), 10.0)
    check(lateness, got, lost)


def test_a_period_off_nominal_is_not_lateness() -> None:
    lateness = [random.Random(k).uniform(0, 30) for k in range(3000)]
    got = measure.grid_lateness_us(sender(lateness, period_ns=10_004_000), 10.0)
    check(lateness, got)


def test_a_sender_without_a_grid_wanders() -> None:
    # keepalived's schedule: each advert from the previous one's send time, so every
    # wake-up delay carries on; against any line that shows as growing lateness.
    ts, t = [], 0
    rng = random.Random(3)
    for _ in range(3000):
        t += PERIOD_NS + rng.randint(30_000, 300_000)
        ts.append(t)
    got = measure.grid_lateness_us(ts, 10.0)
    assert max(got) > 1000


def test_too_few_adverts() -> None:
    assert measure.grid_lateness_us([1, 2], 10.0) == []
