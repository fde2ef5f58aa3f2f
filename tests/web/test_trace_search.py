"""Trace list search: span names and captured content, through GIN indexes; audited; viewers search names only."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

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
