"""View models: filter-form parsing and defensive shaping of stored JSON for templates.

Templates run with StrictUndefined, so everything they touch is shaped here first;
events and links come from JSONB written by many instrumentations and may lack keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import urlencode

from pages.params import has_nul
from core.quantities import parse_duration, parse_usd
from core.run_outcome import OUTCOMES
from core.window import QUICK_RANGES, parse_bounds
from core.content_display import display
from core.masking import mask_attributes, mask_events, mask_text
from db.models import SpanEdge, SpanRow
from db.queries.trace_search import MAX_QUERY
from db.queries.run_filters import TRACE_STATUSES, RunFilters
from db.queries.traces import MAX_LIMIT, InvalidCursor, decode_cursor

CURSOR_ERROR = "The page link is invalid; showing the first page."
HEX32 = re.compile(r"[0-9a-fA-F]{32}")
HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def parse_hex(value: str, pattern: re.Pattern) -> bytes | None:
    return bytes.fromhex(value) if pattern.fullmatch(value or "") else None


LABELS = {"range": "Range", "since": "From", "until": "To", "status": "Status", "service": "Service",
          "agent": "Agent", "model": "Model", "provider": "Provider", "error_class": "Error class",
          "min_cost": "Min cost", "min_duration": "Min duration", "limit": "Rows per page", "outcome": "Outcome",
          "q": "Search", "score_name": "Score", "min_score": "Min score"}


@dataclass(frozen=True)
class PageFilters:
    """The trace list's filter form, as raw strings so the form re-renders what was typed."""

    since: str = ""
    until: str = ""
    status: str = ""
    service: str = ""
    agent: str = ""
    model: str = ""
    limit: str = "50"
    outcome: str = ""
    q: str = ""
    range: str = ""
    provider: str = ""
    error_class: str = ""
    min_cost: str = ""
    min_duration: str = ""
    score_name: str = ""
    min_score: str = ""

    def query(self, **extra: str) -> str:
        values = {k: v for k, v in {**asdict(self), **extra}.items() if v and not (k == "limit" and v == "50")}
        return urlencode(values)

    @property
    def active(self) -> bool:
        return any(v for k, v in asdict(self).items() if k != "limit")

    @property
    def quick_ranges(self) -> list[str]:
        return list(QUICK_RANGES)

    def parse(self, cursor: str, *, sees_content: bool,
              now: datetime | None = None) -> tuple[RunFilters, int, str | None, list[str]]:
        """The run filters (db/queries/run_filters.py), page size and cursor, and messages for
        whatever did not parse (then the caller shows no runs, never the unfiltered list)."""
        errors: list[str] = []
        bad = {name for name, value in asdict(self).items() if has_nul(value)}
        errors.extend(f"“{LABELS[name]}” must not contain NUL characters." for name in LABELS if name in bad)
        # The form still shows what was typed; the query ignores the refused fields.
        f = PageFilters(**{name: ("" if name in bad else value) for name, value in asdict(self).items()})
        since, until, window_errors = parse_bounds(f.range, f.since, f.until, now or datetime.now(timezone.utc))
        errors.extend(window_errors)
        if f.status and f.status not in TRACE_STATUSES:
            errors.append(f"Status must be one of {', '.join(TRACE_STATUSES)}.")
        if len(f.q.strip()) > MAX_QUERY:
            errors.append(f"Search is limited to {MAX_QUERY} characters.")
        if f.outcome and f.outcome not in OUTCOMES:
            errors.append(f"Outcome must be one of {', '.join(OUTCOMES)}.")
        min_cost = _parsed(parse_usd, f.min_cost, errors)
        min_duration = _parsed(parse_duration, f.min_duration, errors)
        min_score = _parse_number(f.min_score, "Min score", errors)
        try:
            limit = int(f.limit or 50)
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            errors.append(f"Rows per page must be a whole number from 1 to {MAX_LIMIT}.")
            limit = 50
        if cursor:
            try:
                decode_cursor(cursor)
            except InvalidCursor:
                errors.append(CURSOR_ERROR)
                cursor = ""
        filters = RunFilters(
            since=since, until=until, status=f.status if f.status in TRACE_STATUSES else None,
            service=f.service.strip() or None, agent=f.agent.strip() or None,
            model=f.model.strip() or None, provider=f.provider.strip() or None,
            error_class=f.error_class.strip() or None, min_cost=min_cost, min_duration=min_duration,
            outcome=f.outcome if f.outcome in OUTCOMES else None,
            search=f.q.strip()[:MAX_QUERY] or None, search_content=sees_content,
            score_name=f.score_name.strip()[:200] or None, min_score=min_score,
        )
        return filters, limit, cursor or None, errors


def _parse_number(text: str, label: str, errors: list[str]) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors.append(f"“{label}” must be a number, like 0.5 (booleans count as 1 and 0).")
        return None
    return value


def _parsed(parse, text: str, errors: list[str]):
    try:
        return parse(text)
    except ValueError as exc:
        errors.append(str(exc))
        return None


@dataclass(frozen=True)
class EventView:
    name: str
    offset_ns: int | None  # since the span started
    attributes: Any


def span_content(span: SpanRow, visible: bool) -> dict[str, Any]:
    """What the span detail shows of captured content: all of it, or masked for readers
    without `read_content` (core/masking.py)."""
    if visible:
        shown = {"input": span.input, "output": span.output, "attributes": span.attributes or {},
                 "events": span.events or [], "masked": False}
    else:
        shown = {"input": mask_text(span.input), "output": mask_text(span.output),
                 "attributes": mask_attributes(span.attributes), "events": mask_events(span.events), "masked": True}
    # How the detail panel lays the text out (chat messages by role, JSON pretty-printed).
    return {**shown, "input_display": display(shown["input"]), "output_display": display(shown["output"])}


def event_views(span: SpanRow, events: list | None = None) -> list[EventView]:
    views = []
    for event in (span.events or []) if events is None else events:
        if not isinstance(event, dict):
            views.append(EventView("(malformed event)", None, event))
            continue
        time_ns = event.get("time_ns", event.get("time_unix_nano"))
        offset = int(time_ns) - span.start_ns if isinstance(time_ns, (int, str)) and str(time_ns).isdigit() else None
        views.append(EventView(str(event.get("name") or "(unnamed)"), offset, event.get("attributes") or {}))
    return views


@dataclass(frozen=True)
class EdgeView:
    relation: str
    direction: str  # "out": this span points at the other one; "in": the other one points here
    from_trace: str
    from_span: str
    from_name: str | None
    to_trace: str
    to_span: str
    to_name: str | None


def edge_views(edges: Iterable[SpanEdge], names: dict[tuple[bytes, bytes], str],
               focus: tuple[bytes, bytes] | None = None) -> list[EdgeView]:
    """Lineage edges other than `parent` (the tree already shows those), labelled with span
    names where the other end is known. With `focus`, direction is relative to that span."""
    views = []
    for e in edges:
        if e.relation == "parent":
            continue
        src, dst = (e.trace_id, e.span_id), (e.linked_trace_id, e.linked_span_id)
        direction = "in" if focus is not None and dst == focus and src != focus else "out"
        views.append(EdgeView(
            e.relation, direction, src[0].hex(), src[1].hex(), names.get(src), dst[0].hex(), dst[1].hex(),
            names.get(dst),
        ))
    return views


def edge_keys(edges: Iterable[SpanEdge]) -> list[tuple[bytes, bytes]]:
    keys = set()
    for e in edges:
        keys.add((e.trace_id, e.span_id))
        keys.add((e.linked_trace_id, e.linked_span_id))
    return sorted(keys)


def attribution_view(attribution, judge=None) -> dict[str, Any]:
    """core.attribution.TraceAttribution shaped for the trace page's Attribution panel; `judge`:
    the judge's view (pages.forensics_schemas.JudgeViewOut), shown apart from the root causes."""
    def span(ref) -> dict[str, str]:
        return {"name": ref.name, "trace": ref.trace_id.hex(), "span": ref.span_id.hex()}

    return {
        "judge": judge,
        "summary": attribution.summary,
        "failures": [
            {
                "root": span(f.root_cause), "error_class": f.error_class,
                "path": [span(p) for p in f.propagation_path], "recovered": f.recovered,
                "recovery": f.recovery or "", "recovered_by": f.recovered_by.name if f.recovered_by else "",
                "confidence": f"{f.confidence:.2f}", "evidence": list(f.evidence),
                "burned_tokens": f.burned.total_tokens, "burned_usd": f.burned.cost_usd,
                "burned_unpriced": f.burned.unpriced_calls, "burned_ns": f.burned.duration_ns,
                "blast": {
                    "size": f.blast_radius.size,
                    "consumers": [span(r) for r in f.blast_radius.data_consumers],
                    "ancestors": [span(r) for r in f.blast_radius.failed_ancestors],
                    "skipped": [f"{s.name} ({s.reason})" for s in f.blast_radius.skipped_steps],
                },
            }
            for f in attribution.failures
        ],
    }
