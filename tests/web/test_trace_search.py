"""Trace list search: span names and captured content, through GIN indexes; audited; viewers search names only."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, text

from db.models import AuditEvent, SpanRow
from db.queries.auth import add_membership, create_user
from db.queries.trace_search import matching_traces
from tests.api.seed import XSS, make_span, store
from tests.plans import indexes_used
from tests.web.conftest import ORIGIN, login

HX = {"HX-Request": "true"}


def trace_with(session, project_id: int, name: str, prompt: str) -> bytes:
    trace_id = os.urandom(16)
    root = make_span(project_id, trace_id, name=name, start_ms=0, duration_ms=10, category="agent",
                     input=prompt)
    store(session, [root])
    return trace_id


def test_search_matches_names_and_content_and_is_audited(client, session, seeded):
    pid = seeded.project.id
    refund = trace_with(session, pid, "refund flow", "Customer wants a refund for order 8812")
    other = trace_with(session, pid, "weather", f"What is the weather? {XSS}")
    session.commit()
    login(client, seeded)
    by_name = client.get("/traces", params={"q": "refund"}).text
    assert refund.hex() in by_name and other.hex() not in by_name
    by_content = client.get("/traces/rows", params={"q": "8812"}, headers=HX).text
    assert refund.hex() in by_content and other.hex() not in by_content and "<html" not in by_content
    none = client.get("/traces/rows", params={"q": "zebra"}, headers=HX).text
    assert "No traces match" in none
    hostile = client.get("/traces", params={"q": XSS}).text
    assert XSS not in hostile and "&lt;script&gt;" in hostile
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "search")).all()
    assert {e.target for e in events} >= {"refund", "8812", "zebra"}
    page = client.get("/traces").text
    assert 'hx-trigger="input delay:300ms, submit"' in page


def test_viewers_search_span_names_only_and_are_not_audited(settings, engine, session, seeded):
    from server.app import create_app

    pid = seeded.project.id
    secret = trace_with(session, pid, "billing run", "the password is swordfish")
    user = create_user(session, "viewer@example.com", "viewer-password-1")
    add_membership(session, user.id, pid, role="viewer")
    session.commit()
    app = create_app(settings, engine=engine, parts=("api", "web"))
    with TestClient(app, base_url="http://testserver") as viewer:
        assert viewer.post("/login", data={"email": "viewer@example.com", "password": "viewer-password-1"},
                           headers=ORIGIN, follow_redirects=False).status_code == 303
        assert secret.hex() not in viewer.get("/traces", params={"q": "swordfish"}).text
        assert secret.hex() in viewer.get("/traces", params={"q": "billing"}).text
    targets = session.scalars(select(AuditEvent.target).where(AuditEvent.action == "search")).all()
    assert "swordfish" not in targets and "billing" not in targets


def test_search_reads_the_gin_indexes(session, seeded):
    pid = seeded.project.id
    trace_id = os.urandom(16)
    filler = [make_span(pid, trace_id, name=f"step {i}", start_ms=i, duration_ms=1, input=f"prompt number {i}")
              for i in range(3000)]
    session.execute(insert(SpanRow), [{c.key: getattr(s, c.key) for c in SpanRow.__table__.columns
                                       if getattr(s, c.key) is not None} for s in filler])
    session.execute(text("ANALYZE spans"))
    for content in (True, False):
        sub = matching_traces(pid, "refund order", content=content)
        compiled = sub.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the planner show its options
        plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())
        used = {f for f in ("name", "input", "output") if f"ix_spans_{f}_search" in indexes_used(session, plan)}
        assert used == ({"name", "input", "output"} if content else {"name"}), plan
    session.rollback()


def _runs_over_days(session, pid: int) -> dict[str, bytes]:
    """Runs today and days ago, some with a provider, each named after its words."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    made = {}
    for label, hours, provider in (("alpha beta", 1, "openai"), ("alpha gamma", 3, None), ("alpha delta", 30, "openai"),
                                   ("alpha beta", 100, None), ("beta", 200, "anthropic")):
        tid = os.urandom(16)
        root = make_span(pid, tid, name=label, start_ms=0, duration_ms=10, category="agent",
                         base=now - timedelta(hours=hours))
        child = make_span(pid, tid, name="chat", start_ms=1, duration_ms=5, parent=root.span_id, category="llm",
                          base=now - timedelta(hours=hours), provider=provider, input=f"about {label}")
        store(session, [root, child])
        made[f"{label}@{hours}"] = tid
    session.commit()
    return made


def test_search_totals_are_exact_up_to_the_cap_and_capped_beyond(session, seeded, monkeypatch):
    """search_totals (the last day first, then every match) counts what one plain statement over
    every match counts; above the cap it says `capped`, never a wrong number."""
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    from db.queries import run_filters
    from db.queries.run_filters import RunFilters, RunTotals, filtered_runs, run_totals

    _runs_over_days(session, seeded.project.id)
    now = datetime.now(timezone.utc)
    for word in ("alpha", "beta", "gamma", "delta", "zebra"):
        for extra in ({}, {"provider": "openai"}, {"since": now - timedelta(days=2), "until": now}):
            f = RunFilters(search=word, search_content=True, **extra)
            plain = session.scalar(filtered_runs((func.count(),), seeded.project.id, f))
            totals = run_totals(session, seeded.project.id, f)
            assert not totals.capped and totals.runs == plain, (word, extra)
    monkeypatch.setattr(run_filters, "SEARCH_TOTALS_CAP", 2)
    capped = run_totals(session, seeded.project.id, RunFilters(search="alpha", search_content=True))
    assert capped == RunTotals(2, 0, 0, Decimal(0), 0, 0, 0, capped=True)
    exact = run_totals(session, seeded.project.id, RunFilters(search="gamma", search_content=True))
    assert exact.runs == 1 and not exact.capped
    assert session.scalar(filtered_runs((func.count(),), seeded.project.id, RunFilters(search="alpha"))) == 4
    session.rollback()


def test_a_capped_search_says_more_than_and_adds_nothing_up(client, session, seeded, monkeypatch):
    from db.queries import run_filters

    _runs_over_days(session, seeded.project.id)
    monkeypatch.setattr(run_filters, "SEARCH_TOTALS_CAP", 2)
    login(client, seeded)
    html = client.get("/traces", params={"q": "alpha", "range": "30d"}).text
    assert "more than 2" in html and "counting stopped there" in html and "Tokens in / out</dt>" not in html
    assert html.count('class="badge ') >= 4  # the list itself still shows every matching run
    twin = client.get("/api/traces", params={"q": "alpha", "range": "30d"}).json()
    assert twin["totals"] == {"runs": 2, "capped": True, "failed": None, "with_errors": None, "cost_usd": None,
                              "unpriced_calls": None, "input_tokens": None, "output_tokens": None}
    assert len(twin["traces"]) == 4
    exact = client.get("/api/traces", params={"q": "gamma", "range": "30d"}).json()["totals"]
    assert exact["runs"] == 1 and exact["capped"] is False and exact["input_tokens"] is not None


def test_the_last_day_of_a_search_reads_the_gin_indexes_of_its_partitions_only(session, seeded):
    """search_totals' first statement: the window's last 24 hours of spans, through the GIN
    indexes, the partitions of older days pruned; the provider probe goes by primary key,
    bounded to the run's own time (run-time pruning)."""
    from datetime import datetime, timedelta, timezone

    from db.models import TraceRow
    from db.queries.run_filters import RunFilters, filtered_runs

    pid = seeded.project.id
    since = datetime.now(timezone.utc) - timedelta(days=1)
    filler = [make_span(pid, os.urandom(16), name=f"step {i}", start_ms=i, duration_ms=1, input=f"prompt number {i}",
                        base=since + timedelta(hours=1)) for i in range(3000)]  # the last day's spans
    session.execute(insert(SpanRow), [{c.key: getattr(s, c.key) for c in SpanRow.__table__.columns
                                       if getattr(s, c.key) is not None} for s in filler])
    session.execute(text("ANALYZE spans"))
    matches = matching_traces(pid, "refund", content=True, spans_from=since)
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the planner show its options
    plan = "\n".join(session.execute(text(
        f"EXPLAIN {matches.compile(session.get_bind(), compile_kwargs={'literal_binds': True})}")).scalars())
    assert {"ix_spans_name_search", "ix_spans_input_search", "ix_spans_output_search"} <= indexes_used(session, plan)
    for old in range(3):  # the daily partitions before the last day are not read
        day = (since - timedelta(days=1 + old)).strftime("%Y%m%d")
        assert f"spans_p{day}" not in plan, plan
    query = filtered_runs((TraceRow.trace_id,), pid, RunFilters(provider="openai")).where(
        TraceRow.trace_id.in_(matches)).limit(1001)
    plan = "\n".join(session.execute(text(
        f"EXPLAIN {query.compile(session.get_bind(), compile_kwargs={'literal_binds': True})}")).scalars())
    assert "pk_spans" in indexes_used(session, plan)
    # The provider probe: by primary key, within the run's own time (run-time partition pruning).
    assert "(start_time >= traces.start_time) AND (start_time <= traces.end_time)" in plan, plan
    session.rollback()
