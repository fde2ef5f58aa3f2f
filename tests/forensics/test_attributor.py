"""Materialization of root causes into trace_failures: quiet period, claim with SKIP LOCKED,
recompute when a trace gets more spans, and the background thread — on real PostgreSQL,
with spans arriving through the real collector."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import select

from collector.attributor import Attributor
from db.models import TraceFailure, TraceRow
from db.queries.forensics import attribute_pending
from tests.claims import two_passes_at_once
from tests.collector.conftest import collector  # noqa: F401 - the fixture
from tests.otlp_payloads import request, span, span_id, trace_id

MS = 1_000_000


def post(collector, spans) -> None:  # noqa: F811
    response = httpx.post(collector.traces_endpoint, content=request(spans).SerializeToString(),
                          headers={**collector.auth(), "content-type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 200, response.text


def tool_failure(tid: bytes, parent: bytes, base: int):
    return span(tid, span_id(), parent=parent, name="execute_tool search", start=base + 10 * MS, duration=5 * MS,
                status=2, message="TimeoutError: search timed out",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                            "error.type": "TimeoutError"})


def rows(session, tid: bytes) -> list[TraceFailure]:
    return list(session.scalars(select(TraceFailure).where(TraceFailure.trace_id == tid)))


def test_pending_quiet_period_claim_and_recompute_on_update(collector, sessionmaker):  # noqa: F811
    tid, root = trace_id(), span_id()
    base = time.time_ns()
    post(collector, [tool_failure(tid, root, base)])  # the root has not arrived yet
    now = datetime.now(timezone.utc)
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=now, delay=5) == 0  # still within the quiet period
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=now + timedelta(seconds=10), delay=5) == 1
    with sessionmaker() as session:
        [row] = rows(session, tid)
        assert (row.error_class, row.recovered, row.trace_failed, row.tool_name) == ("timeout", False, False, "search")
        assert "a failed span's parent was not received; the failure may have travelled further" in row.evidence
        assert row.confidence == 0.8  # 0.9 structured, -0.1 incomplete
        trace = session.get(TraceRow, (collector.project_id, tid))
        assert trace.attributed_at == trace.updated_at
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=now + timedelta(seconds=10), delay=5) == 0  # up to date

    # The root arrives, failed: the trace is pending again and its rows are replaced.
    post(collector, [span(tid, root, name="agent run", start=base, duration=50 * MS, status=2, message="failed",
                          attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"})])
    with sessionmaker() as session:
        trace = session.get(TraceRow, (collector.project_id, tid))
        assert trace.updated_at > trace.attributed_at
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(seconds=10), delay=5) == 1
    with sessionmaker() as session:
        [row] = rows(session, tid)
        assert (row.recovered, row.trace_failed, row.propagation_depth, row.agent_name) == (False, True, 1, "a")
        assert row.confidence == 0.9


def test_claims_skip_locked_traces(collector, sessionmaker):  # noqa: F811
    base = time.time_ns()
    traces = [trace_id(), trace_id()]
    for tid in traces:
        root = span_id()
        post(collector, [span(tid, root, name="run", start=base, duration=30 * MS), tool_failure(tid, root, base)])
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    # The second pass skips the run the first holds and takes the other.
    assert two_passes_at_once(sessionmaker, lambda s, limit: attribute_pending(s, now=later, delay=5, limit=limit),
                              1, 10) == (1, 1)
    with sessionmaker() as session:
        assert all(len(rows(session, tid)) == 1 for tid in traces)
        assert all(r.recovered for tid in traces for r in rows(session, tid))  # handled by the unset root
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5) == 0


def test_background_thread_materializes(collector, sessionmaker):  # noqa: F811
    attributor = Attributor(sessionmaker, delay=0, interval=0.05)
    attributor.start()
    try:
        tid, root = trace_id(), span_id()
        base = time.time_ns()
        post(collector, [span(tid, root, name="run", start=base, duration=30 * MS, status=2),
                         tool_failure(tid, root, base)])
        deadline = time.monotonic() + 15
        while True:
            with sessionmaker() as session:
                found = rows(session, tid)
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [r.trace_failed for r in found] == [True]
        assert attributor.attributed >= 1
    finally:
        attributor.stop()


def test_updated_at_never_goes_backwards(database_url, engine):
    """A writer whose transaction started earlier must still move updated_at forward."""
    import psycopg
    from sqlalchemy import text as sql_text

    from db.engine import libpq_url
    from db.ingest import prepare_connection, write_batch
    from collector.pipeline import prepare
    from core.otlp import Limits
    from tests import otlp_payloads as P

    tid = P.trace_id()
    first = prepare(P.request([P.span(tid, P.span_id())]).SerializeToString(), "application/x-protobuf",
                    project_id=1, limits=Limits(), overrides=())
    second = prepare(P.request([P.span(tid, P.span_id())]).SerializeToString(), "application/x-protobuf",
                     project_id=1, limits=Limits(), overrides=())
    early = psycopg.connect(libpq_url(database_url))
    prepare_connection(early)
    early.execute("SELECT 1")  # opens the early transaction: its now() is fixed from here
    late = psycopg.connect(libpq_url(database_url))
    prepare_connection(late)
    write_batch(late, first.rows, first.edges)
    with engine.connect() as conn:
        before = conn.execute(sql_text("select updated_at from traces")).scalar_one()
    write_batch(early, second.rows, second.edges)
    with engine.connect() as conn:
        after = conn.execute(sql_text("select updated_at from traces")).scalar_one()
    early.close()
    late.close()
    assert after > before


def test_error_free_traces_settle_in_bulk_unless_linked_to_a_failure(collector, sessionmaker):  # noqa: F811
    base = time.time_ns()
    failing, failing_root = trace_id(), span_id()
    failed_tool = tool_failure(failing, failing_root, base)
    post(collector, [span(failing, failing_root, name="agent run", start=base, duration=50 * MS,
                          attributes={"gen_ai.operation.name": "invoke_agent"}), failed_tool])
    # Error-free, but it consumed the failed tool's output from the other trace.
    consumer = trace_id()
    post(collector, [span(consumer, span_id(), name="summarize", start=base + 60 * MS,
                          links=[(failing, failed_tool.span_id, {"causeline.link.type": "data_from"})])])
    # Error-free and unlinked: nothing can fail here.
    plain = [trace_id() for _ in range(3)]
    for tid in plain:
        post(collector, [span(tid, span_id(), name="ok", start=base)])

    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=100) == 5
    with sessionmaker() as session:
        assert [r.tool_name for r in rows(session, failing)] == ["search"]
        [consumed] = rows(session, consumer)  # reached through the link, not skipped as error-free
        assert (consumed.root_trace_id, consumed.root_span_id) == (failing, failed_tool.span_id)
        for tid in plain:
            assert rows(session, tid) == []
            trace = session.get(TraceRow, (collector.project_id, tid))
            assert trace.attributed_at == trace.updated_at
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=100) == 0
