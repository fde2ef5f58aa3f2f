"""Ambiguous OTLP bodies over real HTTP: refused with the conflict named, nothing stored in silence."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text

from tests.collector.test_ingest_http import count

TRACE = "6b8efff798038103d269b633813fc60c"


def span(i: int, **changes) -> dict:
    return {"traceId": TRACE, "spanId": f"{i:016x}", "name": f"s{i}", "startTimeUnixNano": "1763800000000000000",
            "endTimeUnixNano": "1763800000500000000", **changes}


def resource_spans(service: str, *spans: dict) -> dict:
    return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"spans": list(spans)}]}


def post_json(collector, body: str) -> httpx.Response:
    return httpx.post(collector.traces_endpoint, content=body.encode(),
                      headers={"content-type": "application/json", **collector.auth()}, timeout=30)


@pytest.mark.parametrize("body,conflict", [
    (json.dumps({"resourceSpans": [resource_spans("a", span(1))], "resource_spans": [resource_spans("b", span(2))]}),
     "both 'resourceSpans' and 'resource_spans'"),
    (json.dumps({"resourceSpans": [{**resource_spans("a", span(1)), "scope_spans": [{"spans": [span(2)]}]}]}),
     "both 'scopeSpans' and 'scope_spans'"),
    ('{"resourceSpans": [%s], "resourceSpans": [%s]}'
     % (json.dumps(resource_spans("a", span(1))), json.dumps(resource_spans("b", span(2)))),
     "key 'resourceSpans' appears twice"),
], ids=["resourceSpans-and-resource_spans", "scopeSpans-and-scope_spans", "duplicate-key"])
def test_ambiguous_json_is_400_and_stores_nothing(collector, body, conflict):
    response = post_json(collector, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3 and conflict in response.json()["message"]
    assert count(collector, "select count(*) from spans") == 0


def test_unknown_enum_name_is_reported_in_partial_success(collector):
    body = json.dumps({"resourceSpans": [resource_spans("a", span(1, kind="NOPE"), span(2, kind="SPAN_KIND_SERVER"))]})
    response = post_json(collector, body)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "kind 'NOPE' is not a SpanKind name" in partial["errorMessage"]
    with collector.engine.connect() as conn:
        rows = conn.execute(text("select name, kind from spans")).all()
    assert [tuple(r) for r in rows] == [("s2", 2)]
