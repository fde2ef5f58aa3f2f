"""Checks shared by every read endpoint and page, applied where a request comes in.

- Text: PostgreSQL refuses NUL (U+0000) in `text`, so a filter or login email holding
  one would fail inside the query (a 500). It is refused here with a message instead;
  nothing legitimate contains NUL.
- Times: `since`/`until` must lie in [MIN_TIME, MAX_TIME). Python's datetime ends at
  year 9999 and PostgreSQL cannot store year 1 with a positive offset, so the edges of
  the calendar overflow in window arithmetic (hour alignment, default windows,
  look-backs); no trace is older than 1970 or newer than 9999.

The JSON API applies `reject_nul_query` to every request under /api and `UtcTime` to its
time parameters; the pages call `nul_error` / `time_error` and show the message in the form.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

MIN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)
TIME_RANGE = f"between {MIN_TIME:%Y-%m-%d} and {MAX_TIME:%Y-%m-%d}"


def has_nul(value: str | None) -> bool:
    return value is not None and "\x00" in value


def nul_error(name: str) -> str:
    return f"{name} must not contain NUL (\\x00) characters"


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes without an offset are taken as UTC (what the UI and the API return)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def time_error(value: datetime) -> str | None:
    """Why `value` (aware) is out of range, or None. Compared without converting, which
    could itself overflow at the calendar's edges."""
    if value < MIN_TIME or value >= MAX_TIME:
        return f"must be {TIME_RANGE} (UTC)"
    return None


def _check_time(value: datetime | None) -> datetime | None:
    value = as_utc(value)
    if value is not None and (problem := time_error(value)):
        raise ValueError(problem)
    return value


# A query parameter type: aware (no offset = UTC) and inside [MIN_TIME, MAX_TIME).
UtcTime = Annotated[datetime, AfterValidator(_check_time)]


def reject_nul_query(request: Request) -> None:
    """Router dependency: a 422 naming the first query parameter that holds a NUL."""
    errors = [
        {"type": "value_error", "loc": ("query", name), "input": value, "msg": nul_error(name)}
        for name, value in request.query_params.multi_items() if has_nul(value) or has_nul(name)
    ]
    if errors:
        raise RequestValidationError(errors)


class InvalidQuery(ValueError):
    """A page's query does not make sense (empty window, unknown grouping...): the API answers
    422 naming `field`, a page shows `message` next to its form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message

    def as_validation_error(self) -> RequestValidationError:
        return RequestValidationError([{"type": "value_error", "loc": ("query", self.field), "msg": self.message,
                                        "input": None}])
