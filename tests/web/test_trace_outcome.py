"""Run outcome: set by the attributor on traces, shown, filtered in the list page and /api/traces."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import TraceFailure, TraceRow
from db.queries.forensics import attribute_pending
from tests.api.seed import XSS, make_span, seed_simple_traces, store
from tests.web.conftest import login


def recovered_trace(session, project_id: int) -> bytes:
    """A model call times out, is retried and succeeds: the run went on."""
    trace_id = os.urandom(16)
    root = make_span(project_id, trace_id, name="run", start_ms=0, duration_ms=100, category="agent", status="ok")
    first = make_span(project_id, trace_id, name=XSS, start_ms=1, duration_ms=10, category="llm", parent=root.span_id,
                      status="error", error_class="timeout", status_message="timed out", request_model="gpt-4o")
    retry = make_span(project_id, trace_id, name="chat gpt-4o", start_ms=20, duration_ms=10, category="llm",
                      parent=root.span_id, status="ok", request_model="gpt-4o", retry_kind="retry")
    store(session, [root, first, retry])
    return trace_id


def failed_trace(session, project_id: int) -> bytes:
    trace_id = os.urandom(16)
    root = make_span(project_id, trace_id, name="run", start_ms=0, duration_ms=100, category="agent",
                     status="error", error_class="tool_error")
    tool = make_span(project_id, trace_id, name="execute_tool refund", start_ms=1, duration_ms=10, category="tool",
                     parent=root.span_id, status="error", error_class="tool_error", tool_name="refund")
    store(session, [root, tool])
    return trace_id


def test_attributor_sets_the_outcome_and_the_list_filters_on_it(client, session, seeded):
    pid = seeded.project.id
    ok_ids = seed_simple_traces(session, pid, 2)
    recovered, failed = recovered_trace(session, pid), failed_trace(session, pid)
    session.commit()
    login(client, seeded)
    assert "pending" in client.get("/traces").text  # not yet attributed
    attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(hours=1), delay=0, limit=100)
    session.commit()
    outcome = dict(session.execute(select(TraceRow.trace_id, TraceRow.outcome).where(TraceRow.project_id == pid)).all())
    assert [outcome[t] for t in ok_ids] == ["ok", "ok"]
    assert outcome[failed] == "failed"
    failures = session.scalars(select(TraceFailure).where(TraceFailure.trace_id == recovered)).all()
    assert failures and all(f.recovered for f in failures)
    assert outcome[recovered] == "recovered"

    page = client.get("/traces", params={"outcome": "recovered"}).text
    assert recovered.hex() in page and failed.hex() not in page and ok_ids[0].hex() not in page
    assert 'class="badge outcome-recovered"' in page
    assert "&lt;script&gt;" in page and XSS not in page  # the root cause's name, escaped
    failed_page = client.get("/traces", params={"outcome": "failed"}).text
    assert failed.hex() in failed_page and "execute_tool refund" in failed_page and recovered.hex() not in failed_page

    api = client.get("/api/traces", params={"outcome": "failed"}).json()
    assert [t["trace_id"] for t in api["traces"]] == [failed.hex()] and api["traces"][0]["outcome"] == "failed"
    assert client.get("/api/traces", params={"outcome": "nope"}).status_code == 422
    # `status` keeps working next to it.
    both = client.get("/api/traces", params={"status": "error", "outcome": "recovered"}).json()["traces"]
    assert recovered.hex() in [t["trace_id"] for t in both]
    assert all(t["status"] == "error" and t["outcome"] == "recovered" for t in both)


def test_an_invalid_filter_shows_its_error_and_no_list(client, seeded):
    login(client, seeded)
    html = client.get("/traces", params={"outcome": "sideways"}).text
    assert "Outcome must be one of" in html
    assert seeded.trace.hex not in html and "No traces match" not in html
    bad_cursor = client.get("/traces", params={"cursor": "junk"}).text
    assert "page link is invalid" in bad_cursor and seeded.trace.hex in bad_cursor  # the first page instead
