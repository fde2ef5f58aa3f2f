"""Fixed log-scale latency histograms: what the rollups store instead of raw durations.

A histogram is a list of BUCKETS counts. Bucket 0 holds durations under 1 ms; bucket k
(1 <= k <= BUCKETS - 2) holds [BOUNDS_NS[k-1], BOUNDS_NS[k]); the last bucket holds
everything from BOUNDS_NS[-1] (about 741 s) up. Bounds grow by 2^(1/4) (four buckets per
doubling), rounded to whole nanoseconds, so the bucket of a duration is an exact integer
comparison — PostgreSQL's `width_bucket(duration_ns, BOUNDS)` and `bucket_index` agree.

Rollup rows are merged by adding histograms element-wise, which is exact. A percentile
is read from a merged histogram by finding the bucket holding the rank-th value and
interpolating geometrically inside it. Error bound: the estimate and the true
sample percentile lie in the same bucket, so between 1 ms and 741 s the relative error
is below 2^(1/4) - 1 ≈ 18.9% (in practice far less); under 1 ms the absolute error is
below 1 ms; in the overflow bucket the estimate is its lower bound (reported as such).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Sequence

BUCKETS = 80
STEPS_PER_DOUBLING = 4
# 79 thresholds: 1 ms * 2^(j/4), j = 0..78.
BOUNDS_NS: tuple[int, ...] = tuple(round(1_000_000 * 2 ** (j / STEPS_PER_DOUBLING)) for j in range(BUCKETS - 1))
MAX_RELATIVE_ERROR = 2 ** (1 / STEPS_PER_DOUBLING) - 1


def bucket_index(duration_ns: int) -> int:
    """The bucket of one duration (same answer as SQL `width_bucket(duration_ns, BOUNDS)`)."""
    return bisect_right(BOUNDS_NS, duration_ns)


def bucket_range(index: int) -> tuple[int, int | None]:
    """[low, high) in nanoseconds; high is None for the overflow bucket."""
    low = 0 if index == 0 else BOUNDS_NS[index - 1]
    high = BOUNDS_NS[index] if index < BUCKETS - 1 else None
    return low, high


def histogram(durations_ns: Sequence[int]) -> list[int]:
    counts = [0] * BUCKETS
    for ns in durations_ns:
        counts[bucket_index(ns)] += 1
    return counts


def merge(a: Sequence[int], b: Sequence[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def quantiles_ns(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """Estimated q-quantiles (each 0 < q <= 1, in increasing order) in nanoseconds, from one
    cumulative sum of the histogram (provider health reads three per point, thousands of points per page);
    None for each when the histogram is empty.

    The rank-th smallest value (rank = ceil(q * n), at least 1) is located exactly to its
    bucket; within the bucket the value is interpolated at the rank's midpoint position,
    geometrically (linearly in bucket 0, whose low end is 0).
    """
    if any(not 0 < q <= 1 for q in qs) or list(qs) != sorted(qs):
        raise ValueError("each q must be in (0, 1], in increasing order")
    # Cumulative counts (C-level accumulate) and a binary search per rank: the same bucket the
    # rank falls in, found in O(log BUCKETS) instead of a Python loop over the 80 buckets.
    cumulative = list(accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return [None] * len(qs)
    if min(counts) < 0:  # never from the rollups; keep the scan's meaning (negative buckets skipped)
        return _quantiles_scan(counts, qs, total)
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q * total - 1e-9))  # the epsilon keeps 0.95 * 100 at 95
        index = bisect_left(cumulative, rank)
        out.append(_interpolate(index, rank, cumulative[index] - counts[index], counts[index]))
    return out


def _interpolate(index: int, rank: int, seen: int, count: int) -> float:
    """The rank-th value inside bucket `index`, which holds ranks seen+1 .. seen+count."""
    low, high = bucket_range(index)
    if high is None:
        return float(low)
    fraction = (rank - seen - 0.5) / count
    return high * fraction if low == 0 else low * (high / low) ** fraction


def _quantiles_scan(counts: Sequence[int], qs: Sequence[float], total: int) -> list[float | None]:
    ranks = [max(1, math.ceil(q * total - 1e-9)) for q in qs]
    out: list[float | None] = []
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        while len(out) < len(ranks) and seen + count >= ranks[len(out)]:
            out.append(_interpolate(index, ranks[len(out)], seen, count))
        if len(out) == len(ranks):
            return out
        seen += count
    return out + [float(bucket_range(BUCKETS - 1)[0])] * (len(ranks) - len(out))  # unreachable


def quantiles_ms(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    return [None if value is None else round(value / 1e6, 3) for value in quantiles_ns(counts, qs)]


def quantile_ns(counts: Sequence[int], q: float) -> float | None:
    """Estimated q-quantile (0 < q <= 1) in nanoseconds; None for an empty histogram
    (quantiles_ns with one q)."""
    return quantiles_ns(counts, (q,))[0]


def quantile_ms(counts: Sequence[int], q: float) -> float | None:
    return quantiles_ms(counts, (q,))[0]
