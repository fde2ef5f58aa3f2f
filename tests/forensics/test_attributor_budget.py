"""The background attributor under load, on real PostgreSQL: one project's flood never
starves another's, and a trace over its budget is attributed by the bounded method (and
says so) or left behind, never blocking the batch."""

from __future__ import annotations

import logging
import time

import httpx
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import TraceFailure, TraceRow
from db.queries.auth import create_api_key, create_project
from db.queries.forensics import attribute_pending
from tests.collector.conftest import collector  # noqa: F401 - the fixture
from tests.forensics.test_attributor import rows, tool_failure
from tests.otlp_payloads import request, span, span_id, trace_id

MS = 1_000_000


def failing_trace(collector, key: str | None = None, children: int = 0) -> bytes:  # noqa: F811
    tid, root = trace_id(), span_id()
    base = time.time_ns()
    spans = [span(tid, root, name="agent run", start=base, duration=50 * MS, status=2,
                  attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}),
             tool_failure(tid, root, base)]
    spans += [span(tid, span_id(), parent=root, name=f"step {i}", start=base + (20 + i) * MS) for i in range(children)]
    response = httpx.post(collector.traces_endpoint, content=request(spans).SerializeToString(),
                          headers={**collector.auth(key or collector.key), "content-type": "application/x-protobuf"},
                          timeout=30)
    assert response.status_code == 200, response.text
    return tid


def attributed(session, project_id: int, tid: bytes) -> bool:
    trace = session.get(TraceRow, (project_id, tid))
    return trace.attributed_at is not None and trace.attributed_at >= trace.updated_at


def test_one_projects_flood_never_starves_another(collector, sessionmaker):  # noqa: F811
    flood = [failing_trace(collector) for _ in range(12)]
    with sessionmaker.begin() as session:
        other = create_project(session, "quiet-neighbour")
        other_key = create_api_key(session, other.id, name="k", scopes=["ingest", "read"]).secret
        other_id = other.id
    lone = failing_trace(collector, other_key)  # arrives after the whole flood
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session:
        # Oldest first would give the whole batch to the flood; each project gets its share.
        assert attribute_pending(session, now=later, delay=5, limit=4) == 4
    with sessionmaker() as session:
        assert attributed(session, other_id, lone)
        assert [r.tool_name for r in rows(session, lone)] == ["search"]
        assert sum(attributed(session, collector.project_id, tid) for tid in flood) == 3  # 2 each, then the rest
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=100) == 9
    with sessionmaker() as session:
        assert all(attributed(session, collector.project_id, tid) for tid in flood)


def test_a_lone_project_gets_the_whole_batch(collector, sessionmaker):  # noqa: F811
    traces = [failing_trace(collector) for _ in range(5)]
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=5) == 5
    with sessionmaker() as session:
        assert all(attributed(session, collector.project_id, tid) for tid in traces)


def test_trace_over_the_span_budget_is_partially_attributed(collector, sessionmaker):  # noqa: F811
    small, large = failing_trace(collector), failing_trace(collector, children=6)
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=10, max_spans=4) == 2
    with sessionmaker() as session:
        [full] = rows(session, small)
        assert not any("partially attributed" in e for e in full.evidence)
        [partial] = rows(session, large)
        assert partial.evidence[0] == ("partially attributed, trace too large (8 spans, over the 4 span budget): "
                                       "linked traces not followed, first 4 spans only")
        assert (partial.error_class, partial.trace_failed) == ("timeout", True)  # the first 4 spans hold the story


def test_trace_over_the_time_budget_never_blocks_the_batch(collector, sessionmaker, caplog):  # noqa: F811
    first, second = failing_trace(collector), failing_trace(collector)
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with caplog.at_level(logging.WARNING, logger="causeline.attributor"):
        with sessionmaker.begin() as session:
            # No time at all: both methods stop at once; the trace is settled (not retried in a
            # loop) and the batch ends there, the other trace left for the next one.
            assert attribute_pending(session, now=later, delay=5, limit=10, budget_s=-1) == 1
    assert "too large to attribute" in caplog.text
    with sessionmaker() as session:
        done = [tid for tid in (first, second) if attributed(session, collector.project_id, tid)]
        assert len(done) == 1 and rows(session, done[0]) == []
        assert list(session.scalars(select(TraceFailure.trace_id))) == []
    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=10) == 1
    with sessionmaker() as session:
        assert all(attributed(session, collector.project_id, tid) for tid in (first, second))
