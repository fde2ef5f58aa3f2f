"""core.latency: bucket layout and percentile error bound."""

from __future__ import annotations

import random

import pytest

from core.latency import (BOUNDS_NS, BUCKETS, MAX_RELATIVE_ERROR, bucket_index, bucket_range, histogram, merge,
                          quantile_ns, quantiles_ns)


@pytest.mark.parametrize("ns,index", [
    (0, 0), (999_999, 0), (1_000_000, 1), (1_189_206, 1), (1_189_207, 2), (2_000_000, 5),
    (741_455_200_188, 78), (741_455_200_189, 79), (10**15, 79),
])
def test_bucket_index(ns, index):
    assert bucket_index(ns) == index
    low, high = bucket_range(index)
    assert low <= ns and (high is None or ns < high)


def test_layout():
    assert len(BOUNDS_NS) == BUCKETS - 1
    assert all(b2 / b1 == pytest.approx(2 ** 0.25, rel=1e-6) for b1, b2 in zip(BOUNDS_NS, BOUNDS_NS[1:]))


def test_empty_and_single():
    assert quantile_ns([0] * BUCKETS, 0.5) is None
    h = histogram([3_000_000])
    low, high = bucket_range(bucket_index(3_000_000))
    assert low <= quantile_ns(h, 0.99) < high


def test_overflow_reports_the_lower_bound():
    assert quantile_ns(histogram([10**15]), 0.5) == BOUNDS_NS[-1]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_relative_error_bound_on_lognormal_samples(seed, q):
    rng = random.Random(seed)
    values = sorted(int(rng.lognormvariate(20.5, 1.0)) for _ in range(rng.randint(1, 3000)))  # ~800 ms median
    true = values[max(1, -(-int(q * len(values) * 1000) // 1000)) - 1]
    estimate = quantile_ns(histogram(values), q)
    assert abs(estimate - true) / true < MAX_RELATIVE_ERROR


def test_merge_is_elementwise_and_exact():
    a, b = histogram([1_500_000, 2_500_000]), histogram([2_500_000, 9_000_000_000])
    assert merge(a, b) == histogram([1_500_000, 2_500_000, 2_500_000, 9_000_000_000])


QS = (0.01, 0.5, 0.9, 0.95, 0.99, 1.0)


@pytest.mark.parametrize("values", [
    [], [0], [3_000_000], [10**15], [10**15, 10**15, 1], [5_000_000] * 7 + [900_000] * 3,
    *([int(random.Random(seed).lognormvariate(20.5, s)) for _ in range(n)]
      for seed, s, n in ((1, 0.3, 1), (2, 1.0, 2), (3, 2.0, 99), (4, 0.6, 1000), (5, 3.0, 20))),
])
def test_several_quantiles_in_one_pass_are_each_quantile_exactly(values):
    h = histogram(values)
    assert quantiles_ns(h, QS) == [quantile_ns(h, q) for q in QS]
    assert quantiles_ns(h, (0.5,)) == [quantile_ns(h, 0.5)]


@pytest.mark.parametrize("qs", [(0.9, 0.5), (0, 0.5), (0.5, 1.5)])
def test_quantiles_refuse_unordered_or_out_of_range(qs):
    with pytest.raises(ValueError):
        quantiles_ns(histogram([1]), qs)


@pytest.mark.parametrize("seed", range(20))
def test_binary_search_equals_the_bucket_scan(seed):
    """quantiles_ns finds each rank's bucket by bisecting the cumulative counts: the same values as
    the plain scan over the buckets, on sparse and dense histograms, including the overflow bucket."""
    from core.latency import _quantiles_scan, quantiles_ns

    rnd = random.Random(seed)
    counts = [0] * BUCKETS
    for _ in range(rnd.choice([1, 2, 7, 100, 5000])):
        counts[rnd.choice([0, 1, BUCKETS - 1, rnd.randrange(BUCKETS)])] += 1
    qs = (0.01, 0.5, 0.9, 0.95, 0.99, 1.0)
    assert quantiles_ns(counts, qs) == _quantiles_scan(counts, qs, sum(counts))
