"""core.lineage: depth bound, trace bound, dangling links, cycles (never followed twice)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.forensics_view import EdgeView, SpanView
from core.lineage import MAX_DEPTH, build_lineage, reachable_traces


def tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def view(t: int, s: int, parent: int | None = None) -> SpanView:
    return SpanView(tid(t), sid(s), sid(parent) if parent is not None else None, f"t{t}s{s}", status="ok")


def edge(t, s, relation, lt, ls) -> EdgeView:
    return EdgeView(tid(t), sid(s), relation, tid(lt), sid(ls))


# A chain of traces 1 -> 2 -> 3 -> 4 (each span links to the previous trace's span), plus a parent edge.
CHAIN_SPANS = [view(1, 1), view(1, 2, 1), view(2, 3), view(3, 4), view(4, 5)]
CHAIN_EDGES = [edge(1, 2, "parent", 1, 1), edge(2, 3, "follows", 1, 2), edge(3, 4, "data_from", 2, 3),
               edge(4, 5, "caused_by", 3, 4)]


def test_depth_bound_from_the_middle_goes_both_ways():
    depths, cut = reachable_traces(tid(2), CHAIN_EDGES, max_depth=1)
    assert depths == {tid(2): 0, tid(1): 1, tid(3): 1} and cut is True
    depths, cut = reachable_traces(tid(2), CHAIN_EDGES, max_depth=5)
    assert depths == {tid(2): 0, tid(1): 1, tid(3): 1, tid(4): 2} and cut is False


def test_build_lineage_restricts_nodes_and_edges_to_the_bound():
    graph = build_lineage(tid(1), CHAIN_SPANS, CHAIN_EDGES, max_depth=1)
    assert [t for t, _ in graph.trace_depths] == [tid(1), tid(2)]
    assert {(n.trace_id, n.span_id) for n in graph.nodes} == {(tid(1), sid(1)), (tid(1), sid(2)), (tid(2), sid(3))}
    assert [e.relation for e in graph.edges] == ["parent", "follows"]
    assert graph.truncated and not graph.cyclic
    assert [e.cross_trace for e in graph.edges] == [False, True]


def test_trace_bound():
    star = [edge(1, 1, "link", n, 1) for n in range(2, 30)]
    depths, cut = reachable_traces(tid(1), star, max_depth=3, max_traces=5)
    assert len(depths) == 5 and cut


def test_dangling_link_becomes_an_absent_node():
    graph = build_lineage(tid(1), [view(1, 1)], [edge(1, 1, "retry_of", 1, 99)])
    absent = [n for n in graph.nodes if not n.present]
    assert [(n.span_id, n.name) for n in absent] == [(sid(99), None)]


def test_cycles_are_reported_not_followed():
    spans = [view(1, 1), view(2, 2), view(3, 3)]
    edges = [edge(1, 1, "data_from", 2, 2), edge(2, 2, "data_from", 3, 3), edge(3, 3, "data_from", 1, 1),
             edge(1, 1, "data_from", 1, 1)]
    graph = build_lineage(tid(1), spans, edges, max_depth=MAX_DEPTH)
    assert graph.cyclic and len(graph.cycle_edges) == 2 and not graph.truncated
    assert len(graph.nodes) == 3


def test_depth_is_clamped():
    assert build_lineage(tid(1), CHAIN_SPANS, CHAIN_EDGES, max_depth=10_000).max_depth == MAX_DEPTH
    assert build_lineage(tid(1), CHAIN_SPANS, CHAIN_EDGES, max_depth=-3).max_depth == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 5), st.integers(0, 8), st.integers(0, 5)),
                max_size=60), st.integers(0, 4))
def test_property_random_graphs_terminate_within_bounds(raw_edges, depth):
    edges = [edge(a, b, "link", c, d) for a, b, c, d in raw_edges]
    spans = [view(a, b) for a, b, _, _ in raw_edges]
    graph = build_lineage(tid(0), spans, edges, max_depth=depth)
    assert all(d <= depth for _, d in graph.trace_depths)
    reached = {t for t, _ in graph.trace_depths}
    assert all(e.trace_id in reached and e.linked_trace_id in reached for e in graph.edges)
    assert graph.cyclic == bool(graph.cycle_edges)
