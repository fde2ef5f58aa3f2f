"""Reports over HTTP: the API's files and seals, the Reports page, and who may create them."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from core.permissions import Role
from core.settings import Settings
from db.queries.auth import add_membership, create_user, create_user_session
from server.app import create_app
from tests.api.seed import seed_agent_trace, seed_project


@pytest.fixture
def world(database_url, engine, sessionmaker):
    app = create_app(Settings(database_url=database_url, demo="off"), engine=engine, parts=("api", "web"))
    with sessionmaker() as session:
        project = seed_project(session, "acme")
        trace = seed_agent_trace(session, project.id)
        cookies = {}
        for role in (Role.AUDITOR, Role.VIEWER):
            user = create_user(session, f"{role}@example.com", "pw")
            add_membership(session, user.id, project.id, role)
            cookies[role] = create_user_session(session, user.id, days=1)
        session.commit()
    with TestClient(app, base_url="http://testserver") as client:
        yield client, cookies, trace


def test_auditor_gets_a_sealed_pdf_and_the_event_is_recorded(world):
    client, cookies, trace = world
    client.cookies.set("causeline_session", cookies[Role.AUDITOR])
    r = client.get(f"/api/reports/incident/{trace.hex}", params={"format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf"
    seal = json.loads(base64.b64decode(r.headers["x-causeline-report-seal"]))
    import hashlib
    assert seal["file_sha256"] == hashlib.sha256(r.content).hexdigest()
    assert seal["manifest"]["count"] == 8
    audit = client.get("/api/audit", params={"action": "report."}).json()
    assert [e["target"] for e in audit["events"]] == [f"incident {trace.hex}"]
    period = client.get("/api/reports/period", params={"since": "2026-11-20T00:00:00Z",
                                                       "until": "2026-11-21T00:00:00Z", "format": "csv"})
    assert period.status_code == 200 and b"periods_of_use" in period.content
    assert client.get("/api/reports/period", params={"since": "2026-11-21T00:00:00Z",
                                                     "until": "2026-11-20T00:00:00Z"}).status_code == 422


def test_reports_page_and_incident_form(world):
    client, cookies, trace = world
    client.cookies.set("causeline_session", cookies[Role.AUDITOR])
    page = client.get("/reports")
    assert page.status_code == 200 and 'action="/reports/incident"' in page.text
    form = client.get("/reports/incident", params={"trace": trace.hex, "format": "html", "include_content": "1"},
                      follow_redirects=False)
    assert form.status_code == 303
    assert form.headers["location"].startswith(f"/api/reports/incident/{trace.hex}?format=html&include_content=true")
    bad = client.get("/reports/incident", params={"trace": "not-hex"}, follow_redirects=False)
    assert bad.headers["location"] == "/reports?error=trace"


def test_viewer_may_not_create_reports(world):
    client, cookies, trace = world
    client.cookies.set("causeline_session", cookies[Role.VIEWER])
    assert client.get(f"/api/reports/incident/{trace.hex}").status_code == 403
    assert "/reports" not in client.get("/traces").text.split("mainnav")[1].split("</nav>")[0]
