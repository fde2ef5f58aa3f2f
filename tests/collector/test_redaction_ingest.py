"""Redaction at ingest: nothing personal reaches storage; per-project rules apply (core/redaction.py)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text

from core.redaction import REDACTIONS_ATTR
from db.queries.redaction import add_pattern, set_enabled
from tests import otlp_payloads as P

CARD = "4111 1111 1111 1111"


def _post(collector, attributes: dict, event_attributes: dict | None = None,
          message: str = "refused for bob@example.com") -> bytes:
    tid = P.trace_id()
    span = P.span(tid, P.span_id(), name="chat gpt-4o", status=2, message=message,
                  attributes=P.llm_attrs("gpt-4o", **attributes))
    if event_attributes:
        span.events.add(name="gen_ai.user.message", time_unix_nano=P.BASE_NS).attributes.extend(P.attrs(event_attributes))
    response = httpx.post(collector.traces_endpoint, content=P.request([span]).SerializeToString(),
                          headers={"content-type": "application/x-protobuf", **collector.auth()})
    assert response.status_code == 200, response.text
    return tid


def _row(collector, tid: bytes):
    with collector.engine.connect() as conn:
        return conn.execute(text("select input, output, status_message, user_id, attributes, events::text as events "
                                 "from spans where trace_id = :t"), {"t": tid}).one()


def test_default_redacts_everything_before_storage(collector):
    tid = _post(collector, {
        "input.value": f"I am bob@example.com, card {CARD}", "output.value": "call +44 20 7946 0958",
        "user.id": "u-42", "tags": ["ok", "AKIAIOSFODNN7EXAMPLE"],
    }, {"content": "Bearer abcdefghijklmnop"})
    row = _row(collector, tid)
    stored = json.dumps([row.input, row.output, row.status_message, row.attributes]) + row.events
    for secret in ("bob@example.com", CARD, "7946 0958", "AKIAIOSFODNN7EXAMPLE", "abcdefghijklmnop"):
        assert secret not in stored
    assert "[REDACTED_EMAIL]" in row.input and "[REDACTED_CARD]" in row.input
    assert row.attributes["tags"] == ["ok", "[REDACTED_API_KEY]"]
    assert row.user_id == "u-42"  # identifiers are kept: erasure finds the subject by them
    # input (e-mail, card) and output (phone) twice each: in input/output and in their source
    # attributes; then the tag, the event and the status message
    assert row.attributes[REDACTIONS_ATTR] == 2 * (2 + 1) + 1 + 1 + 1


def test_project_rules_apply(collector, sessionmaker):
    with sessionmaker.begin() as session:
        set_enabled(session, collector.project_id, "email", False)
        add_pattern(session, collector.project_id, "badge", r"EMP-\d{6}")
    tid = _post(collector, {"input.value": "bob@example.com has badge EMP-123456"}, message="")
    row = _row(collector, tid)
    assert row.input == "bob@example.com has badge [REDACTED:badge]"
    assert row.attributes[REDACTIONS_ATTR] == 2


def test_nothing_to_redact_adds_no_count(collector):
    row = _row(collector, _post(collector, {"input.value": "hello"}, message="error"))
    assert row.input == "hello" and REDACTIONS_ATTR not in row.attributes


def test_log_record_content_is_redacted(collector):
    trace_hex, span_hex = "7b8efff798038103d269b633813fc60d", "00000000000000b2"
    body = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1700000000000000000", "traceId": trace_hex, "spanId": span_hex,
        "eventName": "gen_ai.user.message",
        "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "I am bob@example.com"}}]}},
    }]}]}]}
    response = httpx.post(f"{collector.url}/v1/logs", json=body, headers=collector.auth())
    assert response.status_code == 200, response.text
    with collector.engine.connect() as conn:
        stored = conn.execute(text("select input::text from genai_log_records")).scalar_one()
    assert "bob@example.com" not in stored and "[REDACTED_EMAIL]" in stored
