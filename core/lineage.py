"""The lineage graph of a trace across linked traces (ARCHITECTURE.md section 4).

Input: the spans and typed edges that storage returned for a trace and the traces
reachable from it. Links are untrusted: they may point at spans never received,
form cycles, or fan out without limit. So:

- traces are reached breadth-first from the requested one over cross-trace edges,
  in either direction, at most `max_depth` hops away and at most `max_traces` of them
  (`truncated` says a bound was hit);
- a link target that was never received becomes a node with `present=False`;
- cycles are reported (`cyclic`, plus the edges that close one), never followed twice.
No I/O; iterative walks only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

from core.forensics_view import EdgeView, Key, SpanView

DEFAULT_DEPTH = 2
MAX_DEPTH = 10
DEFAULT_MAX_TRACES = 50
MAX_CYCLE_EDGES = 100


@dataclass(frozen=True, slots=True)
class LineageNode:
    trace_id: bytes
    span_id: bytes
    name: str | None        # None when the span was never received
    category: str | None
    status: str | None
    error_class: str | None
    present: bool
    depth: int              # trace hops from the requested trace


@dataclass(frozen=True, slots=True)
class Lineage:
    trace_id: bytes
    max_depth: int
    trace_depths: tuple[tuple[bytes, int], ...]   # (trace id, hops), requested trace first
    nodes: tuple[LineageNode, ...]
    edges: tuple[EdgeView, ...]
    truncated: bool                                # a depth or trace-count bound cut the graph
    cyclic: bool
    cycle_edges: tuple[EdgeView, ...]           # edges that close a cycle (at most MAX_CYCLE_EDGES)


def reachable_traces(
    trace_id: bytes, edges: Iterable[EdgeView], *, max_depth: int = DEFAULT_DEPTH,
    max_traces: int = DEFAULT_MAX_TRACES,
) -> tuple[dict[bytes, int], bool]:
    """Trace -> hops from `trace_id` over cross-trace edges (either direction), and whether a bound cut it."""
    neighbours: dict[bytes, set[bytes]] = {}
    for edge in edges:
        if edge.trace_id != edge.linked_trace_id:
            neighbours.setdefault(edge.trace_id, set()).add(edge.linked_trace_id)
            neighbours.setdefault(edge.linked_trace_id, set()).add(edge.trace_id)
    depths = {trace_id: 0}
    queue = deque([trace_id])
    truncated = False
    while queue:
        cur = queue.popleft()
        for nxt in sorted(neighbours.get(cur, ())):
            if nxt in depths:
                continue
            if depths[cur] >= max_depth or len(depths) >= max_traces:
                truncated = True
                continue
            depths[nxt] = depths[cur] + 1
            queue.append(nxt)
    return depths, truncated


def build_lineage(
    trace_id: bytes, spans: Sequence[SpanView], edges: Sequence[EdgeView], *,
    max_depth: int = DEFAULT_DEPTH, max_traces: int = DEFAULT_MAX_TRACES, truncated: bool = False,
) -> Lineage:
    """The graph of `spans` and `edges` restricted to traces within the bounds.

    `truncated` carries over a bound already hit by the storage query."""
    max_depth = max(0, min(max_depth, MAX_DEPTH))
    depths, cut = reachable_traces(trace_id, edges, max_depth=max_depth, max_traces=max_traces)
    nodes: dict[Key, LineageNode] = {}
    for span in spans:
        if span.trace_id in depths and span.key not in nodes:
            nodes[span.key] = LineageNode(
                span.trace_id, span.span_id, span.name, span.category, span.status, span.error_class,
                True, depths[span.trace_id],
            )
    kept: dict[tuple, EdgeView] = {}
    for edge in edges:
        if edge.trace_id not in depths or edge.linked_trace_id not in depths:
            continue  # one end is beyond the bounds
        kept.setdefault((edge.trace_id, edge.span_id, edge.relation, edge.linked_trace_id, edge.linked_span_id), edge)
        for key in (edge.source, edge.target):
            if key not in nodes:
                nodes[key] = LineageNode(key[0], key[1], None, None, None, None, False, depths[key[0]])
    edge_list = [kept[k] for k in sorted(kept)]
    cycle_edges = _cycle_edges(edge_list)
    ordered_nodes = sorted(nodes.values(), key=lambda n: (n.depth, n.trace_id, n.span_id))
    return Lineage(
        trace_id=trace_id, max_depth=max_depth,
        trace_depths=tuple(sorted(depths.items(), key=lambda item: (item[1], item[0]))),
        nodes=tuple(ordered_nodes), edges=tuple(edge_list), truncated=truncated or cut,
        cyclic=bool(cycle_edges), cycle_edges=tuple(cycle_edges[:MAX_CYCLE_EDGES]),
    )


def _cycle_edges(edges: Sequence[EdgeView]) -> list[EdgeView]:
    """Back edges of an iterative depth-first search over span -> linked span."""
    out: dict[Key, list[EdgeView]] = {}
    for edge in edges:
        out.setdefault((edge.trace_id, edge.span_id), []).append(edge)
    state: dict[Key, int] = {}  # 1 on the stack, 2 finished
    back: list[EdgeView] = []
    for start in sorted(out):
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out.get(start, ())))]
        while stack:
            node, it = stack[-1]
            edge = next(it, None)
            if edge is None:
                state[node] = 2
                stack.pop()
                continue
            target = (edge.linked_trace_id, edge.linked_span_id)
            seen = state.get(target)
            if seen == 1:
                back.append(edge)
            elif seen is None:
                state[target] = 1
                stack.append((target, iter(out.get(target, ()))))
    return back
