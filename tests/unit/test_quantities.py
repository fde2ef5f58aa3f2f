"""core.quantities: the durations and USD amounts typed into filter forms."""

from datetime import timedelta
from decimal import Decimal

import pytest

from core.quantities import parse_duration, parse_usd


@pytest.mark.parametrize("text, expected", [
    ("", None), ("  ", None), ("2", timedelta(seconds=2)), ("1.5s", timedelta(seconds=1.5)),
    ("200ms", timedelta(milliseconds=200)), ("200 MS", timedelta(milliseconds=200)), ("2m", timedelta(minutes=2)),
    ("1h", timedelta(hours=1)), (".5s", timedelta(milliseconds=500)), ("0", timedelta(0)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["fast", "-1s", "1.2.3s", "1d", "1e3", "nan", "9" * 40, "400d", "9000h"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(ValueError, match="“Min duration”"):
        parse_duration(text)


@pytest.mark.parametrize("text, expected", [
    ("", None), ("0.05", Decimal("0.05")), ("$1", Decimal(1)), (" $ 2.5 ", Decimal("2.5")), ("0", Decimal(0)),
])
def test_usd(text, expected):
    assert parse_usd(text) == expected


@pytest.mark.parametrize("text", ["cheap", "-0.01", "NaN", "Infinity", "1e99", "1" * 40, "$"])
def test_bad_usd_names_the_field(text):
    if text == "$":
        assert parse_usd(text) is None  # only the sign: nothing asked
        return
    with pytest.raises(ValueError, match="“Min cost”"):
        parse_usd(text)
