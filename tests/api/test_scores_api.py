"""POST/GET /api/scores and /api/scores/summary against a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.seed import seed_agent_trace, seed_project


def _yesterday() -> str:
    return (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def acme(session):
    project = seed_project(session, "acme")
    session.commit()
    return project


def test_scores_are_stored_once_and_listed(client, session, acme):
    trace = seed_agent_trace(session, acme.id)
    session.commit()
    scores = [
        {"trace_id": trace.hex, "span_id": trace.spans["fallback"].hex(), "name": "relevance", "value": 0.8,
         "comment": "mostly on topic"},
        {"trace_id": trace.hex, "name": "resolved", "value": True, "source": "reviewer", "id": "r-1"},
        {"trace_id": trace.hex.upper(), "name": "tone", "value": "polite"},
    ]
    first = client.post("/api/scores", json=scores, headers=auth(acme.ingest_key.secret))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 3, "stored": 3}
    # Redelivery (same content, or the same idempotency id with other content) stores nothing new.
    again = client.post("/api/scores", json=[*scores[:2], {**scores[1], "value": False}],
                        headers=auth(acme.ingest_key.secret))
    assert again.json() == {"received": 3, "stored": 0}
    listed = client.get("/api/scores", params={"trace_id": trace.hex}, headers=auth(acme.read_key.secret)).json()
    by_name = {s["name"]: s for s in listed["scores"]}
    assert set(by_name) == {"relevance", "resolved", "tone"}
    assert by_name["relevance"] | {"created_at": None} == {
        "trace_id": trace.hex, "span_id": trace.spans["fallback"].hex(), "name": "relevance", "data_type": "numeric",
        "value": 0.8, "label": None, "shown": "0.8", "source": "api", "comment": "mostly on topic", "created_at": None,
        "judge": None}
    assert (by_name["resolved"]["data_type"], by_name["resolved"]["value"], by_name["resolved"]["source"]) == (
        "boolean", 1.0, "reviewer")
    assert (by_name["tone"]["data_type"], by_name["tone"]["label"], by_name["tone"]["value"]) == (
        "categorical", "polite", None)


@pytest.mark.parametrize("body, message", [
    ({"trace_id": "ab", "name": "x", "value": 1}, "trace_id must be 32 hexadecimal characters"),
    ({"trace_id": "a" * 32, "name": "x", "value": [1]}, "value must be a number, a boolean or a string"),
    ({"trace_id": "a" * 32, "name": "x", "value": {"v": 1}}, "got an object"),
    ({"trace_id": "a" * 32, "name": "x"}, "value is required"),
    ({"trace_id": "a" * 32, "name": "", "value": 1}, "name must not be empty"),
    ({"trace_id": "a" * 32, "name": 5, "value": 1}, "name must be a string"),
    ({"trace_id": "a" * 32, "name": "x", "value": "good", "data_type": "numeric"}, "does not fit data_type"),
    ({"trace_id": "a" * 32, "name": "x", "value": 0.5, "data_type": "boolean"}, "does not fit data_type"),
    ({"trace_id": "a" * 32, "name": "x", "value": 1, "data_type": "percent"}, "data_type must be one of"),
    ({"trace_id": "a" * 32, "span_id": "zz", "name": "x", "value": 1}, "span_id must be 16 hexadecimal"),
    ({"trace_id": "a" * 32, "name": "x", "value": 1, "extra": 1}, "unknown field(s): extra"),
    ([{"trace_id": "a" * 32, "name": "x", "value": 1}, {"trace_id": "a" * 32, "name": "x", "value": None}],
     "scores[1]: value is required"),
    ([], "no scores"),
    ("just text", "must be a JSON object"),
])
def test_bad_scores_are_refused_with_a_message(client, acme, body, message):
    response = client.post("/api/scores", json=body, headers=auth(acme.ingest_key.secret))
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_non_json_and_non_finite_values_are_refused(client, acme):
    bad = client.post("/api/scores", content=b"{not json", headers={**auth(acme.ingest_key.secret),
                                                                     "content-type": "application/json"})
    assert bad.status_code == 400 and "must be JSON" in bad.json()["detail"]
    nan = client.post("/api/scores", content=b'{"trace_id": "' + b"a" * 32 + b'", "name": "x", "value": NaN}',
                      headers={**auth(acme.ingest_key.secret), "content-type": "application/json"})
    assert nan.status_code == 400 and "finite" in nan.json()["detail"]


def test_scores_never_cross_projects(client, session, acme):
    other = seed_project(session, "other")
    trace = seed_agent_trace(session, acme.id)
    session.commit()
    score = {"trace_id": trace.hex, "name": "relevance", "value": 0.9}
    assert client.post("/api/scores", json=score, headers=auth(other.ingest_key.secret)).json()["stored"] == 1
    # The other project's score on this trace id is its own: acme sees none of it, and its own
    # identical score is stored (keys are per project).
    assert client.get("/api/scores", headers=auth(acme.read_key.secret)).json() == {"scores": []}
    assert client.post("/api/scores", json=score, headers=auth(acme.ingest_key.secret)).json()["stored"] == 1
    summary = client.get("/api/scores/summary", params={"by": "model", "since": _yesterday()},
                         headers=auth(other.read_key.secret)).json()
    assert [(g["name"], g["count"]) for g in summary["groups"]] == [("relevance", 1)]
    # A read key may not write, an ingest key may not read.
    assert client.post("/api/scores", json=score, headers=auth(acme.read_key.secret)).status_code == 403
    assert client.get("/api/scores", headers=auth(acme.ingest_key.secret)).status_code == 403


def test_summary_groups_per_model_agent_and_day(client, session, acme):
    trace = seed_agent_trace(session, acme.id)
    session.commit()
    llm, fallback = trace.spans["llm"].hex(), trace.spans["fallback"].hex()
    client.post("/api/scores", headers=auth(acme.ingest_key.secret), json=[
        {"trace_id": trace.hex, "span_id": llm, "name": "relevance", "value": 0.2},
        {"trace_id": trace.hex, "span_id": fallback, "name": "relevance", "value": 0.9},
        {"trace_id": trace.hex, "span_id": fallback, "name": "relevance", "value": 0.7, "source": "second"},
        {"trace_id": trace.hex, "name": "relevance", "value": 1},
        {"trace_id": trace.hex, "span_id": fallback, "name": "verdict", "value": "pass"},
    ])
    params = {"since": _yesterday()}
    by_model = client.get("/api/scores/summary", params={**params, "by": "model"},
                          headers=auth(acme.read_key.secret)).json()["groups"]
    got = {(g["name"], g["group"]): (g["count"], g["mean"], g["labels"]) for g in by_model}
    assert got[("relevance", "gpt-4o")] == (1, 0.2, {})
    assert got[("relevance", "(trace)")] == (1, 1.0, {})
    fallback_model = next(k[1] for k in got if k[0] == "verdict")
    assert got[("relevance", fallback_model)][:2] == (2, pytest.approx(0.8))
    assert got[("verdict", fallback_model)] == (1, None, {"pass": 1})
    by_agent = client.get("/api/scores/summary", params={**params, "by": "agent"},
                          headers=auth(acme.read_key.secret)).json()["groups"]
    assert {(g["name"], g["group"], g["count"]) for g in by_agent} >= {("relevance", "triage", 3), ("relevance", "(trace)", 1)}
    by_day = client.get("/api/scores/summary", params={**params, "by": "day"},
                        headers=auth(acme.read_key.secret)).json()["groups"]
    assert sum(g["count"] for g in by_day if g["name"] == "relevance") == 4


def test_evaluator_rules_are_checked_saved_and_audited(client, session, acme):
    from db.queries.auth import add_membership, create_user, create_user_session

    admin = create_user(session, "admin@example.com", "pw")
    add_membership(session, admin.id, acme.id, "admin")
    cookie = create_user_session(session, admin.id, days=1)
    session.commit()
    client.cookies.set("causeline_session", cookie)
    # A login session's change must come from this site (the cookie alone is not enough).
    foreign = client.put("/api/evaluators/intent", json={"kind": "regex", "config": {"pattern": "x"}})
    assert foreign.status_code == 403 and "Origin" in foreign.json()["detail"]
    client.headers["origin"] = "http://testserver"
    bad = client.put("/api/evaluators/intent", json={"kind": "json_schema", "config": {"schema": {"type": 5}}})
    assert bad.status_code == 400 and "not a valid JSON Schema" in bad.json()["detail"]
    clash = client.put("/api/evaluators/json_valid", json={"kind": "regex", "config": {"pattern": "x"}})
    assert clash.status_code == 400 and "built-in" in clash.json()["detail"]
    good = client.put("/api/evaluators/intent", json={"kind": "json_schema", "config": {"schema": {"type": "object"}}})
    assert good.status_code == 200, good.text
    listed = client.get("/api/evaluators").json()
    assert listed["builtins"] == ["non_empty", "complete", "no_refusal", "json_valid"]
    assert [r["name"] for r in listed["rules"]] == ["intent"]
    assert client.delete("/api/evaluators/intent").status_code == 204
    assert client.delete("/api/evaluators/intent").status_code == 404
    actions = [a["action"] for a in client.get("/api/audit").json()["events"]]
    assert {"evaluator_rule.save", "evaluator_rule.delete"} <= set(actions)


def test_comments_are_redacted_and_erased_with_their_subject(client, session, acme):
    from db.models import Score
    from db.queries.erasure import erase_subject
    from sqlalchemy import select

    trace = seed_agent_trace(session, acme.id)  # its spans carry user id "user-7"
    session.commit()
    posted = client.post("/api/scores", headers=auth(acme.ingest_key.secret), json={
        "trace_id": trace.hex, "name": "tone", "value": "rude", "comment": "user ada@example.com was told off"})
    assert posted.status_code == 200
    [stored] = client.get("/api/scores", headers=auth(acme.read_key.secret)).json()["scores"]
    assert stored["comment"] == "user [REDACTED_EMAIL] was told off"
    erase_subject(session, user_id="user-7")
    session.commit()
    assert session.scalars(select(Score.comment)).all() == [None]


def test_a_scores_body_past_the_limit_is_a_413_read_no_further(client, acme):
    from api.scores import MAX_BODY_BYTES

    huge = b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]"
    refused = client.post("/api/scores", content=huge, headers={**auth(acme.ingest_key.secret),
                                                               "content-type": "application/json"})
    assert refused.status_code == 413 and str(MAX_BODY_BYTES) in refused.json()["detail"]
