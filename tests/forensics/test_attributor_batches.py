"""The background attributor reads small failed runs linked to no other run together (a few
statements per batch, not per run), and stores for each exactly what attributing it alone
gives; large or linked runs keep the one-by-one path. On real PostgreSQL, spans through the
real collector."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import select, text

from core.run_outcome import run_outcome
from db.models import TraceFailure, TraceRow
from db.queries import forensics
from db.queries.failure_rollups import contribution_sql, fold
from db.queries.forensics import attribute_pending, failure_rows, trace_attribution
from tests.claims import two_passes_at_once
from tests.collector.conftest import collector  # noqa: F401 - the fixture
from tests.otlp_payloads import request, span, span_id, trace_id
from tests.plans import statements_of

MS = 1_000_000
COMPARED = ("root_trace_id", "root_span_id", "error_class", "category", "span_name", "step_name", "tool_name",
            "provider", "request_model", "recovered", "trace_failed", "confidence", "tokens_burned",
            "cost_burned_usd", "propagation_depth", "blast_radius", "evidence", "trace_start")


def post(collector, spans) -> None:  # noqa: F811
    response = httpx.post(collector.traces_endpoint, content=request(spans).SerializeToString(),
                          headers={**collector.auth(), "content-type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 200, response.text


def model_call(tid, parent, start, *, model="gpt-4o", failed=False, **attributes):
    return span(tid, span_id(), parent=parent, name=f"chat {model}", start=start, duration=20 * MS,
                status=2 if failed else 0, message="rate limit exceeded" if failed else "",
                attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                            "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 100,
                            "gen_ai.usage.output_tokens": 20, **({"error.type": "429"} if failed else {}),
                            **attributes})


def failed_run(shape: int, base: int) -> list:
    """Failed runs of a few shapes: a failed tool under a failed root, a rate limit recovered by a
    retry, a failure whose root span never arrived, two independent failures."""
    tid, root = trace_id(), span_id()
    agent = span(tid, root, name="invoke_agent support", start=base, duration=900 * MS, status=2 if shape == 0 else 0,
                 attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    tool = span(tid, span_id(), parent=root, name="execute_tool search", start=base + 300 * MS, duration=5 * MS,
                status=2, message="TimeoutError: search timed out",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                            "error.type": "TimeoutError"})
    if shape == 0:
        return [agent, tool]
    if shape == 1:
        return [agent, model_call(tid, root, base + 10 * MS, failed=True),
                model_call(tid, root, base + 40 * MS, **{"causeline.retry.attempt": 2})]
    if shape == 2:
        return [tool]  # the root is missing
    return [agent, tool, model_call(tid, root, base + 500 * MS, model="gpt-4o-mini", failed=True)]


def test_small_failed_runs_are_read_together_and_attributed_as_alone(collector, sessionmaker,  # noqa: F811
                                                                      monkeypatch):
    monkeypatch.setattr(forensics, "BATCH_SPANS", 3)  # a run of more spans goes alone
    base = time.time_ns()
    small = [failed_run(i % 4, base + i * 1_000 * MS) for i in range(12)]
    large = failed_run(3, base)
    large.append(model_call(large[0].trace_id, large[0].span_id, base + 600 * MS))  # 4 spans: over the bound
    # A failed run linked to another: read alone, following the link.
    linked, linked_root = trace_id(), span_id()
    linked_spans = [span(linked, linked_root, name="summarize", start=base, duration=30 * MS, status=2,
                         message="bad input", links=[(small[0][1].trace_id, small[0][1].span_id,
                                                      {"causeline.link.type": "data_from"})])]
    for spans in [*small, large, linked_spans]:
        post(collector, spans)
    runs = [spans[0].trace_id for spans in [*small, large, linked_spans]]

    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session, statements_of(session) as sent:
        assert attribute_pending(session, now=later, delay=5, limit=100) == len(runs)
    span_reads = [statement for statement, _ in sent if re.search(r"\bFROM spans\b", statement)]
    # The 11 small unlinked runs (small[0] is linked to) in one read, bounded by their times so
    # partitions outside them are pruned; the large run and the two linked ones one read each.
    batch_reads = [s for s in span_reads if "spans.start_time >=" in s and "spans.start_time <=" in s]
    assert len(batch_reads) == 1 and len(span_reads) == 4

    with sessionmaker.begin() as session:
        fold(session)
    with sessionmaker() as session:
        for tid in runs:
            alone = trace_attribution(session, collector.project_id, tid)
            expected = sorted(
                (tuple(row[k] for k in COMPARED)
                 for row in failure_rows(collector.project_id, alone.trace, alone.attribution)),
                key=repr)
            stored = sorted(
                (tuple(getattr(row, k) for k in COMPARED)
                 for row in session.scalars(select(TraceFailure).where(TraceFailure.trace_id == tid))),
                key=repr)
            assert stored == expected and stored
            trace = session.get(TraceRow, (collector.project_id, tid))
            assert trace.outcome == run_outcome(alone.attribution.failed, len(expected))
            assert trace.attributed_at == trace.updated_at
        # The rollup equals a rebuild from trace_failures.
        cols = "hour, dim, grp, failures, recovered, tokens_burned, runs, failed_runs"
        stored = session.execute(text(f"SELECT {cols} FROM failure_rollups WHERE project_id = :p ORDER BY 1, 2, 3"),
                                 {"p": collector.project_id}).all()
        rebuilt = session.execute(text(
            f"SELECT {cols} FROM ({contribution_sql('tf.project_id = :p')}) r ORDER BY 1, 2, 3"),
            {"p": collector.project_id}).all()
        assert stored == rebuilt and stored

    with sessionmaker.begin() as session:
        assert attribute_pending(session, now=later, delay=5, limit=100) == 0


def test_a_batch_is_cut_by_spans(collector, sessionmaker, monkeypatch):  # noqa: F811
    monkeypatch.setattr(forensics, "BATCH_READ_SPANS", 5)  # runs of 2 and 3 spans: a read every two runs
    base = time.time_ns()
    small = [failed_run(i % 2, base + i * 1_000 * MS) for i in range(6)]
    for spans in small:
        post(collector, spans)
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    with sessionmaker.begin() as session, statements_of(session) as sent:
        assert attribute_pending(session, now=later, delay=5, limit=100) == 6
    assert len([s for s, _ in sent if re.search(r"\bFROM spans\b", s)]) == 3
    with sessionmaker() as session:
        for spans in small:
            assert session.scalars(select(TraceFailure).where(TraceFailure.trace_id == spans[0].trace_id)).all()


def test_statements_do_not_grow_with_the_batch(collector, sessionmaker):  # noqa: F811
    counts = []
    for n in (1, 3, 12):  # the first round also asks once whether the database is Citus
        base = time.time_ns()
        for i in range(n):
            post(collector, failed_run(i % 4, base + i * 1_000 * MS))
        later = datetime.now(timezone.utc) + timedelta(seconds=10)
        with sessionmaker.begin() as session, statements_of(session) as sent:
            assert attribute_pending(session, now=later, delay=5, limit=100) == n
        counts.append(len(sent))
    assert counts[1] == counts[2] and counts[1] < 15


def test_two_attribution_passes_skip_each_others_runs(collector, sessionmaker):  # noqa: F811
    """Several runs a pass (on Citus, over several shards): the second pass takes the others
    without waiting for the first pass's locks."""
    base = time.time_ns()
    runs = [failed_run(i % 4, base + i * 1_000 * MS) for i in range(6)]
    for spans in runs:
        post(collector, spans)
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    assert two_passes_at_once(sessionmaker, lambda s, limit: attribute_pending(s, now=later, delay=5, limit=limit),
                              3, 10) == (3, 3)
    with sessionmaker() as session:
        for spans in runs:
            assert session.scalars(select(TraceFailure).where(TraceFailure.trace_id == spans[0].trace_id)).all()


def test_the_work_keeps_the_claims_order():
    """Consecutive small unlinked runs of one project are read together (up to the span cap); a
    linked or large run, or another project's run, starts a new piece, so the claim's order (fair
    across projects) is the order of the work."""
    from collections import namedtuple

    Run = namedtuple("Run", "project_id trace_id span_count")
    a1, a2, a3 = Run(1, b"a1", 10), Run(1, b"a2", 10), Run(1, b"a3", 10)
    b1, b2 = Run(2, b"b1", 10), Run(2, b"b2", 10)
    big, tied = Run(1, b"big", 5_000), Run(1, b"tied", 10)
    shape = lambda work: [(p, [r.trace_id for r in runs], together) for p, runs, together in work]  # noqa: E731
    assert shape(forensics._work([a1, a2, b1, b2, a3], set(), 1_000)) == [
        (1, [b"a1", b"a2"], True), (2, [b"b1", b"b2"], True), (1, [b"a3"], True)]
    assert shape(forensics._work([a1, big, tied, a2], {(1, b"tied")}, 1_000)) == [
        (1, [b"a1"], True), (1, [b"big"], False), (1, [b"tied"], False), (1, [b"a2"], True)]
    many = [Run(1, bytes([i]), 900) for i in range(25)]  # 22 of 900 spans fit under 20,000
    assert [len(runs) for _, runs, _ in forensics._work(many, set(), 1_000)] == [22, 3]
