"""Read paths whose plans schema 0030 made: the Overview's per-bucket runs, cost and tokens come
from ix_traces_project_start alone (it includes the summed columns), its pending count from the
partial index of runs waiting for attribution, not every run of the window; a trace's lineage
edges from the partial indexes of non-parent edges, not every edge of the trace."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from db.queries.failures import pending_run_count
from db.queries.overview import runs_by_outcome
from db.queries.traces import trace_skeleton
from tests.api.seed import make_span, store
from tests.plans import explain, indexes_used, statements_of

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _runs(session, project_id: int, n: int) -> None:
    base = NOW - timedelta(days=2)
    for i in range(n):
        trace_id = os.urandom(16)
        root = make_span(project_id, trace_id, name="run", start_ms=i * 60_000, duration_ms=5, base=base)
        store(session, [root, make_span(project_id, trace_id, name="chat", start_ms=i * 60_000, duration_ms=1,
                                        parent=root.span_id, base=base, category="llm", provider="openai")])
    # Attributed, as the background attributor leaves them; the pending index then holds none.
    session.execute(text("UPDATE traces SET attributed_at = updated_at + interval '1 second'"))
    session.commit()
    # Vacuumed, as autovacuum leaves a table that is mostly old runs: an index-only scan is then possible.
    with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE traces"))


def _plans_of(session, call, table: str) -> list[str]:
    """EXPLAIN of each statement over `table` that `call` ran."""
    with statements_of(session) as sent:
        call()
    # A small table: make the planner show its options.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    return [explain(session, statement, parameters) for statement, parameters in sent if f"FROM {table}" in statement]


def _plan_of(session, call) -> str:
    (plan,) = _plans_of(session, call, "traces")
    return plan


def test_runs_over_time_read_the_start_index_only(session, project):
    project_id = project[0]
    _runs(session, project_id, 300)
    plan = _plan_of(session, lambda: runs_by_outcome(session, project_id, since=NOW - timedelta(days=30),
                                                     until=NOW, step=timedelta(days=1)))
    assert "Index Only Scan using ix_traces_project_start on traces" in plan, plan
    session.rollback()


def test_pending_runs_are_counted_from_the_pending_index(session, project):
    project_id = project[0]
    _runs(session, project_id, 300)
    plan = _plan_of(session, lambda: pending_run_count(session, project_id, since=NOW - timedelta(days=30), until=NOW))
    assert "ix_traces_unattributed" in plan and "ix_traces_project_start" not in plan, plan
    session.rollback()


def test_a_traces_lineage_edges_are_read_without_its_parent_edges(session, project):
    project_id = project[0]
    _runs(session, project_id, 30)
    trace_id = session.execute(text("SELECT trace_id FROM traces LIMIT 1")).scalar_one()
    # A large trace: 20,000 parent edges (only their number matters to the planner), and other
    # traces' lineage edges (3,000 retries, each in and out of another trace).
    session.execute(text("""
        INSERT INTO span_edges (project_id, trace_id, span_id, relation, linked_trace_id, linked_span_id)
        SELECT :p, :t, int8send(g), 'parent', :t, int8send(g / 10) FROM generate_series(1, 20000) g
        UNION ALL
        SELECT :p, int8send(g) || int8send(g), int8send(g), 'retry_of', int8send(g + 1) || int8send(g + 1), int8send(g)
        FROM generate_series(1, 3000) g"""),
        {"p": project_id, "t": trace_id})
    session.execute(text("ANALYZE span_edges"))
    plans = _plans_of(session, lambda: trace_skeleton(session, project_id, trace_id), "span_edges")
    # One read per direction, each through its own partial index on the trace, never through all edges.
    assert [indexes_used(session, plan) for plan in plans] == [
        {"ix_span_edges_lineage"}, {"ix_span_edges_lineage_linked"}], plans
    assert all("trace_id = " in plan.split("Index Cond:")[1].split("\n")[0] for plan in plans), plans
    session.rollback()
