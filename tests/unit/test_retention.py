"""core/retention.py: cutoffs, validation, partition names, who keeps a day from being dropped."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from core.retention import (
    Policy, blocking, bounds, days_ahead, describe, effective, is_partition, partition_day, partition_name, validate,
)

NOW = datetime(2026, 12, 1, 17, 30, tzinfo=timezone.utc)
UTC = timezone.utc


@pytest.mark.parametrize("policy, span_cutoff, rollup_cutoff", [
    (Policy(1), datetime(2026, 6, 4, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC)),  # 180 / 730 days, at midnight
    (Policy(1, days=30), datetime(2026, 11, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC)),
    (Policy(1, days=1000), datetime(2024, 3, 6, tzinfo=UTC), datetime(2024, 3, 6, tzinfo=UTC)),  # rollups >= spans
    (Policy(1, days=30, legal_hold=True), None, None),
])
def test_cutoffs(policy, span_cutoff, rollup_cutoff):
    rule = effective(policy, NOW)
    assert (rule.span_cutoff, rule.rollup_cutoff) == (span_cutoff, rollup_cutoff)


def test_a_cutoff_is_a_utc_midnight_whatever_the_offset():
    from datetime import timedelta

    evening = datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC on the 2nd
    assert effective(Policy(1, days=1), evening).span_cutoff == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("days, rollup_days, error", [
    (180, 730, None), (None, None, None), (1, None, None), (None, 1, None),
    (0, None, "between 1 and"), (None, 0, "between 1 and"), (40_000, None, "between 1 and"),
    (400, 300, "at least as long"),
])
def test_validate(days, rollup_days, error):
    if error is None:
        validate(days, rollup_days)
    else:
        with pytest.raises(ValueError, match=error):
            validate(days, rollup_days)


@pytest.mark.parametrize("name, day", [
    ("spans_p20261201", date(2026, 12, 1)), ("spans_default", None), ("spans", None), ("spans_p2026120", None),
    ("traces_p20261201", None),
])
def test_partition_names(name, day):
    assert partition_day(name) == day
    assert is_partition(name) == (day is not None or name == "spans_default")
    if day is not None:
        assert partition_name(day) == name


def test_days_ahead_and_bounds():
    assert days_ahead(date(2026, 12, 30), 2) == [date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1)]
    assert bounds(date(2026, 12, 31)) == (datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_who_keeps_a_day():
    rules = [effective(Policy(1, days=30), NOW), effective(Policy(2), NOW),
             effective(Policy(3, days=10, legal_hold=True), NOW)]
    upper = datetime(2026, 10, 1, tzinfo=UTC)  # past 30 days, within 180
    assert blocking(upper, rules) == [2, 3]
    assert blocking(datetime(2026, 6, 4, tzinfo=UTC), rules) == [3]  # exactly at the 180-day cutoff
    assert blocking(datetime(2026, 6, 5, tzinfo=UTC), rules) == [2, 3]


@pytest.mark.parametrize("policy, text", [
    (Policy(1), "spans 180 days, rollups 730 days; spans before 2026-06-04 are deleted"),
    (Policy(1, days=30, legal_hold=True), "spans 30 days, rollups 730 days; legal hold in force: nothing is deleted"),
])
def test_describe(policy, text):
    assert describe(effective(policy, NOW)) == text
