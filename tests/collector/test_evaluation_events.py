"""OpenTelemetry GenAI evaluation results (`gen_ai.evaluation.result`) become scores: sent as log
records by the real SDK exporter through the real collector, or as OTLP/JSON records."""

from __future__ import annotations

import time

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy import text

from collector.evaluator import Evaluator
from db.queries.evaluation import save_rule
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


def stored(collector, spans: int) -> None:
    """Wait until the collector has stored `spans` spans. force_flush returns once the exporter has
    given up or succeeded; on a loaded machine a request can outlast the exporter's timeout and
    still commit after it (the minute is a hang detector, not a speed bound)."""
    deadline = time.monotonic() + 60
    while (n := count(collector, "SELECT count(*) FROM spans")) < spans:
        assert time.monotonic() < deadline, f"{n} of {spans} spans stored"
        time.sleep(0.05)


def sdk_spans(collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "support-api"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.traces_endpoint,
                                                                    headers=collector.auth())))
    return provider


def test_background_evaluator_scores_span_events_and_model_outputs(collector, sessionmaker):
    provider = sdk_spans(collector)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("invoke_agent triage", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}) as root:
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.output.type": "json",
                "gen_ai.response.finish_reasons": ["length"],
                "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", '
                                          '"content": "{\\"intent\\": \\"ref"}]}]'}) as truncated:
            truncated.add_event("gen_ai.evaluation.result", {
                "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.4})
        with tracer.start_as_current_span("chat claude", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4",
                "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", '
                                          '"content": "I\'m sorry, but I can\'t help with that."}]}]'}) as refused:
            pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    trace_hex = format(root.get_span_context().trace_id, "032x")
    with sessionmaker.begin() as session:
        save_rule(session, collector.project_id, "mentions-order", "regex", {"pattern": r"(?i)order"})
    evaluator = Evaluator(sessionmaker, delay=0)
    assert evaluator.run_once() == 1
    assert evaluator.run_once() == 0  # evaluated: not claimed again until new spans arrive
    got = {(s["span_id"], s["name"]): s for s in scores(collector, trace_hex)}
    t, r = format(truncated.get_span_context().span_id, "016x"), format(refused.get_span_context().span_id, "016x")
    assert got[(t, "relevance")]["source"] == "otel" and got[(t, "relevance")]["value"] == 0.4
    verdicts = {(span, name): s["label"] for (span, name), s in got.items() if s["source"] != "otel"}
    assert verdicts == {
        (t, "non_empty"): "pass", (t, "complete"): "fail", (t, "no_refusal"): "pass", (t, "json_valid"): "fail",
        (t, "mentions-order"): "fail",
        (r, "non_empty"): "pass", (r, "no_refusal"): "fail", (r, "mentions-order"): "fail",
    }
    assert "cut off" in got[(t, "complete")]["comment"]
    # Evaluating again (e.g. after a late span) replaces verdicts instead of adding to them.
    with sessionmaker.begin() as session:
        session.execute(text("UPDATE traces SET evaluated_at = NULL"))
    assert evaluator.run_once() == 1
    assert count(collector, "select count(*) from scores") == len(got)


def test_evaluators_can_be_switched_off(collector, sessionmaker):
    provider = sdk_spans(collector)
    with provider.get_tracer("tests").start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.output.messages": '[{"role": "assistant", "content": ""}]'}) as s:
        s.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "x", "gen_ai.evaluation.score.label": "ok"})
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert Evaluator(sessionmaker, delay=0, builtins=False).run_once() == 1
    assert [s["name"] for s in scores(collector, format(s.get_span_context().trace_id, "032x"))] == ["x"]


def test_evaluator_judges_content_that_came_as_log_events(collector, sessionmaker):
    tracer_provider, logger_provider = providers(collector)
    with tracer_provider.get_tracer("tests").start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}) as span:
        logger_provider.get_logger("tests").emit(event_name="gen_ai.choice", body={
            "index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Sorry, I can"}})
    assert logger_provider.force_flush(10_000) and tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    assert Evaluator(sessionmaker, delay=0).run_once() == 1
    got = {s["name"]: s["label"] for s in scores(collector, format(span.get_span_context().trace_id, "032x"))}
    assert got == {"non_empty": "pass", "complete": "fail", "no_refusal": "pass"}


def test_evaluation_spans_score_their_parent_or_the_span_they_name(collector, sessionmaker):
    provider = sdk_spans(collector)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}) as chat:
        with tracer.start_as_current_span("gen_ai.evaluation.result", attributes={
                "gen_ai.evaluation.name": "faithfulness", "gen_ai.evaluation.score.value": 0.25,
                "gen_ai.evaluation.source": "llm-judge", "gen_ai.evaluation.explanation": "unsupported claim"}):
            pass
    with tracer.start_as_current_span("gen_ai.evaluation.result", attributes={
            "gen_ai.evaluation.name": "quality", "gen_ai.evaluation.score.label": "good",
            "gen_ai.evaluation.trace_id": format(chat.get_span_context().trace_id, "032x")}):
        pass  # another trace, naming the run it scores
    assert provider.force_flush(10_000)
    provider.shutdown()
    stored(collector, 3)
    evaluator = Evaluator(sessionmaker, delay=0, builtins=False)
    assert evaluator.run_once() == 2
    with sessionmaker.begin() as session:
        session.execute(text("UPDATE traces SET evaluated_at = NULL"))
    assert evaluator.run_once() == 2  # evaluated again: still one score per evaluation span
    got = {s["name"]: s for s in scores(collector, format(chat.get_span_context().trace_id, "032x"))}
    assert set(got) == {"faithfulness", "quality"}
    chat_hex = format(chat.get_span_context().span_id, "016x")
    assert (got["faithfulness"]["span_id"], got["faithfulness"]["value"], got["faithfulness"]["source"],
            got["faithfulness"]["comment"]) == (chat_hex, 0.25, "llm-judge", "unsupported claim")
    assert got["quality"]["span_id"] is None and got["quality"]["label"] == "good"


def test_openinference_evaluator_spans_score_the_span_they_evaluate(collector, sessionmaker):
    provider = sdk_spans(collector)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("ChatCompletion", attributes={"openinference.span.kind": "LLM"}) as chat:
        with tracer.start_as_current_span("hallucination eval", attributes={
                "openinference.span.kind": "EVALUATOR",
                "metadata": '{"evaluator_name": "hallucination", "score": 0.0, "label": "factual"}',
                "output.value": "The answer only states what the context says."}):
            pass
        with tracer.start_as_current_span("QA correctness", attributes={
                "openinference.span.kind": "EVALUATOR", "output.value": '{"label": "incorrect"}'}):
            pass
        with tracer.start_as_current_span("empty eval", attributes={"openinference.span.kind": "EVALUATOR"}):
            pass  # no result: no score
    assert provider.force_flush(10_000)
    provider.shutdown()
    stored(collector, 4)
    assert Evaluator(sessionmaker, delay=0, builtins=False).run_once() == 1
    got = {s["name"]: s for s in scores(collector, format(chat.get_span_context().trace_id, "032x"))}
    chat_hex = format(chat.get_span_context().span_id, "016x")
    assert set(got) == {"hallucination", "QA correctness"}
    assert (got["hallucination"]["span_id"], got["hallucination"]["value"], got["hallucination"]["label"],
            got["hallucination"]["source"], got["hallucination"]["comment"]) == (
        chat_hex, 0.0, "factual", "openinference", "The answer only states what the context says.")
    assert got["QA correctness"]["label"] == "incorrect" and got["QA correctness"]["value"] is None


def test_log_content_fills_in_only_for_calls_without_output(collector, sessionmaker):
    # The pass reads the log records of the whole claimed trace: a call that has its own output
    # must be judged on it, not on records logged under it; the response format is an attribute.
    tracer_provider, logger_provider = providers(collector)
    tracer, logger = tracer_provider.get_tracer("tests"), logger_provider.get_logger("tests")
    with tracer.start_as_current_span("invoke_agent triage", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.output.messages": '[{"role": "assistant", "content": "Your order ships today."}]'}) as own:
            logger.emit(event_name="gen_ai.choice", body={
                "index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Sorry, I can"}})
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.openai.request.response_format": "json_object"}) as logged:
            logger.emit(event_name="gen_ai.choice", body={
                "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "not json"}})
    assert logger_provider.force_flush(10_000) and tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    assert Evaluator(sessionmaker, delay=0).run_once() == 1
    got = {(s["span_id"], s["name"]): s["label"]
           for s in scores(collector, format(own.get_span_context().trace_id, "032x"))}
    o, g = format(own.get_span_context().span_id, "016x"), format(logged.get_span_context().span_id, "016x")
    assert got == {
        (o, "non_empty"): "pass", (o, "complete"): "pass", (o, "no_refusal"): "pass",
        (g, "non_empty"): "pass", (g, "complete"): "pass", (g, "no_refusal"): "pass", (g, "json_valid"): "fail",
    }
