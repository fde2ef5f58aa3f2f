"""core.window.parse_bounds: the trace list's open-ended window (no window: every run)."""

from datetime import datetime, timedelta, timezone

import pytest

from core.window import parse_bounds, parse_window, quick_bounds

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T = datetime(2026, 11, 19, 8, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("range_, since, until, expected", [
    ("", "", "", (None, None, [])),
    ("24h", "", "", (NOW - timedelta(hours=24), NOW, [])),
    ("15m", "", "", (NOW - timedelta(minutes=15), NOW, [])),
    ("", "2026-11-19T08:30", "", (T, None, [])),
    ("", "", "2026-11-19T08:30Z", (None, T, [])),
    ("7d", "2026-11-19T08:30", "", (T, None, [])),  # from/to win over a quick range
    ("2y", "", "", (None, None, ["Range must be one of 15m, 1h, 24h, 7d, 30d."])),
    ("", "yesterday", "", (None, None, ["“From” is not a date/time like 2026-11-20T12:00 (UTC)."])),
    ("", "0001-01-01T00:00+05:00", "", (None, None, ["“From” must be between 1970-01-01 and 9999-01-01."])),
    ("", "2026-11-19T09:00", "2026-11-19T08:30", (datetime(2026, 11, 19, 9, tzinfo=timezone.utc), T,
                                                  ["“To” must be later than “From”."])),
])
def test_bounds(range_, since, until, expected):
    assert parse_bounds(range_, since, until, NOW) == expected


M = datetime(2026, 11, 20, 12, 34, 56, 789, tzinfo=timezone.utc)


@pytest.mark.parametrize("key, now, expected", [
    ("15m", M, (M - timedelta(minutes=15), M)),                       # shorter than a day: ends now
    ("1h", M, (M - timedelta(hours=1), M)),
    ("24h", M, (datetime(2026, 11, 19, 13, tzinfo=timezone.utc), datetime(2026, 11, 20, 13, tzinfo=timezone.utc))),
    ("7d", M, (datetime(2026, 11, 13, 13, tzinfo=timezone.utc), datetime(2026, 11, 20, 13, tzinfo=timezone.utc))),
    ("30d", M, (datetime(2026, 10, 21, 13, tzinfo=timezone.utc), datetime(2026, 11, 20, 13, tzinfo=timezone.utc))),
    ("24h", NOW, (NOW - timedelta(hours=24), NOW)),                   # on the hour: ends now
    ("24h", datetime(2026, 11, 20, 13, 30, tzinfo=timezone(timedelta(hours=2))),  # 11:30 UTC
     (datetime(2026, 11, 19, 12, tzinfo=timezone.utc), datetime(2026, 11, 20, 12, tzinfo=timezone.utc))),
])
def test_quick_ranges_of_a_day_or_more_end_with_the_hour(key, now, expected):
    assert quick_bounds(key, now) == expected
    assert parse_bounds(key, "", "", now) == (*expected, [])
    window, errors = parse_window(key, "", "", now)
    assert (window.since, window.until, window.range, errors) == (*expected, key, [])
