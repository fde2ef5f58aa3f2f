from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from db.queries.auth import add_membership, create_user
from server.app import create_app
from tests.api.seed import AgentTrace, SeededProject, seed_agent_trace, seed_project

PASSWORD = "correct horse battery staple"


@dataclass
class Seeded:
    project: SeededProject
    trace: AgentTrace
    email: str
    password: str


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, demo="off")


@pytest.fixture
def app(settings, engine):
    return create_app(settings, engine=engine, parts=("api", "web"))


@pytest.fixture
def seeded(session) -> Seeded:
    project = seed_project(session, "acme")
    trace = seed_agent_trace(session, project.id)
    user = create_user(session, "Ada@Example.com", PASSWORD)
    add_membership(session, user.id, project.id)
    session.commit()
    return Seeded(project, trace, "ada@example.com", PASSWORD)


@pytest.fixture
def client(app):
    # base_url matters: the CSRF check compares Origin with the Host header.
    with TestClient(app, base_url="http://testserver") as client:
        yield client


ORIGIN = {"Origin": "http://testserver"}


def login(client: TestClient, seeded: Seeded, next_path: str = "") -> None:
    response = client.post("/login", data={"email": seeded.email, "password": seeded.password, "next": next_path},
                           headers=ORIGIN, follow_redirects=False)
    assert response.status_code == 303, response.text
