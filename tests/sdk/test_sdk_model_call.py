"""causeline.model_call: attributes, usage, responses, streaming, retries and fallbacks."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sdk_helpers import link_types, parent_id

import causeline


def test_model_call_attributes_usage_and_response(rec):
    with causeline.agent_run("writer"):
        with causeline.model_call("openai", "gpt-4o", temperature=0.2, max_tokens=256, top_p=0.9) as call:
            call.record_usage(input_tokens=1200, output_tokens=300, cache_read=1000, cache_write=50, reasoning=120)
            call.record_response(model="gpt-4o-2024-08-06", finish_reasons=["stop"], id="resp-1", output="hi")
    span = rec.one("chat gpt-4o")
    a = span.attributes
    assert span.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in a  # only the current convention name
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.max_tokens"] == 256
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.usage.input_tokens"] == 1200
    assert a["gen_ai.usage.output_tokens"] == 300
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_write.input_tokens"] == 50
    assert a["gen_ai.usage.reasoning.output_tokens"] == 120
    assert a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["gen_ai.response.id"] == "resp-1"
    assert a["gen_ai.agent.name"] == "writer"
    assert "gen_ai.output.messages" not in a  # capture off
    assert parent_id(span) == rec.one("invoke_agent writer").context.span_id
    assert (call.provider, call.model) == ("openai", "gpt-4o")


def test_usage_partial_and_latest_wins(rec):
    with causeline.model_call("anthropic", "claude-sonnet-4-5") as call:
        call.record_usage(input_tokens=10)
        call.record_usage(input_tokens=12, output_tokens=3)
    a = rec.one("chat claude-sonnet-4-5").attributes
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 3
    assert "gen_ai.usage.cache_read.input_tokens" not in a


def test_content_capture_messages(rec_content):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My key is sk-proj-abcdefghijklmnopqrstuvwxyz012345"},
    ]
    with causeline.model_call("openai", "gpt-4o-mini", input=messages, system_instructions="Be brief.") as call:
        call.record_response(finish_reasons="stop", output="Call me at alice@example.org")
    a = rec_content.one("chat gpt-4o-mini").attributes
    inp = json.loads(a["gen_ai.input.messages"])
    assert inp[0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
    assert inp[1]["parts"][0]["content"] == "My key is [REDACTED_API_KEY]"
    out = json.loads(a["gen_ai.output.messages"])
    assert out == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Call me at [REDACTED_EMAIL]"}],
            "finish_reason": "stop",
        }
    ]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]


def test_tool_call_messages_are_normalized(rec_content):
    msgs = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q":"x"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
    ]
    with causeline.model_call("openai", "gpt-4o", input=msgs):
        pass
    inp = json.loads(rec_content.one("chat gpt-4o").attributes["gen_ai.input.messages"])
    assert inp[0]["parts"] == [{"type": "tool_call", "id": "c1", "name": "search", "arguments": '{"q":"x"}'}]
    assert inp[1]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "result"}]


def test_model_call_error_with_http_status(rec):
    class RateLimitError(Exception):
        status_code = 429

    with pytest.raises(RateLimitError):
        with causeline.model_call("openai", "gpt-4o"):
            raise RateLimitError("Rate limit reached for gpt-4o")
    span = rec.one("chat gpt-4o")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 429
    assert span.attributes["error.type"].endswith("RateLimitError")


def test_retry_and_fallback_links_with_attempts(rec):
    with causeline.agent_run("resilient"):
        with pytest.raises(TimeoutError):
            with causeline.model_call("openai", "gpt-4o", attempt=1) as first:
                raise TimeoutError("read timeout")
        try:
            with causeline.model_call("openai", "gpt-4o", retry_of=first) as second:
                raise ConnectionError("reset")
        except ConnectionError:
            pass
        with causeline.model_call("anthropic", "claude-sonnet-4-5", links=[causeline.fallback(of=second)]) as third:
            third.record_usage(input_tokens=5, output_tokens=5)
    assert (first.attempt, second.attempt, third.attempt) == (1, 2, 3)
    spans = {s.context.span_id: s for s in rec.named("chat gpt-4o")}
    s1 = spans[first.span.get_span_context().span_id]
    s2 = spans[second.span.get_span_context().span_id]
    s3 = rec.one("chat claude-sonnet-4-5")
    assert s1.attributes["causeline.attempt"] == 1
    assert s2.attributes["causeline.attempt"] == 2
    assert s3.attributes["causeline.attempt"] == 3
    assert link_types(s2) == [("retry_of", s1.context.span_id)]
    assert link_types(s3) == [("fallback_of", s2.context.span_id)]
    assert s3.status.status_code == StatusCode.UNSET


def test_explicit_attempt_wins(rec):
    with causeline.model_call("openai", "gpt-4o") as a:
        pass
    with causeline.model_call("openai", "gpt-4o-mini", fallback_of=a, attempt=7):
        pass
    assert rec.one("chat gpt-4o-mini").attributes["causeline.attempt"] == 7


def test_streaming_sync(rec_content):
    def provider_stream():
        yield "Hel"
        yield "lo"

    with causeline.agent_run("streamer"):
        with causeline.model_call("openai", "gpt-4o", stream=True) as call:
            stream = call.stream(provider_stream())
        # the span stays open while the caller consumes the stream outside the block
        assert call.span.is_recording()
        assert "".join(stream) == "Hello"
    assert not call.span.is_recording()
    a = rec_content.one("chat gpt-4o").attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hello"


def test_streaming_async_with_failure(rec):
    async def provider_stream():
        yield {"delta": "a"}
        raise ConnectionError("stream cut")

    async def main():
        async with causeline.model_call("openai", "gpt-4o") as call:
            chunks = []
            with pytest.raises(ConnectionError):
                async for chunk in call.stream(provider_stream()):
                    chunks.append(chunk)
                    call.record_usage(output_tokens=len(chunks))
        return chunks

    assert asyncio.run(main()) == [{"delta": "a"}]
    span = rec.one("chat gpt-4o")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["gen_ai.usage.output_tokens"] == 1
    assert "gen_ai.output.messages" not in span.attributes


def test_stream_closed_early_is_not_an_error(rec):
    with causeline.model_call("openai", "gpt-4o") as call:
        stream = call.stream(iter(range(100)))
        assert next(stream) == 0
        stream.close()
    span = rec.one("chat gpt-4o")
    assert span.status.status_code == StatusCode.UNSET
    assert span.end_time is not None


def test_custom_operation_and_extra_attributes(rec):
    with causeline.model_call("openai", "text-embedding-3-small", operation="embeddings", attributes={"app.batch": 4}):
        pass
    span = rec.one("embeddings text-embedding-3-small")
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["app.batch"] == 4


def test_stream_never_iterated_still_ends_the_span(rec):
    import gc

    def handler():
        with causeline.model_call("openai", "gpt-4o", stream=True) as call:
            stream = call.stream(iter(["a", "b"]))
        assert call.span.is_recording()
        return call, stream

    call, stream = handler()
    del stream  # e.g. the client went away before the response was read
    gc.collect()
    assert not call.span.is_recording()
    assert rec.one("chat gpt-4o").status.status_code == StatusCode.UNSET


def test_streamed_output_text_is_capped(start_causeline):
    from causeline import spans

    rec = start_causeline(capture_content=True, max_content_length=100)
    with causeline.model_call("openai", "gpt-4o") as call:
        stream = call.stream("y" * 1000 for _ in range(1000))
        for _ in stream:
            assert call._text_len <= 100 + spans._STREAM_TEXT_MARGIN
    assert call._text_len == 100 + spans._STREAM_TEXT_MARGIN
    content = json.loads(rec.one("chat gpt-4o").attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert content.startswith("y" * 100 + "…[truncated")
