"""The window picker shared by the Overview and Providers pages: quick ranges and custom
from/to, parsed by core.window (one rule for pages and their JSON twins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from core.window import QUICK_RANGES, Window
from pages.overview import overview_window
from pages.params import has_nul


@dataclass(frozen=True)
class WindowForm:
    """What was asked (raw strings, re-shown in the form), the window shown, and why they differ."""
    range: str
    since: str
    until: str
    window: Window
    errors: list[str]

    @property
    def quick_ranges(self) -> list[str]:
        return list(QUICK_RANGES)

    def query(self) -> dict[str, str]:
        """Parameters reproducing the window shown (relative for quick ranges: a shareable URL)."""
        return self.window.query()

    def traces_query(self, since: datetime | None = None, until: datetime | None = None, **extra: str) -> str:
        """A /traces query for this window (or a part of it); the trace list takes absolute times."""
        start, end = since or self.window.since, until or self.window.until
        if end.microsecond:  # whole seconds in the URL, never cutting off the window's last runs
            end = end.replace(microsecond=0) + timedelta(seconds=1)
        values = {"since": start.replace(microsecond=0).isoformat(), "until": end.isoformat(), **extra}
        return urlencode({k: v for k, v in values.items() if v})


def parse_window_form(range_: str, since: str, until: str, *, now: datetime | None = None) -> WindowForm:
    now = now or datetime.now(timezone.utc)
    if any(has_nul(v) for v in (range_, since, until)):
        window, _ = overview_window("", "", "", now)
        return WindowForm(range_, since, until, window, ["The window must not contain NUL characters."])
    window, errors = overview_window(range_, since, until, now)
    return WindowForm(range_, since, until, window, errors)

