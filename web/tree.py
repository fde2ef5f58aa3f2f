"""The span tree of the trace page: rows in display order with depth and timeline bar.

Span data is untrusted and may arrive incomplete, so the walk never assumes a tree:
spans whose parent has not arrived are shown at top level marked "parent missing",
and spans caught in a parent cycle (no path to any root) are shown at top level
marked "parent cycle" instead of disappearing. The walk is iterative, so a very deep
chain cannot overflow the stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from operator import add, attrgetter
from typing import Sequence

from db.models import SpanRow

# Bars thinner than this are invisible; a 2 µs span in a 4 s trace still gets a sliver.
MIN_BAR_PERCENT = 0.4


# The page renders the top of the tree only; the rest is loaded by "expand" (htmx) on demand,
# so a trace of tens of thousands of spans opens as fast as a small one.
OPEN_DEPTH = 6      # levels opened on load
MAX_ROWS = 300      # rows rendered on load, across the whole tree
MAX_CHILDREN = 100  # children of one span rendered at once; a "more" row loads the next ones
MAX_INDENT = 40     # deeper rows are indented no further (a 20,000-deep chain stays on screen)


@dataclass(frozen=True)
class TreeRow:
    span: SpanRow
    depth: int
    has_children: bool
    orphan: str | None  # None, "parent missing" or "parent cycle"
    offset_pct: float  # where the bar starts, relative to the trace window
    width_pct: float
    collapsed: bool = False  # has children that are not rendered: "expand" loads them
    is_more = False

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)


@dataclass(frozen=True)
class MoreRow:
    """Stands for the children of `parent` from `offset` on that were not rendered."""
    parent: bytes | None  # None: top-level spans
    depth: int
    offset: int
    remaining: int | None  # None when unknown
    is_more = True

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)


@dataclass(frozen=True)
class Window:
    start_ns: int
    length_ns: int

    def bar(self, span: SpanRow) -> tuple[float, float]:
        offset = min((span.start_ns - self.start_ns) / self.length_ns * 100, 100 - MIN_BAR_PERCENT)
        offset = max(offset, 0.0)
        width = max(span.duration_ns / self.length_ns * 100, MIN_BAR_PERCENT)
        return offset, min(width, 100 - offset)


_START, _DURATION = attrgetter("start_ns"), attrgetter("duration_ns")
_key = attrgetter("start_ns", "span_id")  # display order; attrgetter: called once per span of 10,000


def extent(spans: Sequence[SpanRow]) -> tuple[int, int]:
    """The earliest start and the latest end of the spans (in C loops: a trace has 10,000)."""
    return min(map(_START, spans)), max(map(add, map(_START, spans), map(_DURATION, spans)))


def window_of(spans: Sequence[SpanRow]) -> Window:
    start, end = extent(spans)
    return Window(start, max(end - start, 1))


def with_columns(rows: list[TreeRow | MoreRow], columns: dict) -> list[TreeRow | MoreRow]:
    """The rows of a tree built from light span rows (db.queries.traces.trace_skeleton), each
    given the full row the page shows, found by (span_id, start_ns) in `columns`."""
    return [row if row.is_more else replace(row, span=columns.get((row.span.span_id, row.span.start_ns), row.span))
            for row in rows]


def build_tree(spans: Sequence[SpanRow], *, open_depth: int | None = None, max_rows: int | None = None,
               max_children: int | None = None, reveal: bytes | None = None,
               window: Window | None = None) -> list[TreeRow | MoreRow]:
    """Rows in display order. Without limits, every span; with them, the tree opened to
    `open_depth` levels, at most `max_children` children per span and about `max_rows` rows,
    the rest collapsed (TreeRow.collapsed, MoreRow). The path to `reveal` (and its children)
    is always opened, so a permalink shows its span. `window`: the timeline's, if already known."""
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

    window = window or window_of(spans)
    must_open: set[bytes] = set()
    if reveal in by_id:
        node, guard = by_id[reveal], 0
        while node is not None and node.span_id not in must_open and guard < len(by_id):
            must_open.add(node.span_id)
            node, guard = by_id.get(node.parent_span_id) if node.parent_span_id else None, guard + 1

    rows: list[TreeRow | MoreRow] = []
    seen: set[bytes] = set()

    def budget_left() -> bool:
        return max_rows is None or len(rows) < max_rows

    def walk(top: SpanRow, orphan: str | None) -> None:
        stack: list = [(top, 0, orphan)]
        while stack:
            item = stack.pop()
            if isinstance(item, MoreRow):
                rows.append(item)
                continue
            span, depth, mark = item
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            kids = [k for k in children.get(span.span_id, []) if k.span_id not in seen]
            opened = bool(kids) and (span.span_id in must_open or (
                (open_depth is None or depth < open_depth) and budget_left()))
            offset, width = window.bar(span)
            rows.append(TreeRow(span, depth, bool(children.get(span.span_id)), mark, offset, width,
                                collapsed=bool(kids) and not opened))
            if not opened:
                continue
            shown = kids if max_children is None else kids[:max_children]
            extra = [k for k in kids[len(shown):] if k.span_id in must_open]
            pending: list = [(kid, depth + 1, None) for kid in shown + extra]
            if len(shown) < len(kids):
                pending.append(MoreRow(span.span_id, depth + 1, len(shown), len(kids) - len(shown)))
            stack.extend(reversed(pending))

    # Spans no top-level span reaches sit on a parent cycle: each first one left (in start
    # order) is shown at top level, and what it reaches is then accounted for.
    reached: set[bytes] = set()

    def reach(stack: list[SpanRow]) -> None:
        while stack:
            span = stack.pop()
            if span.span_id not in reached:
                reached.add(span.span_id)
                stack.extend(children.get(span.span_id, ()))

    reach([span for span, _ in tops])
    if len(reached) < len(by_id):
        for span in sorted((s for s in spans if s.span_id not in reached), key=_key):
            if span.span_id not in reached:
                tops.append((span, "parent cycle"))
                reach([span])
    for i, (span, mark) in enumerate(tops):
        if max_rows is not None and len(rows) >= 2 * max_rows and span.span_id not in must_open:
            rows.append(MoreRow(None, 0, i, len(tops) - i))  # a flood of parentless spans
            break
        walk(span, mark)
    return rows


def child_rows(kids: Sequence[SpanRow], parents: set[bytes], depth: int, window: Window) -> list[TreeRow]:
    """Rows for one page of a span's children loaded on "expand", every one collapsed."""
    rows = []
    for kid in kids:
        offset, width = window.bar(kid)
        has = kid.span_id in parents
        rows.append(TreeRow(kid, depth, has, None, offset, width, collapsed=has))
    return rows
