"""db.queries.health.merged sums points exactly as Point.add one by one (provider health totals)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from core.latency import BUCKETS
from db.queries.health import Point, merged


def _point(rnd: random.Random) -> Point:
    return Point(calls=rnd.randrange(100), errors=rnd.randrange(5), retries=rnd.randrange(3),
                 fallbacks=rnd.randrange(2), unpriced_calls=rnd.randrange(2),
                 cost_usd=Decimal(rnd.randrange(10**6)) / 10**9, duration_ns=rnd.randrange(10**12),
                 errors_by_class={c: rnd.randrange(1, 4) for c in rnd.sample(["timeout", "rate_limited", "x"], 2)},
                 served={m: rnd.randrange(1, 50) for m in rnd.sample(["a", "b", "c"], 2)},
                 histogram=[rnd.randrange(3) for _ in range(BUCKETS)])


@pytest.mark.parametrize("n", [0, 1, 2, 30])
def test_merged_equals_adding_one_by_one(n):
    rnd = random.Random(n)
    points = [_point(rnd) for _ in range(n)]
    one_by_one = Point()
    for p in points:
        one_by_one.add(p)
    assert merged(points) == one_by_one
