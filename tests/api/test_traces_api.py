"""GET /api/traces and /api/traces/{id} against a real, freshly migrated PostgreSQL."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from db.queries.auth import add_membership, create_user, create_user_session, revoke_key
from db.queries.traces import InvalidCursor, decode_cursor, encode_cursor
from server.app import create_app
from tests.api.seed import (
    BASE_TIME, XSS, link, make_span, seed_agent_trace, seed_project, seed_simple_traces, store,
)


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def acme(session):
    project = seed_project(session, "acme")
    session.commit()
    return project


def test_list_summarizes_the_rollup(client, session, acme):
    trace = seed_agent_trace(session, acme.id)
    session.commit()
    body = client.get("/api/traces", headers=auth(acme.read_key.secret)).json()
    assert body["next_cursor"] is None
    [t] = body["traces"]
    assert t["trace_id"] == trace.hex and t["root_span_id"] == trace.spans["agent"].hex()
    assert t["root_name"] == "invoke_agent triage" and t["status"] == "error"
    assert (t["span_count"], t["error_count"], t["llm_calls"], t["unpriced_calls"]) == (8, 1, 3, 2)
    assert t["cost_usd"] == "0.0081"  # exact decimal string, unpriced calls counted apart
    assert t["tokens"] == {"input": 1600, "output": 400, "cache_read": 800, "cache_write": 0, "reasoning": 0}
    assert t["agents"] == ["billing", "triage"] and t["duration_ms"] == 4200.0
    assert t["start"] == "2026-11-20T12:00:00Z" and t["html_url"] == f"/traces/{trace.hex}"


def test_filters(client, session, acme):
    agent_trace = seed_agent_trace(session, acme.id)  # error, support-api, triage/billing, 12:00
    early = seed_simple_traces(session, acme.id, 3, service="batch", agent="cron", model="gpt-4o-mini",
                               base=BASE_TIME - timedelta(hours=1))  # ok
    unset_id = os.urandom(16)
    store(session, [make_span(acme.id, unset_id, name="plain", start_ms=0, duration_ms=5,
                              base=BASE_TIME + timedelta(hours=1), service_name="web")])
    session.commit()

    def ids(**params) -> set[str]:
        response = client.get("/api/traces", params=params, headers=auth(acme.read_key.secret))
        assert response.status_code == 200, response.text
        return {t["trace_id"] for t in response.json()["traces"]}

    everything = {agent_trace.hex, unset_id.hex(), *(t.hex() for t in early)}
    assert ids() == everything
    assert ids(status="error") == {agent_trace.hex}
    assert ids(status="ok") == {t.hex() for t in early}
    assert ids(status="unset") == {unset_id.hex()}
    assert ids(service="batch") == {t.hex() for t in early}
    assert ids(service="support-api") == {agent_trace.hex}
    assert ids(agent="billing") == {agent_trace.hex}
    assert ids(model="local-llama") == {agent_trace.hex}
    assert ids(model="gpt-4o-mini", agent="cron") == {t.hex() for t in early}
    assert ids(model="nope") == set()
    assert ids(since="2026-11-20T12:00:00Z") == {agent_trace.hex, unset_id.hex()}
    assert ids(until="2026-11-20T12:00:00+00:00") == {t.hex() for t in early}
    # No offset means UTC; 13:00 in Paris is 12:00 UTC.
    assert ids(since="2026-11-20T12:30", until="2026-11-20T14:00+01:00") == set()
    assert ids(since="2026-11-20T12:30", until="2026-11-20T15:00+01:00") == {unset_id.hex()}
    assert ids(service="") == everything  # an empty form field is no filter


@pytest.mark.parametrize("status_filter", [None, "error"])
def test_cursor_pagination_has_no_duplicates_or_gaps(client, session, acme, status_filter):
    # Triples of traces share a start time, so pages must break ties by trace_id.
    seed_simple_traces(session, acme.id, 37, ties=3, error_every=2)
    session.commit()
    params = {"limit": 4, **({"status": status_filter} if status_filter else {})}
    complete = client.get("/api/traces", params={**params, "limit": 500}, headers=auth(acme.read_key.secret)).json()
    assert complete["next_cursor"] is None
    expected = [t["trace_id"] for t in complete["traces"]]
    assert len(expected) == (19 if status_filter else 37)

    seen, cursor, pages = [], None, 0
    while True:
        response = client.get("/api/traces", params={**params, **({"cursor": cursor} if cursor else {})},
                              headers=auth(acme.read_key.secret))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["traces"]) <= 4
        seen += [t["trace_id"] for t in body["traces"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected  # same order, nothing twice, nothing skipped
    assert pages == -(-len(expected) // 4)
    starts = [t["start"] for t in complete["traces"]]
    assert starts == sorted(starts, reverse=True)


def test_cursor_round_trip_and_tampering():
    trace_id = bytes(range(16))
    cursor = encode_cursor(BASE_TIME + timedelta(microseconds=7), trace_id)
    assert decode_cursor(cursor) == (BASE_TIME + timedelta(microseconds=7), trace_id)
    assert all(c.isalnum() or c in "-_" for c in cursor)  # url-safe, no padding
    for bad in ("", "abc", cursor[:-2], "!!!!", cursor + "AAAA"):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_project_isolation(client, session, acme):
    other = seed_project(session, "other")
    a_trace = seed_agent_trace(session, acme.id)
    b_trace = seed_agent_trace(session, other.id)
    session.commit()
    listed = client.get("/api/traces", headers=auth(other.read_key.secret)).json()["traces"]
    assert [t["trace_id"] for t in listed] == [b_trace.hex]
    response = client.get(f"/api/traces/{a_trace.hex}", headers=auth(other.read_key.secret))
    assert response.status_code == 404
    assert response.json() == {"detail": f"trace {a_trace.hex} not found in this project"}
    assert client.get(f"/api/traces/{a_trace.hex}", headers=auth(acme.read_key.secret)).status_code == 200
    # Filters cannot widen the scope either.
    assert client.get("/api/traces", params={"agent": "triage", "limit": 500},
                      headers=auth(other.read_key.secret)).json()["traces"][0]["trace_id"] == b_trace.hex


def test_auth_failures_say_what_was_wrong(client, session, acme):
    revoked = seed_project(session, "gone").read_key
    revoke_key(session, revoked.prefix)
    session.commit()
    cases = [
        ({}, 401, "no credentials"),
        (auth("cl_not_a_real_key"), 401, "unknown or revoked API key"),
        ({"x-causeline-key": "cl_not_a_real_key"}, 401, "unknown or revoked API key"),
        (auth(revoked.secret), 401, "unknown or revoked API key"),
        ({"Authorization": f"Basic {acme.read_key.secret}"}, 401, "must be 'Bearer <api key>'"),
        ({"Authorization": "Bearer "}, 401, "no key"),
        ({"x-causeline-key": " "}, 401, "x-causeline-key header is empty"),
        ({"Cookie": "causeline_session=forged"}, 401, "log in again"),
        (auth(acme.ingest_key.secret), 403, "lacks the 'read' scope (it has: ingest)"),
    ]
    for headers, status, message in cases:
        response = client.get("/api/traces", headers=headers)
        assert response.status_code == status, (headers, response.text)
        assert message in response.json()["detail"], (headers, response.json())
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/traces", headers={"x-causeline-key": acme.read_key.secret}).status_code == 200
    # Authentication comes before validation: bad input from strangers learns nothing.
    assert client.get("/api/traces/not-hex").status_code == 401


def test_ui_session_cookie_reads_the_users_project(client, session, acme):
    trace = seed_agent_trace(session, acme.id)
    user = create_user(session, "ops@example.com", "pw-123456")
    add_membership(session, user.id, acme.id)
    loner = create_user(session, "loner@example.com", "pw-123456")
    session.commit()
    token = create_user_session(session, user.id, days=1)
    loner_token = create_user_session(session, loner.id, days=1)
    session.commit()
    client.cookies.set("causeline_session", token)
    assert [t["trace_id"] for t in client.get("/api/traces").json()["traces"]] == [trace.hex]
    client.cookies.set("causeline_session", loner_token)
    response = client.get("/api/traces")
    assert response.status_code == 403 and "not a member of any project" in response.json()["detail"]


def test_auth_disabled_serves_the_init_project(engine, settings, session):
    app = create_app(settings.model_copy(update={"auth_disabled": True, "init_project": "main"}),
                     engine=engine, parts=("api",))
    with TestClient(app) as open_client:
        response = open_client.get("/api/traces")
        assert response.status_code == 503 and "'main' does not exist" in response.json()["detail"]
        project = seed_project(session, "main")
        trace = seed_agent_trace(session, project.id)
        session.commit()
        assert [t["trace_id"] for t in open_client.get("/api/traces").json()["traces"]] == [trace.hex]


def test_trace_detail(client, session, acme):
    trace = seed_agent_trace(session, acme.id)
    # A later trace that was caused by our failed call: its edge points into our trace.
    follow_up, caused = os.urandom(16), os.urandom(8)
    store(session, [make_span(acme.id, follow_up, span_id=caused, name="retry job", start_ms=9000,
                              duration_ms=10, links=[link(trace.trace_id, trace.spans["llm"], "caused_by")])])
    session.commit()

    response = client.get(f"/api/traces/{trace.hex.upper()}", headers=auth(acme.read_key.secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["trace"]["trace_id"] == trace.hex and body["trace"]["status"] == "error"
    spans = body["spans"]
    assert len(spans) == 8
    assert [int(s["start_ns"]) for s in spans] == sorted(int(s["start_ns"]) for s in spans)
    by_id = {s["span_id"]: s for s in spans}

    failed = by_id[trace.spans["llm"].hex()]
    assert failed["status"] == "error" and failed["error_class"] == "timeout"
    assert failed["status_message"] == "Request timed out after 2.0s"
    assert failed["cost_usd"] is None and failed["cost_source"] == "unpriced"
    assert failed["parent_span_id"] == trace.spans["route"].hex()
    assert failed["events"][0]["name"] == "exception"
    assert failed["tokens"]["input"] is None  # not reported is not 0

    fallback = by_id[trace.spans["fallback"].hex()]
    assert fallback["input"].endswith(XSS)  # JSON carries content verbatim; escaping is the page's job
    assert fallback["cost_usd"] == "0.0081" and fallback["cost_source"] == "genai-prices 0.0.30"
    assert fallback["tokens"] == {"input": 1200, "output": 310, "cache_read": 800, "cache_write": None,
                                  "reasoning": None}
    assert fallback["response_model"] == "claude-sonnet-4-20250514" and fallback["provider"] == "anthropic"
    assert fallback["duration_ms"] == 560.0 and fallback["duration_ns"] == 560_000_000
    assert int(fallback["end_ns"]) - int(fallback["start_ns"]) == fallback["duration_ns"]
    assert fallback["start"] == "2026-11-20T12:00:02.020000Z"
    assert fallback["links"][0]["relation"] == "fallback_of"
    expected_keys = {
        "trace_id", "span_id", "parent_span_id", "name", "otel_kind", "category", "operation", "status",
        "status_message", "error_type", "error_class", "provider", "request_model", "response_model", "tokens",
        "cost_usd", "cost_source", "reported_cost_usd", "agent_name", "tool_name", "service_name", "session_id",
        "user_id", "start", "start_ns", "end_ns", "duration_ns", "duration_ms", "attributes", "events", "links",
        "resource", "scope", "input", "output", "duplicate_of", "duplicate_reason", "not_counted",
    }
    assert set(fallback) == expected_keys
    assert (fallback["duplicate_of"], fallback["duplicate_reason"], fallback["not_counted"]) == (None, None, None)

    edges = {(e["relation"], e["span_id"], e["linked_span_id"]) for e in body["edges"]}
    assert ("fallback_of", trace.spans["fallback"].hex(), trace.spans["llm"].hex()) in edges
    assert ("data_from", trace.spans["tool"].hex(), trace.spans["fallback"].hex()) in edges
    assert ("handoff_from", trace.spans["handoff"].hex(), trace.spans["agent"].hex()) in edges
    assert ("parent", trace.spans["llm"].hex(), trace.spans["route"].hex()) in edges
    incoming = [e for e in body["edges"] if e["trace_id"] == follow_up.hex()]
    assert incoming == [{"relation": "caused_by", "trace_id": follow_up.hex(), "span_id": caused.hex(),
                         "linked_trace_id": trace.hex, "linked_span_id": trace.spans["llm"].hex()}]
    assert len(body["edges"]) == 7 + 3 + 1  # 7 parent edges, 3 links, 1 incoming


@pytest.mark.parametrize("bad", ["xyz", "0" * 31, "0" * 33, "g" * 32, "%20" + "0" * 32])
def test_trace_id_must_be_32_hex(client, acme, bad):
    response = client.get(f"/api/traces/{bad}", headers=auth(acme.read_key.secret))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["path", "trace_id"] and "32 hexadecimal characters" in error["msg"]


def test_unknown_trace_is_404(client, acme):
    response = client.get(f"/api/traces/{'ab' * 16}", headers=auth(acme.read_key.secret))
    assert response.status_code == 404 and response.json()["detail"] == f"trace {'ab' * 16} not found in this project"


@pytest.mark.parametrize("params, field, message", [
    ({"limit": 0}, "limit", "greater than or equal to 1"),
    ({"limit": 501}, "limit", "less than or equal to 500"),
    ({"status": "failed"}, "status", "'ok', 'error' or 'unset'"),
    ({"cursor": "garbage"}, "cursor", "invalid cursor"),
    ({"since": "yesterday"}, "since", "valid datetime"),
    ({"since": "2026-11-20T12:00Z", "until": "2026-11-20T11:00Z"}, "until", "until must be later than since"),
])
def test_invalid_parameters_are_422_with_a_message(client, acme, params, field, message):
    response = client.get("/api/traces", params=params, headers=auth(acme.read_key.secret))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field] and message in error["msg"]


def test_openapi_documents_the_endpoints(client, acme):
    spec = client.get("/openapi.json", headers=auth(acme.read_key.secret)).json()
    listing = spec["paths"]["/api/traces"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"since", "until", "status", "service", "agent", "model",
                                                        "limit", "cursor"}
    assert {"200", "401", "403", "422"} <= set(listing["responses"])
    assert "404" in spec["paths"]["/api/traces/{trace_id}"]["get"]["responses"]
    assert {"TraceList", "TraceSummary", "SpanOut", "EdgeOut", "TraceDetailOut"} <= set(spec["components"]["schemas"])
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader", "APIKeyCookie"}
    assert "string" in str(spec["components"]["schemas"]["SpanOut"]["properties"]["cost_usd"])
