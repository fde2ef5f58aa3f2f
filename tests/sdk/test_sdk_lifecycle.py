"""init / flush / shutdown, living beside the application's own OpenTelemetry
setup, the real OTLP exporter, and flushing at interpreter exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_helpers import HOST_EXPORTER, HOST_PROVIDER

import causeline
from causeline import _internal, lifecycle
from causeline.pipeline import CauselineSpanProcessor

ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSELINE_", "OTEL_"))}


def _processors(provider):
    return list(provider._active_span_processor._span_processors)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV_CLEAN, **env},
    )


def test_init_twice_adds_one_processor_and_keeps_the_applications(start_causeline):
    start_causeline()
    rec2 = start_causeline(service_name="again")
    procs = _processors(HOST_PROVIDER)
    assert sum(isinstance(p, CauselineSpanProcessor) for p in procs) == 1
    assert len(procs) == 2  # the application's SimpleSpanProcessor is still there
    with causeline.agent_run("once"):
        pass
    assert len(rec2.named("invoke_agent once")) == 1
    assert len([s for s in HOST_EXPORTER.get_finished_spans() if s.name == "invoke_agent once"]) == 1


def test_reinit_flushes_the_old_pipeline_and_switches(start_causeline):
    rec1 = start_causeline(schedule_delay_millis=60_000)
    with causeline.step("before"):
        pass
    rec2 = start_causeline()
    with causeline.step("after"):
        pass
    deadline = time.monotonic() + 5
    while not rec1.exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [s.name for s in rec1.exporter.get_finished_spans()] == ["invoke_workflow before"]
    assert [s.name for s in rec2.spans()] == ["invoke_workflow after"]


def test_stats_count_exports(rec):
    before = causeline.stats()
    for _ in range(5):
        with causeline.tool_call("t"):
            pass
    rec.spans()
    after = causeline.stats()
    assert after["initialized"] is True
    assert after["spans_ended"] - before["spans_ended"] == 5
    assert after["spans_exported"] - before["spans_exported"] == 5
    assert after["spans_queued"] == 0
    assert after["internal_errors"] == 0


def test_shutdown_stops_exporting_and_is_idempotent(start_causeline):
    rec = start_causeline()
    with causeline.step("kept"):
        pass
    causeline.shutdown()
    causeline.shutdown()
    with causeline.step("after-shutdown"):
        pass
    assert causeline.flush() is True
    assert [s.name for s in rec.exporter.get_finished_spans()] == ["invoke_workflow kept"]
    assert causeline.stats()["initialized"] is False


def test_disabled_init_exports_nothing(start_causeline):
    exporter = InMemorySpanExporter()
    assert causeline.init(enabled=False, exporter=exporter, tracer_provider=HOST_PROVIDER) is False
    with causeline.step("nothing"):
        pass
    causeline.flush()
    assert exporter.get_finished_spans() == ()


def test_init_never_raises_into_the_host(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("config exploded")

    monkeypatch.setattr(lifecycle, "resolve", broken)
    with pytest.raises(RuntimeError, match="config exploded"):  # surfaced in tests
        causeline.init()
    _internal.clear_errors()
    monkeypatch.setattr(_internal, "raise_internal_errors", False)
    assert causeline.init() is False  # ...but not for users
    assert _internal.error_count() == 1
    _internal.clear_errors()


def test_real_otlp_exporter_and_flush_at_exit(stub_collector):
    """No OpenTelemetry setup in the app: init creates and installs a provider;
    spans reach the collector over OTLP/HTTP (gzip, bearer key) at interpreter exit."""
    proc = _run(
        """
        import causeline
        from opentelemetry import trace
        assert causeline.init(service_name="exit-test", environment="ci", auto_instrument=False)
        provider = trace.get_tracer_provider()
        print(type(provider).__name__, provider.resource.attributes["service.name"])

        @causeline.agent("bye")
        def bye():
            with causeline.model_call("openai", "gpt-4o-mini") as call:
                call.record_usage(input_tokens=3, output_tokens=4)

        bye()
        # no flush/shutdown: the atexit hook must deliver the spans
        """,
        CAUSELINE_ENDPOINT=stub_collector.endpoint,
        CAUSELINE_API_KEY="cl_test_key",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["TracerProvider", "exit-test"]
    assert sorted(s.name for s in stub_collector.spans) == ["chat gpt-4o-mini", "invoke_agent bye"]
    req = stub_collector.requests[0]
    assert req["path"] == "/v1/traces"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["authorization"] == "Bearer cl_test_key"
    assert headers["content-encoding"] == "gzip"
    assert stub_collector.resources[0]["service.name"] == "exit-test"
    assert stub_collector.resources[0]["deployment.environment.name"] == "ci"
    chat = next(s for s in stub_collector.spans if s.name.startswith("chat"))
    attrs = {kv.key: kv.value for kv in chat.attributes}
    assert attrs["gen_ai.usage.output_tokens"].int_value == 4


def test_joins_a_global_provider_the_app_set_up_first(stub_collector):
    proc = _run(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import causeline

        mine = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "the-app"}))
        provider.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(provider)

        causeline.init(service_name="ignored", auto_instrument=False)
        causeline.init(service_name="ignored", auto_instrument=False)
        with trace.get_tracer("app").start_as_current_span("app-request"):
            with causeline.agent_run("inside"):
                pass
        causeline.shutdown()
        print(json.dumps({
            "same_provider": trace.get_tracer_provider() is provider,
            "processors": len(provider._active_span_processor._span_processors),
            "mine": sorted(s.name for s in mine.get_finished_spans()),
        }))
        """,
        CAUSELINE_ENDPOINT=stub_collector.endpoint,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"same_provider": True, "processors": 2, "mine": ["app-request", "invoke_agent inside"]}
    # Causeline exports the app's spans too (one trace), with the app's resource.
    assert sorted(s.name for s in stub_collector.spans) == ["app-request", "invoke_agent inside"]
    assert stub_collector.resources[0]["service.name"] == "the-app"


def test_flush_starts_no_threads(start_causeline):
    import threading

    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    release = threading.Event()

    class Hanging(SpanExporter):  # a collector that does not answer
        def export(self, spans):
            release.wait(10)
            return SpanExportResult.SUCCESS

        def shutdown(self):
            pass

    def causeline_threads():
        return [t for t in threading.enumerate() if t.name.startswith("causeline")]

    start_causeline(exporter=Hanging())
    try:
        with causeline.step_run("req"):
            pass
        results = [causeline.flush(timeout=0.001) for _ in range(50)]  # e.g. once per request
        assert not any(results)
        assert [t.name for t in causeline_threads()] == ["causeline-export"]  # the pipeline's one worker
    finally:
        release.set()
    assert causeline.flush(timeout=10)
