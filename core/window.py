"""Time windows of the workbench pages: quick ranges (15 m ... 30 d) or custom from/to.

Pure: `now` is passed in. Every page with a window parses it here, so the same query
string means the same window on every page and in its JSON twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

QUICK_RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24),
    "7d": timedelta(days=7), "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
# Quick ranges of a day or more end where the current UTC hour ends, so that their trend slices
# are whole hours, which the hourly rollups answer without reading the runs
# (db/queries/failure_rollups.serves); the shorter ones end now.
WHOLE_HOURS_FROM = timedelta(days=1)
MIN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    range: str  # a QUICK_RANGES key, or "custom"

    @property
    def span(self) -> timedelta:
        return self.until - self.since

    def query(self) -> dict[str, str]:
        """The query parameters that reproduce this window (for links and the JSON twin)."""
        if self.range != "custom":
            return {"range": self.range}
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def quick_bounds(key: str, now: datetime) -> tuple[datetime, datetime]:
    """The window of a QUICK_RANGES key at `now`."""
    span = QUICK_RANGES[key]
    end = now
    if span >= WHOLE_HOURS_FROM:
        hour = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        end = hour if hour == now else hour + timedelta(hours=1)
    return end - span, end


def parse_time(text: str, label: str | None = None) -> datetime | None:
    """ISO-8601; no offset means UTC. Raises ValueError with a message for a person, naming the
    form field `label` when given (else quoting the text)."""
    text = text.strip()
    if not text:
        return None
    name, end = (f"“{label}”", ".") if label else (repr(text), "")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} is not a date/time like 2026-11-20T12:00 (UTC){end}") from None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError(f"{name} must be between {MIN_TIME:%Y-%m-%d} and {MAX_TIME:%Y-%m-%d}{end}")
    return value


def parse_bounds(range_: str, since: str, until: str, now: datetime) -> tuple[
        datetime | None, datetime | None, list[str]]:
    """An open-ended window (the trace list: no window means every run): from/to as typed
    (either may be left open), else a quick range (quick_bounds), else no bounds. Messages for
    what did not parse; the bound that did not parse is left open (the caller shows no data)."""
    errors: list[str] = []
    if since.strip() or until.strip():
        bounds = []
        for text, label in ((since, "From"), (until, "To")):
            try:
                bounds.append(parse_time(text, label))
            except ValueError as exc:
                errors.append(str(exc))
                bounds.append(None)
        start, end = bounds
        if start and end and start >= end:
            errors.append("“To” must be later than “From”.")
        return start, end, errors
    key = range_.strip()
    if not key:
        return None, None, errors
    if key not in QUICK_RANGES:
        return None, None, [f"Range must be one of {', '.join(QUICK_RANGES)}."]
    return (*quick_bounds(key, now), errors)


def parse_window(range_: str, since: str, until: str, now: datetime, *,
                 max_span: timedelta | None = None) -> tuple[Window, list[str]]:
    """The window asked for, and messages for what did not parse (then the default window:
    a page shows the error, and says which window it shows instead)."""
    errors: list[str] = []
    fallback = Window(*quick_bounds(DEFAULT_RANGE, now), DEFAULT_RANGE)
    if since.strip() or until.strip():
        try:
            start, end = parse_time(since), parse_time(until)
        except ValueError as exc:
            return fallback, [str(exc)]
        end = end or now
        start = start or end - QUICK_RANGES[DEFAULT_RANGE]
        if start >= end:
            return fallback, ["“To” must be later than “From”."]
        if max_span is not None and end - start > max_span:
            return fallback, [f"The window is limited to {max_span.days} days."]
        return Window(start, end, "custom"), errors
    key = range_.strip() or DEFAULT_RANGE
    if key not in QUICK_RANGES:
        return fallback, [f"Range must be one of {', '.join(QUICK_RANGES)}."]
    return Window(*quick_bounds(key, now), key), errors


def split_hours(since: datetime, until: datetime) -> tuple[tuple[datetime, datetime] | None,
                                                           list[tuple[datetime, datetime]]]:
    """Split [since, until) for hourly rollups: the whole UTC hours inside it (None if there is
    none), and the partial pieces at its edges (to be read from the raw rows), so that the
    pieces cover the window exactly once and nothing outside it."""
    def floor(t: datetime) -> datetime:
        return t.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)

    first = floor(since)
    first = first if first == since else first + timedelta(hours=1)
    last = floor(until)
    if first >= last:
        return None, [(since, until)]
    return (first, last), [(a, b) for a, b in ((since, first), (last, until)) if a < b]
