"""Never hurt the host: collector down, slow or refusing; a full queue; broken
SDK internals; content from other instrumentations."""

from __future__ import annotations

import json
import threading

import pytest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sdk_helpers import HOST_EXPORTER, HOST_PROVIDER, StubCollector, free_port

import causeline
from causeline import _internal
from causeline._state import STATE


def _burst(n: int) -> None:
    """n tool calls inside an agent run, made in a thread that must end: the exporters below fail or
    block until released, so an agent made to wait for them never would (the minute is only a hang
    detector, not a speed requirement)."""
    @causeline.tool("burst")
    def burst(i):
        return i

    done = threading.Event()

    def run() -> None:
        with causeline.agent_run("busy"):
            for i in range(n):
                burst(i)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "the agent was made to wait for the exporter"


def test_collector_down_agent_keeps_running(start_causeline):
    start_causeline(
        exporter=None,
        endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens here
        export_timeout=0.5,
        schedule_delay_millis=20,
        max_export_batch_size=64,
    )
    before = causeline.stats()
    _burst(500)  # the agent is never made to wait for the network
    causeline.flush(timeout=10)
    after = causeline.stats()
    assert after["spans_failed"] - before["spans_failed"] == 501
    assert after["export_failures"] > before["export_failures"]
    assert after["last_export_error"]
    assert after["spans_exported"] == before["spans_exported"]


def test_refusing_collector_is_retried_then_counted(start_causeline):
    stub = StubCollector(status=503)
    try:
        start_causeline(exporter=None, endpoint=stub.endpoint, export_timeout=1.6)
        before = causeline.stats()
        with causeline.step("s"):
            pass
        causeline.flush(timeout=10)
        after = causeline.stats()
        assert len(stub.requests) >= 2  # the exporter retried the 503
        assert after["spans_failed"] - before["spans_failed"] == 1
    finally:
        stub.close()


class BlockingExporter(SpanExporter):
    """Stands in for a collector that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported: list = []

    def export(self, spans):
        self.release.wait()  # until the test (or shutdown) releases it
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()


def test_slow_collector_bounded_queue_drops_and_counts(start_causeline):
    exporter = BlockingExporter()
    start_causeline(exporter=exporter, max_queue_size=20, max_export_batch_size=5, schedule_delay_millis=5)
    before = causeline.stats()
    _burst(299)  # 300 spans with the agent span, ended while the exporter is still stuck
    assert not exporter.release.is_set()
    mid = causeline.stats()
    dropped = mid["spans_dropped"] - before["spans_dropped"]
    assert mid["spans_queued"] <= 20 + 5  # the queue bound plus the batch the stuck worker holds
    assert dropped >= 300 - 20 - 5 * 2  # queue bound plus what the stuck worker holds
    exporter.release.set()
    assert causeline.flush(timeout=10)
    after = causeline.stats()
    ended = after["spans_ended"] - before["spans_ended"]
    assert ended == 300
    assert ended == (after["spans_exported"] - before["spans_exported"]) + (
        after["spans_dropped"] - before["spans_dropped"]
    )
    assert len(exporter.exported) == 300 - dropped


def test_exporter_that_raises_is_contained(start_causeline):
    class Exploding(SpanExporter):
        def export(self, spans):
            raise OSError("disk on fire")

    rec_before = causeline.stats()
    start_causeline(exporter=Exploding())
    with causeline.step("s"):
        pass
    causeline.flush()
    after = causeline.stats()
    assert after["spans_failed"] - rec_before["spans_failed"] == 1
    assert "disk on fire" in after["last_export_error"]


class BrokenTracer:
    def start_span(self, *args, **kwargs):
        raise RuntimeError("sdk bug")


def test_internal_errors_surface_in_tests_but_never_in_production(rec, monkeypatch):
    @causeline.tool("guarded")
    def guarded(x):
        return x * 2

    @causeline.agent("guarded-agent")
    async def guarded_async():
        return 1

    monkeypatch.setattr(STATE, "tracer", BrokenTracer())
    # The test fixture turns internal errors into exceptions so tests see them:
    with pytest.raises(RuntimeError, match="sdk bug"):
        guarded(1)
    _internal.clear_errors()

    # A user's application never sees them: the function just runs.
    monkeypatch.setattr(_internal, "raise_internal_errors", False)
    assert guarded(21) == 42
    import asyncio

    assert asyncio.run(guarded_async()) == 1
    with causeline.model_call("openai", "gpt-4o") as call:
        call.record_usage(input_tokens=1)
    with causeline.agent_run("x"), causeline.guardrail("g") as g:
        g.blocked("no")

    # ...and user exceptions still propagate unchanged.
    class Mine(Exception):
        pass

    @causeline.tool("raiser")
    def raiser():
        raise Mine("user error")

    with pytest.raises(Mine, match="user error"):
        raiser()
    with pytest.raises(Mine):
        with causeline.step("s"):
            raise Mine("in block")
    assert _internal.error_count() >= 5
    _internal.clear_errors()


def test_broken_processor_never_breaks_span_end(rec, monkeypatch):
    pipeline = STATE.slot.pipeline

    def boom(span):
        raise RuntimeError("processor bug")

    monkeypatch.setattr(pipeline, "on_end", boom)
    monkeypatch.setattr(_internal, "raise_internal_errors", False)
    with causeline.step("fine"):
        pass
    assert _internal.error_count() == 1
    _internal.clear_errors()


def _foreign_span(attributes, events=()):
    tracer = HOST_PROVIDER.get_tracer("opentelemetry.util.genai.handler")
    with tracer.start_as_current_span("chat gpt-4o", attributes=attributes) as span:
        for name, attrs in events:
            span.add_event(name, attrs)


MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "mail me: eve@corp.example"}]}])


def test_content_from_other_instrumentations_is_stripped_without_capture(rec):
    _foreign_span(
        {"gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": MESSAGES, "gen_ai.prompt.0.content": "hi"},
        events=[("gen_ai.content.prompt", {"gen_ai.prompt": "hi"}), ("other", {"k": 1})],
    )
    span = rec.one("chat gpt-4o")
    assert dict(span.attributes) == {"gen_ai.request.model": "gpt-4o"}
    assert [e.name for e in span.events] == ["other"]
    # the application's own pipeline still gets the original span, untouched
    (original,) = [s for s in HOST_EXPORTER.get_finished_spans() if s.name == "chat gpt-4o"]
    assert "gen_ai.input.messages" in original.attributes
    assert causeline.stats()["spans_filtered"] >= 1


def test_content_from_other_instrumentations_is_redacted_with_capture(rec_content):
    _foreign_span({"gen_ai.input.messages": MESSAGES, "input.value": "key sk-abcdefghijklmnopqrstu"})
    attrs = rec_content.one("chat gpt-4o").attributes
    assert json.loads(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == "mail me: [REDACTED_EMAIL]"
    assert attrs["input.value"] == "key [REDACTED_API_KEY]"


def test_spans_without_content_pass_through_unchanged(rec):
    _foreign_span({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 3})
    span = rec.one("chat gpt-4o")
    assert span.attributes["gen_ai.usage.input_tokens"] == 3
