"""Full-text search over spans for the trace list: which traces have a span matching the words.

Served by GIN indexes on expressions (schema 0010), one per searched field: the span name, and
the captured input and output for readers who may see content (a search over content would
tell the others what it holds). Every word must match within one field of one span. The
'simple' configuration: words as typed, no stemming, so identifiers and any language match.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal_column, or_, select

from db.models import SpanRow

MAX_QUERY = 200


def _document(field: str):
    # Must match the index expressions of migration 0010 exactly.
    return literal_column(f"to_tsvector('simple'::regconfig, coalesce(spans.{field}, ''))")


def matching_traces(project_id: int, text: str, *, content: bool, first: bool = False,
                    spans_from: datetime | None = None):
    """A subquery of trace ids in the project with a span matching every word of `text`.

    `first`: the matches are read once, through the indexes, into a MATERIALIZED CTE, for a word
    known to be rare: otherwise the planner, guessing its frequency, may walk the newest runs
    computing every span's tsvector until it has a page, which for a rare word means every run
    of the window (bench/pages.py: 4.5 s over 1M spans). For a common word that walk is what
    finds a page quickest, and reading every match first is what costs seconds.

    `spans_from`: only spans starting then or later, so the GIN indexes of the daily partitions
    before it are not read (run_filters.search_totals: the last day first)."""
    query = func.plainto_tsquery(literal_column("'simple'::regconfig"), text[:MAX_QUERY])
    fields = ("name", "input", "output") if content else ("name",)
    found = select(SpanRow.trace_id).where(
        SpanRow.project_id == project_id, or_(*(_document(f).op("@@")(query) for f in fields)))
    if spans_from is not None:
        found = found.where(SpanRow.start_time >= spans_from)
    if not first:
        return found
    matches = found.cte("search_matches").prefix_with("MATERIALIZED")
    return select(matches.c.trace_id)
