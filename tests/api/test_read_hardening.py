"""Review findings on the read side: NUL bytes and extreme dates at the boundary, window caps,
safety-net handlers, /metrics and /docs access, bounded trace reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from core import security
from db.queries.auth import create_api_key
from server.app import create_app
from tests.api.seed import seed_agent_trace, seed_project

TRACE = "ab" * 16


@pytest.fixture
def acme(session):
    project = seed_project(session, "acme")
    session.commit()
    return project


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("path, param", [
    ("/api/traces", "service"), ("/api/traces", "agent"), ("/api/traces", "model"),
    ("/api/costs", "service"), ("/api/costs", "model"), ("/api/health/providers", "provider"),
    ("/api/anomalies", "agent"), ("/api/failures", "service"), ("/api/failures", "provider"),
    (f"/api/traces/{TRACE}/attribution", "unknown_param"),
])
def test_nul_in_a_query_parameter_is_422_naming_it(client, acme, path, param):
    response = client.get(path, params={param: "a\x00b"}, headers=auth(acme.read_key.secret))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", param] and error["msg"] == f"{param} must not contain NUL (\\x00) characters"


@pytest.mark.parametrize("path", ["/api/traces", "/api/costs", "/api/health/providers", "/api/anomalies",
                                  "/api/failures"])
@pytest.mark.parametrize("params, field", [
    ({"until": "0001-01-01T00:30:00Z"}, "until"),
    ({"until": "9999-12-31T23:30:00Z"}, "until"),
    ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
    ({"since": "1969-12-31T23:59:59Z", "until": "1970-01-02T00:00:00Z"}, "since"),
    ({"since": "9999-01-01T00:00:00"}, "since"),
])
def test_times_outside_1970_to_9999_are_422(client, acme, path, params, field):
    response = client.get(path, params=params, headers=auth(acme.read_key.secret))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == ["query", field] and "between 1970-01-01 and 9999-01-01" in e["msg"] for e in errors)


@pytest.mark.parametrize("path", ["/api/costs", "/api/failures"])
def test_times_at_the_edges_of_the_range_are_served(client, acme, path):
    params = {"since": "1970-01-01T00:00:00Z", "until": "1970-01-02T00:00:00Z"}
    assert client.get(path, params=params, headers=auth(acme.read_key.secret)).status_code == 200
    params = {"since": "9998-12-31T00:00:00Z", "until": "9998-12-31T23:00:00Z"}
    assert client.get(path, params=params, headers=auth(acme.read_key.secret)).status_code == 200


def test_failures_window_is_capped_at_90_days_like_the_fleet_endpoints(client, acme):
    until = datetime(2026, 11, 20)
    for path in ("/api/failures", "/api/costs"):
        ok = client.get(path, params={"since": (until - timedelta(days=90)).isoformat(), "until": until.isoformat()},
                        headers=auth(acme.read_key.secret))
        assert ok.status_code == 200, ok.text
        too_long = client.get(path, params={"since": (until - timedelta(days=91)).isoformat(),
                                            "until": until.isoformat()}, headers=auth(acme.read_key.secret))
        assert too_long.status_code == 422
        assert "limited to 90 days" in too_long.json()["detail"][0]["msg"]


def test_database_refusals_and_overflows_are_client_errors_not_500(settings, engine):
    """The app-level handlers behind the boundary checks."""
    app = create_app(settings, engine=engine, parts=("api",))

    @app.get("/probe/nul")
    def nul() -> dict:
        with app.state.sessionmaker() as session:
            session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})
        return {}

    @app.get("/probe/overflow")
    def overflow() -> dict:
        return {"t": (datetime.max + timedelta(days=1)).isoformat()}

    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.get("/probe/nul")
        assert refused.status_code == 400 and "the database refused a value" in refused.json()["detail"]
        overflowed = client.get("/probe/overflow")
        assert overflowed.status_code == 422 and "out of range" in overflowed.json()["detail"]


def test_metrics_needs_a_key_with_the_metrics_scope(settings, engine, session, acme):
    metrics_key = create_api_key(session, acme.id, name="prometheus", scopes=["metrics"]).secret
    session.commit()
    with TestClient(create_app(settings, engine=engine, parts=("api",))) as client:
        assert client.get("/metrics").status_code == 401
        for project_key in (acme.read_key.secret, acme.ingest_key.secret):
            refused = client.get("/metrics", headers=auth(project_key))
            assert refused.status_code == 403 and "lacks the 'metrics' scope" in refused.text
        assert client.get("/metrics", headers=auth(metrics_key)).status_code == 200
    public = settings.model_copy(update={"metrics_public": True})
    with TestClient(create_app(public, engine=engine, parts=("api",))) as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_scope_can_be_created_and_the_bootstrap_key_has_it():
    assert security.parse_scopes("metrics") == ["metrics"]
    assert security.parse_scopes("ingest,metrics") == ["ingest", "metrics"]
    assert "metrics" in security.SCOPES  # server/bootstrap.py gives the first key every scope
    with pytest.raises(ValueError, match="metrics"):
        security.parse_scopes("admin")


def test_api_reference_is_for_readers_only(settings, engine, session, acme, client):
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 401
    assert client.get("/openapi.json", headers=auth(acme.ingest_key.secret)).status_code == 403
    spec = client.get("/openapi.json", headers=auth(acme.read_key.secret))
    assert spec.status_code == 200 and "/api/traces" in spec.json()["paths"]
    docs = client.get("/docs", headers=auth(acme.read_key.secret))
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    public = settings.model_copy(update={"docs_public": True})
    with TestClient(create_app(public, engine=engine, parts=("api",))) as open_client:
        assert open_client.get("/openapi.json").status_code == 200
        assert open_client.get("/docs").status_code == 200


def test_trace_detail_is_capped_and_says_so(settings, engine, session, acme):
    trace = seed_agent_trace(session, acme.id)  # 8 spans, the root one first
    session.commit()
    capped = settings.model_copy(update={"max_trace_spans": 3})
    with TestClient(create_app(capped, engine=engine, parts=("api",))) as client:
        body = client.get(f"/api/traces/{trace.hex}", headers=auth(acme.read_key.secret)).json()
        assert len(body["spans"]) == 3 and body["truncated"] is True
        assert body["trace"]["span_count"] == 8 and body["trace"]["status"] == "error"
        starts = [int(s["start_ns"]) for s in body["spans"]]
        assert starts == sorted(starts)
    with TestClient(create_app(settings, engine=engine, parts=("api",))) as client:
        body = client.get(f"/api/traces/{trace.hex}", headers=auth(acme.read_key.secret)).json()
        assert len(body["spans"]) == 8 and body["truncated"] is False
