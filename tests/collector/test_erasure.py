"""`causeline erase` and `causeline redaction` against a real database, on spans ingested over OTLP."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text

from server.cli import main
from tests import otlp_payloads as P


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CAUSELINE_INIT_PROJECT", "acme")
    return main


def _ingest_run(collector, user: str, secret: str) -> bytes:
    """A root agent span carrying the user id, and a model call beneath it with the content but no id."""
    tid, root = P.trace_id(), P.span_id()
    spans = [
        P.span(tid, root, name="invoke_agent helper", attributes={
            "gen_ai.operation.name": "invoke_agent", "user.id": user, "session.id": f"s-{user}",
            "input.value": f"question from {user}: {secret}"}),
        P.span(tid, P.span_id(), parent=root, name="chat gpt-4o", status=2, message="rate limited",
               attributes=P.llm_attrs("gpt-4o", 1000, 50, **{"gen_ai.input.messages": json.dumps(
                   [{"role": "user", "parts": [{"type": "text", "content": secret}]}]), "output.value": secret})),
    ]
    spans[1].events.add(name="gen_ai.choice", time_unix_nano=P.BASE_NS).attributes.extend(P.attrs({"message": secret}))
    response = httpx.post(collector.traces_endpoint, content=P.request(spans).SerializeToString(),
                          headers={"content-type": "application/x-protobuf", **collector.auth()})
    assert response.status_code == 200, response.text
    with collector.engine.begin() as conn:
        conn.execute(text("INSERT INTO genai_log_records (project_id, trace_id, span_id, record_key, time_ns, seq, "
                          "event_name, input, output) VALUES (:p, :t, :s, '\\x01', 1, 0, 'gen_ai.user.message', "
                          ":i, NULL)"), {"p": collector.project_id, "t": tid, "s": root,
                                         "i": json.dumps([{"content": secret}])})
    return tid


def _spans(collector, tid: bytes):
    with collector.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM spans WHERE trace_id = :t ORDER BY start_ns, name"), {"t": tid}).all()


def test_erase_by_user_keeps_the_skeleton(collector, cli, capsys):
    bob = _ingest_run(collector, "bob", "bob's diagnosis is XYZ")
    ann = _ingest_run(collector, "ann", "ann's plans")
    before = {r.span_id: r for r in _spans(collector, bob)}
    assert any(r.input for r in before.values())

    assert cli(["erase", "--user-id", "bob", "--project", "acme"]) == 0
    assert "erased the content of 2 spans in 1 traces and 1 GenAI log records" in capsys.readouterr().out

    after = _spans(collector, bob)
    dumped = json.dumps([[str(v) for v in r] for r in after])
    assert "XYZ" not in dumped and "bob" not in dumped.replace("bob's", "")  # neither content nor the id
    for row in after:
        old = before[row.span_id]
        assert row.input is None and row.output is None
        assert row.attributes["causeline.erased"] is True
        assert row.user_id is None or row.user_id.startswith("erased:")
        # the skeleton: timings, tokens, costs, status and errors
        for column in ("name", "start_ns", "duration_ns", "status", "status_message", "error_class", "input_tokens",
                       "output_tokens", "cost_usd", "request_model", "category"):
            assert getattr(row, column) == getattr(old, column), column
    chat = next(r for r in after if r.name == "chat gpt-4o")
    assert chat.events == [{"name": "gen_ai.choice", "time_ns": P.BASE_NS, "attributes": {}}]
    assert "gen_ai.input.messages" not in chat.attributes and chat.attributes["gen_ai.request.model"] == "gpt-4o"
    root = next(r for r in after if r.name == "invoke_agent helper")
    assert root.user_id.startswith("erased:") and root.attributes["user.id"] == root.user_id
    assert root.session_id.startswith("erased:") and root.attributes["session.id"] == root.session_id

    with collector.engine.connect() as conn:
        trace = conn.execute(text("SELECT user_id, session_id FROM traces WHERE trace_id = :t"), {"t": bob}).one()
        logs = {r.trace_id: r.count for r in conn.execute(text(
            "SELECT trace_id, count(*) FROM genai_log_records GROUP BY trace_id"))}
        audit = conn.execute(text("SELECT action, target, details::text AS details FROM audit_events "
                                  "WHERE action = 'data.erase'")).one()
    assert trace.user_id == root.user_id and trace.session_id == root.session_id
    assert logs == {ann: 1}
    assert (audit.action, audit.target) == ("data.erase", "user_id")
    assert json.loads(audit.details) == {"by": "user_id", "traces": 1, "spans": 2, "log_records": 1}
    assert "bob" not in audit.details

    # The other subject is untouched, and erasing again finds nothing (the id is gone).
    assert all(r.input is None or "ann" in r.input for r in _spans(collector, ann))
    assert any(r.user_id == "ann" for r in _spans(collector, ann))
    assert cli(["erase", "--user-id", "bob"]) == 0
    assert "erased the content of 0 spans in 0 traces" in capsys.readouterr().out
    assert cli(["audit", "verify"]) == 0


def test_erase_by_session(collector, cli, capsys):
    tid = _ingest_run(collector, "carol", "carol's secret")
    assert cli(["erase", "--session-id", "s-carol"]) == 0
    assert all(r.input is None and r.output is None for r in _spans(collector, tid))
    assert cli(["erase", "--session-id", "x", "--project", "nope"]) == 1


def test_legal_hold_stops_erasure_until_overridden(collector, cli, capsys):
    tid = _ingest_run(collector, "dave", "dave's contract terms")
    assert cli(["retention", "hold", "--project", "acme", "--reason", "litigation 2026-17"]) == 0
    capsys.readouterr()
    assert cli(["erase", "--user-id", "dave"]) == 3
    err = capsys.readouterr().err
    assert "'acme' is on legal hold" in err and "--despite-legal-hold" in err
    assert any(r.input and "contract" in r.input for r in _spans(collector, tid))

    assert cli(["erase", "--user-id", "dave", "--despite-legal-hold"]) == 0
    assert all(r.input is None and r.output is None for r in _spans(collector, tid))
    with collector.engine.connect() as conn:
        events = conn.execute(text("SELECT outcome, details::text AS details FROM audit_events "
                                   "WHERE action = 'data.erase' ORDER BY seq")).all()
    assert [(e.outcome, json.loads(e.details).get("reason"), json.loads(e.details).get("despite_legal_hold"))
            for e in events] == [("refused", "legal hold", None), ("ok", None, True)]
    assert cli(["audit", "verify"]) == 0


def test_redaction_cli_changes_are_applied_and_audited(collector, cli, capsys):
    assert cli(["redaction", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"on   {name}" in listed for name in ("email", "phone", "card", "iban", "api_key", "jwt"))
    assert cli(["redaction", "add-pattern", "badge", r"EMP-\d{6}"]) == 0
    assert cli(["redaction", "add-pattern", "bad", "(?<=x)y"]) == 2
    assert "invalid pattern" in capsys.readouterr().err
    assert cli(["redaction", "disable", "email"]) == 0
    assert cli(["redaction", "disable", "nosuch"]) == 1
    assert cli(["redaction", "list"]) == 0
    listed = capsys.readouterr().out
    assert "off  email" in listed and "on   badge" in listed and r"pattern EMP-\d{6}" in listed

    tid = P.trace_id()
    span = P.span(tid, P.span_id(), attributes={"input.value": "bob@example.com EMP-123456"})
    assert httpx.post(collector.traces_endpoint, content=P.request([span]).SerializeToString(),
                      headers={"content-type": "application/x-protobuf", **collector.auth()}).status_code == 200
    assert _spans(collector, tid)[0].input == "bob@example.com [REDACTED:badge]"

    assert cli(["redaction", "enable", "email"]) == 0
    assert cli(["redaction", "remove-pattern", "badge"]) == 0
    assert cli(["redaction", "remove-pattern", "badge"]) == 1
    with collector.engine.connect() as conn:
        actions = [tuple(r) for r in conn.execute(text("SELECT action, target FROM audit_events ORDER BY seq"))]
        rules = conn.execute(text("SELECT count(*) FROM redaction_rules")).scalar_one()
    assert actions == [("redaction.add_pattern", "badge"), ("redaction.disable", "email"),
                       ("redaction.enable", "email"), ("redaction.remove_pattern", "badge")]
    assert rules == 0  # back to the default
