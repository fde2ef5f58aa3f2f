"""The window-and-filters form shared by the across-traces pages (Failures, Costs).

Parameters arrive as plain strings so a bad value becomes a message on the page, never
FastAPI's JSON 422. A bad window falls back to the default window and says so; a bad
filter shows its message and no data (never the unfiltered data under a filter's name).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from core.window import QUICK_RANGES, Window, parse_window
from db.queries.fleet import MAX_WINDOW
from pages.params import has_nul

FILTERS = ("service", "agent", "model", "provider")
LABELS = {"service": "Service", "agent": "Agent", "model": "Model", "provider": "Provider"}


@dataclass
class WorkbenchForm:
    range: str = ""
    since: str = ""
    until: str = ""
    service: str = ""
    agent: str = ""
    model: str = ""
    provider: str = ""
    window: Window | None = field(default=None, init=False)
    window_errors: list[str] = field(default_factory=list, init=False)
    filter_errors: list[str] = field(default_factory=list, init=False)

    def resolve(self, now: datetime | None = None) -> "WorkbenchForm":
        now = now or datetime.now(timezone.utc)
        if has_nul(self.range) or has_nul(self.since) or has_nul(self.until):
            self.window, _ = parse_window("", "", "", now)
            self.window_errors = ["The window must not contain NUL characters."]
        else:
            self.window, self.window_errors = parse_window(self.range, self.since, self.until, now,
                                                           max_span=MAX_WINDOW)
        self.filter_errors = [f"“{LABELS[name]}” must not contain NUL characters."
                              for name in FILTERS if has_nul(getattr(self, name))]
        return self

    @property
    def errors(self) -> list[str]:
        return self.window_errors + self.filter_errors

    @property
    def shown_window(self) -> str:
        """Which window the page shows, said when the one asked for did not parse."""
        w = self.window
        return f"{w.since:%Y-%m-%d %H:%M} – {w.until:%Y-%m-%d %H:%M} UTC"

    def filters(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def state(self) -> dict[str, str]:
        """The page's own query: the window as asked (a quick range stays relative) and the filters."""
        values = {k: v for k, v in asdict(self).items() if k in ("range", "since", "until", *FILTERS) and v}
        if self.window_errors:  # do not carry a broken window into every link
            values = {k: v for k, v in values.items() if k not in ("range", "since", "until")}
        return values

    def href(self, path: str, **changes: Any) -> str:
        values = {**self.state(), **changes}
        query = urlencode({k: v for k, v in values.items() if v not in (None, "")})
        return f"{path}?{query}" if query else path

    def range_href(self, path: str, key: str, **keep: Any) -> str:
        """A quick range replaces any custom window; the filters (and `keep`) stay."""
        values = {k: v for k, v in self.state().items() if k not in ("range", "since", "until")}
        return _href(path, {**values, "range": key, **keep})

    @property
    def quick_ranges(self) -> list[str]:
        return list(QUICK_RANGES)

    @property
    def active_range(self) -> str:
        return self.window.range if self.window else ""

    def exact(self) -> dict[str, str]:
        """The resolved window as fixed times (for the JSON twin and links to runs)."""
        return {"since": iso(self.window.since), "until": iso(self.window.until)}


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _href(path: str, values: dict[str, Any]) -> str:
    query = urlencode({k: v for k, v in values.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def runs_href(since: datetime, until: datetime, **filters: str | None) -> str:
    """The trace list behind a number: its window (the list filters on trace start) and filters
    the list knows (status, service, agent, model, provider, error class)."""
    ordered = {k: filters.get(k) for k in ("status", "service", "agent", "model", "provider", "error_class")}
    return _href("/traces", {"since": iso(since), "until": iso(until), **ordered})


def bucket_end(start: datetime, bucket: str, until: datetime) -> datetime:
    return min(start + (timedelta(hours=1) if bucket == "hour" else timedelta(days=1)), until)
