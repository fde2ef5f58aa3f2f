"""Auto-instrumentation choices that need no client installed: one span per model
call (litellm's duplicate of a client-recorded call is not sent), litellm's raw
request dumps treated as content, statuses and version checks.
The real clients are exercised in test_sdk_openai.py and test_sdk_clean_venv_clients.py."""

from __future__ import annotations

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from sdk_helpers import HOST_PROVIDER

import causeline
from causeline import instrumentations
from causeline.export import Duplicates


def _model_span(scope: str, name: str, attributes: dict, tracer_provider=HOST_PROVIDER, root: bool = False):
    tracer = tracer_provider.get_tracer(scope)
    # root: a new trace whatever the ambient context
    with tracer.start_as_current_span(name, context=Context() if root else None, attributes=attributes) as span:
        pass
    return span


CALL = {"gen_ai.operation.name": "chat", "gen_ai.response.id": "chatcmpl-1", "gen_ai.usage.input_tokens": 21}


def test_litellm_span_of_a_call_the_client_recorded_is_not_sent(rec):
    before = causeline.stats()
    with causeline.agent_run("caller"):
        _model_span("opentelemetry.util.genai.handler", "chat gpt-4o-mini", CALL)  # the OpenAI instrumentation
        _model_span("litellm", "litellm_request", CALL)  # litellm's callback, reporting the same response
        _model_span("litellm", "litellm_request", {**CALL, "gen_ai.response.id": "chatcmpl-2"})  # another call
    names = [s.name for s in rec.spans()]
    assert sorted(names) == ["chat gpt-4o-mini", "invoke_agent caller", "litellm_request"]
    after = causeline.stats()
    assert after["spans_deduplicated"] - before["spans_deduplicated"] == 1
    assert after["spans_ended"] - before["spans_ended"] == 4
    assert after["spans_ended"] == sum(after[k] for k in ("spans_exported", "spans_failed", "spans_dropped", "spans_queued"))


def test_duplicates_need_the_same_trace_and_the_client_span_first():
    provider = TracerProvider()
    dups = Duplicates(max_entries=2)
    client = _model_span("opentelemetry.util.genai.handler", "chat", CALL, provider, root=True)
    other_trace = _model_span("litellm", "litellm_request", CALL, provider, root=True)  # another trace
    assert dups.is_duplicate(client) is False
    assert dups.is_duplicate(other_trace) is False
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", context=Context()):
        first_litellm = _model_span("litellm", "litellm_request", CALL, provider)
        then_client = _model_span("opentelemetry.util.genai.handler", "chat", CALL, provider)
    assert dups.is_duplicate(first_litellm) is False  # nothing seen yet in this trace: kept
    assert dups.is_duplicate(then_client) is False
    no_id = _model_span("litellm", "litellm_request", {"gen_ai.operation.name": "chat"}, provider)
    assert dups.is_duplicate(no_id) is False
    for i in range(5):  # bounded
        dups.is_duplicate(_model_span("x", "chat", {**CALL, "gen_ai.response.id": f"r{i}"}, provider))
        assert len(dups._seen) <= 2


RAW = {"llm.openai.messages": "[{'role': 'user', 'content': 'mail eve@corp.example'}]", "llm.openai.model": "gpt-4o"}


def test_litellm_raw_request_dump_is_content(rec):
    _model_span("litellm", "raw_gen_ai_request", RAW)
    assert dict(rec.one("raw_gen_ai_request").attributes) == {}


def test_litellm_raw_request_dump_is_redacted_with_capture(rec_content):
    _model_span("litellm", "raw_gen_ai_request", RAW)
    attrs = rec_content.one("raw_gen_ai_request").attributes
    assert "eve@corp.example" not in attrs["llm.openai.messages"]
    assert "[REDACTED_EMAIL]" in attrs["llm.openai.messages"]


@pytest.mark.parametrize(
    ("version", "parsed"),
    [("2.15.0", (2, 15, 0)), ("1.14.0", (1, 14, 0)), ("1.13.0", (1, 13, 0)), ("0.125.0", (0, 125, 0)),
     ("1.14.0rc1", (1, 14, 0)), ("2.0.0.post1", (2, 0, 0)), ("dev", ())],
)
def test_version_tuple(version, parsed):
    assert instrumentations._version_tuple(version) == parsed


def test_statuses_without_the_clients(monkeypatch):
    monkeypatch.setattr(instrumentations, "_installed", lambda module: False)
    got = instrumentations.enable(frozenset({"anthropic", "gemini", "litellm", "nope"}), HOST_PROVIDER, False)
    assert got == {"anthropic": "missing", "google_genai": "missing", "litellm": "missing", "nope": "unknown"}


def test_litellm_is_not_imported_by_auto_instrumentation(monkeypatch):
    # Importing litellm can take many seconds; only a named request imports it.
    monkeypatch.setattr(instrumentations, "_installed", lambda module: module == "litellm")
    monkeypatch.delitem(__import__("sys").modules, "litellm", raising=False)
    got = instrumentations.enable(True, HOST_PROVIDER, False)
    assert got["litellm"] == "not imported"


def test_old_anthropic_clients_fail_with_the_reason(monkeypatch):
    monkeypatch.setattr(instrumentations, "_installed", lambda module: module == "anthropic")
    monkeypatch.setattr(instrumentations.importlib.metadata, "version", lambda name: "1.13.0")
    monkeypatch.setattr(instrumentations._internal, "raise_internal_errors", False)
    got = instrumentations.enable(frozenset({"anthropic"}), HOST_PROVIDER, False)
    assert got["anthropic"].startswith("failed: RuntimeError: anthropic 1.13.0 emits no OpenTelemetry spans")
    monkeypatch.setattr(instrumentations.importlib.metadata, "version", lambda name: "2.15.0")
    assert instrumentations.enable(frozenset({"anthropic"}), HOST_PROVIDER, False) == {"anthropic": "enabled"}
    monkeypatch.setenv(instrumentations.ANTHROPIC_TRACES_ENV, "false")
    assert instrumentations.enable(frozenset({"anthropic"}), HOST_PROVIDER, False) == {
        "anthropic": "disabled by ANTHROPIC_OPEN_TELEMETRY=false"
    }
