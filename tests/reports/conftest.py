"""Fixtures shared by the report tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.seed import BASE_TIME, seed_agent_trace, seed_project, seed_simple_traces


@pytest.fixture
def seeded(session):
    """A project with one agent trace and five simple runs an hour later, every other one failed."""
    project = seed_project(session, "acme")
    trace = seed_agent_trace(session, project.id)
    seed_simple_traces(session, project.id, 5, base=BASE_TIME + timedelta(hours=1), error_every=2)
    session.commit()
    return project, trace
