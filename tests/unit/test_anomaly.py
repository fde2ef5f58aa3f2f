"""core.anomaly on synthetic series: what is flagged, what is not, and the evidence."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from core.anomaly import RULES, Rule, SeriesPoint, detect

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def series(values, volume=100, volumes=None):
    return [SeriesPoint(T0 + timedelta(hours=i), v, volumes[i] if volumes else volume) for i, v in enumerate(values)]


def noisy(base, spread, n, seed=1):
    rng = random.Random(seed)
    return [base + rng.uniform(-spread, spread) for _ in range(n)]


ERR = RULES["error_rate"]
LAT = RULES["latency_p95_ms"]
COST = RULES["cost_per_call_usd"]

CASES = [
    # (name, rule, values, volumes, expected flagged indexes)
    ("error spike on a flat 3% baseline", ERR, [0.03] * 30 + [0.30], None, [30]),
    ("noise only", ERR, noisy(0.03, 0.01, 40), None, []),
    ("spike with too few calls is not judged", ERR, [0.03] * 30 + [0.5], [100] * 30 + [10], []),
    ("from 0 errors to 3%: below the 5-point minimum change", ERR, [0.0] * 30 + [0.03], None, []),
    ("from 0 errors to 10%: flagged despite a zero MAD", ERR, [0.0] * 30 + [0.10], None, [30]),
    ("error rate falling is not an anomaly", ERR, [0.2] * 30 + [0.0], None, []),
    ("too little baseline (5 points)", ERR, [0.03] * 5 + [0.5], None, []),
    ("latency tripling", LAT, noisy(800, 80, 30) + [2500], None, [30]),
    ("latency +30% is under the 50% minimum", LAT, [800] * 30 + [1040], None, []),
    ("latency halving is not flagged", LAT, [800] * 30 + [400], None, []),
    ("cost per call doubling", COST, [0.002] * 30 + [0.004], None, [30]),
    ("cost per call halving (cheaper model served) is flagged", COST, [0.002] * 30 + [0.001], None, [30]),
    ("unmeasurable buckets are skipped", COST, [0.002] * 30 + [None, 0.0021], None, []),
]


@pytest.mark.parametrize("name,rule,values,volumes,expected", CASES, ids=[c[0] for c in CASES])
def test_detect_table(name, rule, values, volumes, expected):
    points = series(values, volumes=volumes)
    found = detect(points, rule)
    assert [points.index(next(p for p in points if p.time == a.time)) for a in found] == expected


def test_sustained_shift_becomes_the_new_normal():
    values = [0.02] * 24 + [0.25] * 24
    found = detect(series(values), ERR)
    flagged = [(a.time - T0) // timedelta(hours=1) for a in found]
    # Flagged while the baseline median is still the old level (window 24: half = 12 points), then accepted.
    assert flagged == list(range(24, 36))


def test_earlier_incident_does_not_mask_the_next():
    values = [0.03] * 20 + [0.4, 0.4] + [0.03] * 5 + [0.4]
    found = detect(series(values), ERR)
    assert [(a.time - T0) // timedelta(hours=1) for a in found] == [20, 21, 27]


def test_flag_from_uses_earlier_points_only_as_baseline():
    values = [0.03] * 10 + [0.5] + [0.03] * 10 + [0.5]
    found = detect(series(values), ERR, flag_from=T0 + timedelta(hours=15))
    assert [a.time for a in found] == [T0 + timedelta(hours=21)]


def test_evidence_and_numbers():
    values = [0.02, 0.04] * 12 + [0.30]
    (a,) = detect(series(values, volume=50), ERR)
    assert a.baseline_median == pytest.approx(0.03)
    assert a.baseline_mad == pytest.approx(0.01)
    assert a.scale == pytest.approx(0.014826)
    assert a.z == pytest.approx(0.27 / 0.014826)
    assert a.direction == "up" and a.volume == 50 and a.baseline_points == 24
    assert a.baseline_from == T0 and a.baseline_to == T0 + timedelta(hours=23)
    assert a.relative_change == pytest.approx(9.0)
    assert a.evidence == ("error_rate 0.3 over 50 calls vs a median of 0.03 (MAD 0.01) over the previous "
                          "24 buckets (+900%); robust z = +18.2 (threshold 4)")


def test_custom_rule_window_and_threshold():
    rule = Rule("x", z_threshold=2.0, window=4, min_baseline=4, min_scale_rel=0.0)
    values = [10, 11, 9, 10, 30, 10]
    found = detect(series(values), rule)
    assert [a.value for a in found] == [30]


def _reference_detect(points, rule, flag_from=None):
    """The method as stated in core.anomaly's docstring, with statistics.median recomputed per point."""
    from statistics import median

    found, usable = [], []
    for point in points:
        eligible = point.value is not None and point.volume >= rule.min_volume
        if eligible and (flag_from is None or point.time >= flag_from) and len(usable[-rule.window:]) >= rule.min_baseline:
            baseline = usable[-rule.window:]
            m = median(p.value for p in baseline)
            change = point.value - m
            relative = change / abs(m) if m else None
            if (change and ("up" if change > 0 else "down") in rule.directions and abs(change) >= rule.min_change
                    and (relative is None or abs(relative) >= rule.min_change_rel)):
                mad = median(abs(p.value - m) for p in baseline)
                scale = max(1.4826 * mad, rule.min_scale, rule.min_scale_rel * abs(m))
                z = change / scale if scale > 0 else float("inf")
                if abs(z) >= rule.z_threshold:
                    found.append((point.time, m, mad, z, len(baseline), baseline[0].time))
        if eligible:
            usable.append(point)
    return found


@pytest.mark.parametrize("seed", range(40))
def test_sliding_median_finds_what_recomputing_it_finds(seed):
    """Random series with ties, gaps (None, low volume), spikes and steps, under every rule and
    short windows: detect() (sorted sliding window) agrees with the per-point recomputation."""
    rng = random.Random(seed)
    n = rng.randint(0, 200)
    values = [None if rng.random() < 0.1 else rng.choice([0.0, 0.01, 0.5, rng.random(), rng.uniform(100, 5000),
                                                          round(rng.gauss(300, 50))]) for _ in range(n)]
    volumes = [rng.choice([0, 5, 20, 100]) for _ in range(n)]
    points = series(values, volumes=volumes)
    rules = [*RULES.values(), Rule("x", window=rng.randint(1, 9), min_baseline=rng.randint(1, 3),
                                   z_threshold=rng.uniform(0.5, 3), directions=("up", "down"))]
    flag_from = points[len(points) // 3].time if points and seed % 2 else None
    for rule in rules:
        got = [(a.time, a.baseline_median, a.baseline_mad, a.z, a.baseline_points, a.baseline_from)
               for a in detect(points, rule, flag_from=flag_from)]
        assert got == _reference_detect(points, rule, flag_from)
