"""The real openai-v2 instrumentation, capturing content as events only, sends prompts and completions
as a GenAI log event (gen_ai.client.inference.operation.details): through the real SDK exporters they
become the model-call span's input and output, which the span itself does not carry."""

from __future__ import annotations

import http.server
import json
import threading

import httpx
import pytest
from sqlalchemy import text
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

openai = pytest.importorskip("openai")
openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1763700000, "model": "gpt-4o-mini-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 42."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
}


class FakeOpenAI:
    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                out = json.dumps(COMPLETION).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_openai_v2_events_become_the_chat_spans_content(collector, monkeypatch):
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    fake = FakeOpenAI()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=collector.traces_endpoint, headers=collector.auth())))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"{collector.url}/v1/logs", headers=collector.auth())))
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 6 x 7?"}])
    finally:
        instrumentor.uninstrument()
        fake.close()
        tracer_provider.shutdown()
        logger_provider.shutdown()

    with collector.engine.connect() as conn:
        trace_id = conn.execute(text("select trace_id from spans where name = 'chat gpt-4o-mini'")).scalar_one()
        events = conn.execute(text("select event_name from genai_log_records order by time_ns, seq")).scalars().all()
    assert events == ["gen_ai.client.inference.operation.details"]
    response = httpx.get(f"{collector.url}/api/traces/{trace_id.hex()}", headers=collector.auth(), timeout=30)
    [chat] = response.json()["spans"]
    assert "gen_ai.input.messages" not in chat["attributes"]  # the content came only as a log event
    messages_in, messages_out = json.loads(chat["input"]), json.loads(chat["output"])
    assert "Answer briefly." in chat["input"] and "What is 6 x 7?" in chat["input"]
    assert messages_in[-1]["role"] == "user"
    assert messages_out[0]["role"] == "assistant" and "The answer is 42." in chat["output"]
