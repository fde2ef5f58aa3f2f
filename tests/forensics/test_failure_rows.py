"""trace_failures keeps one row per root cause, keyed by (root_trace_id, root_span_id): span
ids are unique only within a trace, so two linked traces may hold the same one."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import TraceFailure
from db.queries.forensics import attribute_pending
from tests.api.seed import link, make_span, seed_project, store


def test_root_causes_in_two_linked_traces_sharing_a_span_id_are_both_kept(session):
    project = seed_project(session, "acme")
    shared = os.urandom(8)  # the same span id in two different traces
    sources = []
    for name in ("lookup_crm", "lookup_billing"):
        trace_id = os.urandom(16)
        store(session, [make_span(project.id, trace_id, span_id=shared, name=f"execute_tool {name}", start_ms=0,
                                  duration_ms=10, category="tool", tool_name=name, status="error",
                                  error_type="timeout", error_class="timeout", status_message="timed out")])
        sources.append(trace_id)
    main, root = os.urandom(16), os.urandom(8)
    store(session, [
        make_span(project.id, main, span_id=root, name="invoke_agent merge", start_ms=20, duration_ms=50,
                  category="agent"),
        make_span(project.id, main, parent=root, name="merge results", start_ms=25, duration_ms=10,
                  links=[link(t, shared, "data_from") for t in sources]),
    ])
    session.commit()

    assert attribute_pending(session, now=datetime.now(timezone.utc) + timedelta(minutes=1), delay=0) == 3
    session.commit()

    rows = session.execute(select(TraceFailure.root_trace_id, TraceFailure.root_span_id, TraceFailure.tool_name)
                           .where(TraceFailure.trace_id == main)).all()
    assert sorted((bytes(t), bytes(s), tool) for t, s, tool in rows) == sorted(
        [(sources[0], shared, "lookup_crm"), (sources[1], shared, "lookup_billing")])
