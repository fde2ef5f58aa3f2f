"""core.replay: the request rebuilt from captured input of every convention; refused, with the
reason, when nothing was captured, the content was erased, redacted or truncated."""

from __future__ import annotations

import json

import pytest

from core.replay import MAX_MODELS, ReplayRefused, parse_models, replay_request

GENAI = json.dumps([{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "content": "Where is order 7?"}]}])
SDK_TOOLS = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Refund 7"}]},
                        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup",
                                                         "arguments": {"id": 7}}]},
                        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "ok"}]}])
OPENINFERENCE = json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
OPENAI_BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})


@pytest.mark.parametrize("captured, attributes, messages, dropped", [
    (GENAI, {}, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order 7?"}], False),
    (OPENINFERENCE, {}, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], False),
    (OPENAI_BODY, {}, [{"role": "user", "content": "Hi"}], False),
    ("plain question?", {}, [{"role": "user", "content": "plain question?"}], False),
    (SDK_TOOLS, {}, [{"role": "user", "content": "Refund 7"}], True),
    # GenAI system instructions live apart: put first
    (json.dumps([{"role": "user", "content": "Hi"}]),
     {"gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a shop assistant."}])},
     [{"role": "system", "content": "You are a shop assistant."}, {"role": "user", "content": "Hi"}], False),
    (GENAI, {"gen_ai.system_instructions": "ignored: the messages have one"},
     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order 7?"}], False),
])
def test_rebuilt(captured, attributes, messages, dropped):
    request = replay_request(captured, attributes)
    assert request.messages == messages and request.dropped_parts is dropped


@pytest.mark.parametrize("captured, attributes, reason", [
    (None, {}, "not captured"),
    ("   ", {}, "not captured"),
    (None, {"causeline.erased": True}, "erased"),
    ("Hi", {"causeline.erased": True}, "erased"),
    ("Refund me at [REDACTED_EMAIL]", {}, "redacted"),
    ("Card [REDACTED:iban] please", {}, "redacted"),
    ("Hi", {"gen_ai.system_instructions": "Key [REDACTED_API_KEY]"}, "redacted"),
    ("a long prompt…[truncated 1200 chars]", {}, "truncated"),
    (json.dumps([{"role": "assistant", "content": "only an answer"}]), {}, "no user message"),
])
def test_refused(captured, attributes, reason):
    with pytest.raises(ReplayRefused, match=reason):
        replay_request(captured, attributes)


@pytest.mark.parametrize("value, expected", [
    (8192, 8192), (None, 1024), ("800", 1024), (True, 1024), (0, 1024), (10**9, 1024)])
def test_max_tokens_from_the_captured_request(value, expected):
    assert replay_request("Hi", {"gen_ai.request.max_tokens": value}).max_tokens == expected


def test_parse_models():
    assert parse_models(" gpt-4o-mini, claude-haiku-4-5 ,,gpt-4o-mini") == ["gpt-4o-mini", "claude-haiku-4-5"]
    assert parse_models("") == []
    assert len(parse_models(",".join(f"m{i}" for i in range(20)))) == MAX_MODELS
