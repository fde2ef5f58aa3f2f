"""A user in several projects picks one with ?project=<slug>, on the pages and the JSON API;
membership is checked on every request, and a key stays bound to its own project."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import User
from db.queries.auth import add_membership
from tests.api.seed import seed_agent_trace, seed_project, seed_simple_traces
from tests.web.conftest import login


@pytest.fixture
def projects(session, seeded):
    """seeded's user (member of acme) also joins beta; gamma has no such member."""
    beta, gamma = seed_project(session, "beta"), seed_project(session, "gamma")
    beta_trace = seed_agent_trace(session, beta.id)
    seed_simple_traces(session, gamma.id, 1)
    user = session.scalars(select(User)).one()
    add_membership(session, user.id, beta.id)
    session.commit()
    return beta, gamma, beta_trace


def trace_ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {t["trace_id"] for t in response.json()["traces"]}


def test_api_project_parameter_with_a_login(client, seeded, projects):
    beta, gamma, beta_trace = projects
    login(client, seeded)
    assert trace_ids(client.get("/api/traces")) == {seeded.trace.hex}  # the first project by default
    assert trace_ids(client.get("/api/traces", params={"project": "beta"})) == {beta_trace.hex}
    assert client.get(f"/api/traces/{beta_trace.hex}", params={"project": "beta"}).status_code == 200
    for other in ("gamma", "nope"):
        refused = client.get("/api/traces", params={"project": other})
        assert refused.status_code == 403 and f"not a member of project '{other}'" in refused.json()["detail"]


def test_api_keys_stay_bound_to_their_project(client, seeded, projects):
    beta, gamma, _ = projects
    key = {"authorization": f"Bearer {seeded.project.read_key.secret}"}
    assert trace_ids(client.get("/api/traces", headers=key, params={"project": "acme"})) == {seeded.trace.hex}
    refused = client.get("/api/traces", headers=key, params={"project": "beta"})
    assert refused.status_code == 403 and "reads only its own project" in refused.json()["detail"]


def test_pages_switch_project_and_remember_it(client, seeded, projects):
    beta, gamma, beta_trace = projects
    login(client, seeded)
    assert seeded.trace.hex in client.get("/traces").text
    page = client.get("/traces", params={"project": "beta"})
    assert page.status_code == 200 and beta_trace.hex in page.text and seeded.trace.hex not in page.text
    # Links carry no parameter: the choice is remembered for the pages and the JSON API.
    assert client.get(f"/traces/{beta_trace.hex}").status_code == 200
    assert trace_ids(client.get("/api/traces")) == {beta_trace.hex}
    refused = client.get("/traces", params={"project": "gamma"})
    assert refused.status_code == 403 and "is not a member of project &#39;gamma&#39;" in refused.text
    client.post("/logout", headers={"Origin": "http://testserver"})
    login(client, seeded)
    assert seeded.trace.hex in client.get("/traces").text  # logout forgets the choice


def test_a_remembered_project_is_rechecked(client, session, seeded, projects):
    login(client, seeded)
    client.cookies.set("causeline_project", "gamma")  # not a member: ignored, first project shown
    assert seeded.trace.hex in client.get("/traces").text
    assert trace_ids(client.get("/api/traces")) == {seeded.trace.hex}
