"""The judge's reasoning may quote captured content: erasure clears it, retention deletes the
verdict with its run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import JudgeAttribution
from db.queries.erasure import erase_subject
from db.queries.retention import delete_traces
from tests.api.seed import BASE_TIME, seed_agent_trace, seed_project


def verdict(session, project_id, trace):
    session.add(JudgeAttribution(project_id=project_id, trace_id=trace.trace_id, status="verdict",
                                 trace_updated_at=datetime.now(timezone.utc), agent="a", step_index=0,
                                 reasoning="user-7 asked for ada@example.com's order"))
    session.commit()


def test_erasure_clears_the_reasoning(session):
    project = seed_project(session, "acme")
    trace = seed_agent_trace(session, project.id)  # its spans carry user id "user-7"
    verdict(session, project.id, trace)
    erase_subject(session, user_id="user-7")
    session.commit()
    [row] = session.scalars(select(JudgeAttribution)).all()
    assert row.reasoning is None and row.agent == "a"


def test_retention_deletes_the_verdict_with_its_run(session):
    project = seed_project(session, "acme")
    trace = seed_agent_trace(session, project.id)
    verdict(session, project.id, trace)
    assert delete_traces(session, project.id, BASE_TIME + timedelta(days=1), 100) == 1
    session.commit()
    assert session.scalars(select(JudgeAttribution)).all() == []
