"""Anomalies in a time series: a point far from its own recent past. Pure, no I/O.

Method (robust z-score against a trailing window), for every point:
  1. baseline = the values of the `window` points before it that had at least
     `min_volume` calls (points with too few calls are neither judged nor used);
     at least `min_baseline` of them are needed, else the point is not judged;
  2. median m and MAD (median absolute deviation) of the baseline;
     scale = max(1.4826 * MAD, min_scale, min_scale_rel * |m|) — 1.4826 makes MAD
     estimate a standard deviation for normal data; the floors keep a perfectly flat
     baseline (say, 0 errors for a day) from turning any blip into an infinite z;
  3. z = (value - m) / scale. The point is an anomaly when its volume is at least
     `min_volume`, |z| >= z_threshold, the absolute change |value - m| is at least
     `min_change`, the relative change is at least `min_change_rel` (when m != 0), and
     the direction (up/down) is one the rule watches.
Median and MAD ignore up to half the baseline being odd, so one earlier incident does
not mask the next, and a sustained shift becomes the new normal after window/2 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from bisect import bisect_left, insort
from statistics import median
from typing import Sequence

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Rule:
    metric: str
    unit: str = ""
    z_threshold: float = 4.0
    min_volume: int = 20
    min_change: float = 0.0  # absolute, in the metric's unit
    min_change_rel: float = 0.0  # relative to the baseline median
    min_scale: float = 0.0
    min_scale_rel: float = 0.05
    directions: tuple[str, ...] = ("up",)
    window: int = 24
    min_baseline: int = 6


@dataclass(frozen=True)
class SeriesPoint:
    time: datetime
    value: float | None  # None: not measurable in this bucket (e.g. no priced calls)
    volume: int


@dataclass(frozen=True)
class Anomaly:
    metric: str
    time: datetime
    value: float
    direction: str
    baseline_median: float
    baseline_mad: float
    scale: float
    z: float
    change: float
    relative_change: float | None
    volume: int
    baseline_points: int
    baseline_from: datetime
    baseline_to: datetime
    evidence: str


RULES = {
    # An error rate up by >= 5 percentage points and 4 robust sigmas.
    "error_rate": Rule("error_rate", unit="", min_change=0.05, min_scale=0.01, min_scale_rel=0.0),
    # p95 latency up by >= 50 % and >= 100 ms.
    "latency_p95_ms": Rule("latency_p95_ms", unit="ms", min_change=100.0, min_change_rel=0.5),
    # Cost per priced call up or down by >= 50 % (a silently swapped model shows both ways).
    "cost_per_call_usd": Rule("cost_per_call_usd", unit="USD", min_change_rel=0.5, directions=("up", "down")),
}


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "USD":
        return f"${value:.6g}"
    return f"{value:.3g}"


def detect(points: Sequence[SeriesPoint], rule: Rule, *, flag_from: datetime | None = None) -> list[Anomaly]:
    """Anomalies among `points` (ordered by time) at or after flag_from; earlier points only feed baselines."""
    anomalies = []
    usable: list[SeriesPoint] = []  # judged-eligible points so far, in order
    # The baseline's values kept sorted as the window slides (one insert, one removal per point),
    # so its median is read, not recomputed by sorting: the same median, a month of hours faster.
    window: list[float] = []
    for point in points:
        eligible = point.value is not None and point.volume >= rule.min_volume
        if eligible and (flag_from is None or point.time >= flag_from):
            baseline = usable[-rule.window:]
            if len(baseline) >= rule.min_baseline:
                found = _judge(point, baseline, rule, _sorted_median(window))
                if found is not None:
                    anomalies.append(found)
        if eligible:
            usable.append(point)
            insort(window, point.value)
            if len(usable) > rule.window:
                del window[bisect_left(window, usable[-rule.window - 1].value)]
    return anomalies


def _sorted_median(values: list[float]) -> float:
    """statistics.median of already sorted values (same arithmetic)."""
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _judge(point: SeriesPoint, baseline: list[SeriesPoint], rule: Rule, m: float) -> Anomaly | None:
    """m: the median of the baseline's values."""
    change = point.value - m
    direction = "up" if change > 0 else "down"
    # The checks that need no MAD first: most points fail one of them, and the MAD is the costly part.
    if change == 0 or direction not in rule.directions or abs(change) < rule.min_change:
        return None
    relative = change / abs(m) if m else None
    if relative is not None and abs(relative) < rule.min_change_rel:
        return None
    mad = median(abs(p.value - m) for p in baseline)
    scale = max(MAD_TO_SIGMA * mad, rule.min_scale, rule.min_scale_rel * abs(m))
    z = change / scale if scale > 0 else float("inf")
    if abs(z) < rule.z_threshold:
        return None
    rel_text = f" ({relative:+.0%})" if relative is not None else ""
    evidence = (f"{rule.metric} {_fmt(point.value, rule.unit)} over {point.volume} calls vs a median of "
                f"{_fmt(m, rule.unit)} (MAD {_fmt(mad, rule.unit)}) over the previous {len(baseline)} buckets"
                f"{rel_text}; robust z = {z:+.1f} (threshold {rule.z_threshold:g})")
    return Anomaly(rule.metric, point.time, point.value, direction, m, mad, scale, z, change, relative,
                   point.volume, len(baseline), baseline[0].time, baseline[-1].time, evidence)
