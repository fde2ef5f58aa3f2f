"""The span tree of the trace page: rows in display order with depth and timeline bar.

Span data is untrusted and may arrive incomplete, so the walk never assumes a tree:
spans whose parent has not arrived are shown at top level marked "parent missing",
and spans caught in a parent cycle (no path to any root) are shown at top level
marked "parent cycle" instead of disappearing. The walk is iterative, so a very deep
chain cannot overflow the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from db.models import SpanRow

# Bars thinner than this are invisible; a 2 µs span in a 4 s trace still gets a sliver.
MIN_BAR_PERCENT = 0.4


@dataclass(frozen=True)
class TreeRow:
    span: SpanRow
    depth: int
    has_children: bool
    orphan: str | None  # None, "parent missing" or "parent cycle"
    offset_pct: float  # where the bar starts, relative to the trace window
    width_pct: float


def _key(span: SpanRow) -> tuple[int, bytes]:
    return span.start_ns, span.span_id


def build_tree(spans: Sequence[SpanRow]) -> list[TreeRow]:
    if not spans:
        return []
    by_id = {s.span_id: s for s in spans}
    children: dict[bytes, list[SpanRow]] = {}
    tops: list[tuple[SpanRow, str | None]] = []
    for span in spans:
        parent = span.parent_span_id
        if parent is None:
            tops.append((span, None))
        elif parent == span.span_id:
            tops.append((span, "parent cycle"))  # its own parent
        elif parent in by_id:
            children.setdefault(parent, []).append(span)
        else:
            tops.append((span, "parent missing"))
    for kids in children.values():
        kids.sort(key=_key)
    tops.sort(key=lambda item: _key(item[0]))

    window_start = min(s.start_ns for s in spans)
    window = max(max(s.start_ns + s.duration_ns for s in spans) - window_start, 1)

    rows: list[TreeRow] = []
    seen: set[bytes] = set()

    def walk(top: SpanRow, orphan: str | None) -> None:
        stack = [(top, 0, orphan)]
        while stack:
            span, depth, mark = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            kids = children.get(span.span_id, [])
            offset = min((span.start_ns - window_start) / window * 100, 100 - MIN_BAR_PERCENT)
            width = max(span.duration_ns / window * 100, MIN_BAR_PERCENT)
            rows.append(TreeRow(span, depth, bool(kids), mark, offset, min(width, 100 - offset)))
            stack.extend((kid, depth + 1, None) for kid in reversed(kids))

    for span, mark in tops:
        walk(span, mark)
    # Whatever is left sits on a parent cycle: no top-level ancestor reaches it.
    for span in sorted((s for s in spans if s.span_id not in seen), key=_key):
        walk(span, "parent cycle")
    return rows
