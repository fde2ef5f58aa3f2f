"""OpenTelemetry GenAI evaluation results (`gen_ai.evaluation.result`) become scores: sent as log
records by the real SDK exporter through the real collector, or as OTLP/JSON records."""

from __future__ import annotations

import httpx

from tests.collector.test_ingest_http import count
from tests.collector.test_logs_http import SPAN, TRACE, post_logs, providers, record


def scores(collector, trace_hex: str) -> list[dict]:
    response = httpx.get(f"{collector.url}/api/scores", params={"trace_id": trace_hex},
                         headers=collector.auth(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["scores"]


def test_sdk_evaluation_events_become_scores_of_their_span(collector):
    tracer_provider, logger_provider = providers(collector)
    tracer = tracer_provider.get_tracer("tests")
    logger = logger_provider.get_logger("tests")
    with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}) as span:
        logger.emit(event_name="gen_ai.evaluation.result", attributes={
            "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.75,
            "gen_ai.evaluation.score.label": "relevant", "gen_ai.evaluation.explanation": "answers the question"})
        logger.emit(event_name="gen_ai.evaluation.result", attributes={
            "gen_ai.evaluation.name": "groundedness", "gen_ai.evaluation.score.label": "fail"})
        logger.emit(event_name="gen_ai.evaluation.result", attributes={"gen_ai.evaluation.score.value": 1.0})
    assert logger_provider.force_flush(10_000) and tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    trace_hex = format(span.get_span_context().trace_id, "032x")
    span_hex = format(span.get_span_context().span_id, "016x")
    got = {s["name"]: s for s in scores(collector, trace_hex)}
    assert set(got) == {"relevance", "groundedness"}  # the nameless one is refused
    relevance = got["relevance"]
    assert (relevance["span_id"], relevance["value"], relevance["label"], relevance["source"], relevance["comment"],
            relevance["data_type"]) == (span_hex, 0.75, "relevant", "otel", "answers the question", "numeric")
    assert (got["groundedness"]["data_type"], got["groundedness"]["label"], got["groundedness"]["value"]) == (
        "categorical", "fail", None)


def evaluation(name: str | None, value: float | None = None, label: str | None = None, **extra) -> dict:
    attributes = [{"key": "gen_ai.evaluation.name", "value": {"stringValue": name}}] if name else []
    if value is not None:
        attributes.append({"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": value}})
    if label is not None:
        attributes.append({"key": "gen_ai.evaluation.score.label", "value": {"stringValue": label}})
    return record("gen_ai.evaluation.result", attributes=attributes, **extra)


def test_json_evaluation_records_redelivered_and_refused(collector):
    batch = [evaluation("helpfulness", 4.0), evaluation("tone", label="polite", span=""),
             evaluation(None, 1.0), evaluation("empty"), evaluation("orphan", 1.0, trace="", span="")]
    for attempt in range(2):  # the exporter retries: the second delivery adds nothing
        response = post_logs(collector, batch)
        assert response.status_code == 200, response.text
        partial = response.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "3"
        assert "without gen_ai.evaluation.name" in partial["errorMessage"]
        assert "neither gen_ai.evaluation.score.value nor .score.label" in partial["errorMessage"]
        assert "no trace to attach it to" in partial["errorMessage"]
    assert count(collector, "select count(*) from scores") == 2
    got = {s["name"]: s for s in scores(collector, TRACE)}
    assert got["helpfulness"]["span_id"] == SPAN and got["helpfulness"]["value"] == 4.0
    assert got["tone"]["span_id"] is None  # no span: a score of the whole run
