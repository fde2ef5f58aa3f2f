"""Amounts typed into filter forms: a duration ("1.5s", "200ms", "2m"; a bare number is seconds)
and a sum in USD ("0.05", "$1"). Pure. One parser for the pages and the JSON API, so the
same query string filters the same runs in both; errors are messages for a person."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION = timedelta(days=365)
MAX_USD = Decimal(1_000_000_000)


def parse_duration(text: str, label: str = "Min duration") -> timedelta | None:
    """None for empty text; raises ValueError naming `label` otherwise."""
    if not text.strip():
        return None
    match = _DURATION.fullmatch(text)
    if not match or len(text) > 32:
        raise ValueError(f"“{label}” must be a duration like 1.5s, 200ms or 2m.")
    value = timedelta(seconds=float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()])
    if value > MAX_DURATION:
        raise ValueError(f"“{label}” must be at most {MAX_DURATION.days} days.")
    return value


def parse_usd(text: str, label: str = "Min cost") -> Decimal | None:
    """None for empty text; a non-negative amount in USD, else ValueError naming `label`."""
    cleaned = text.strip().removeprefix("$").strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned) if len(cleaned) <= 32 else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0 or value > MAX_USD:
        raise ValueError(f"“{label}” must be an amount in USD like 0.05.")
    return value
