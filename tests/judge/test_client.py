"""judge/client.py against the fake OpenAI-compatible server: replies, costs and every failure kind."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.settings import Settings
from judge.client import JudgeError, ModelEndpoint
from tests.judge.fake_server import Raw, Sleep, Status, completion

ASK = [{"role": "user", "content": "Is the sky blue?"}]


def endpoint(server, **kw) -> ModelEndpoint:
    settings = Settings(judge_base_url=server.base_url + "/", judge_model="gpt-4o-mini", judge_provider="openai", **kw)
    found = ModelEndpoint.from_settings(settings)
    assert found is not None
    return found


def test_nothing_configured_means_no_endpoint():
    assert ModelEndpoint.from_settings(Settings(judge_base_url="")) is None


def test_reply_text_usage_and_cost(fake_model):
    server = fake_model(lambda request: completion("yes it is", request, model="gpt-4o-mini-2024-07-18"))
    reply = endpoint(server, judge_api_key="sk-test").complete(ASK, model="gpt-4o-mini", max_tokens=50, json_reply=True)
    assert reply.text == "yes it is"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert (reply.input_tokens, reply.output_tokens, reply.finish_reason) == (4, 3, "stop")
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert reply.cost_usd == Decimal("0.0000006000") + Decimal("0.0000018000")
    sent = server.requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["messages"] == ASK and sent["max_tokens"] == 50
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_unknown_model_is_unpriced_not_free(fake_model):
    server = fake_model(lambda request: completion("fine", request, model="house-model-7b"))
    reply = endpoint(server).complete(ASK, model="house-model-7b")
    assert reply.cost_usd is None and reply.input_tokens == 4
    assert "authorization" not in server.headers[0]


@pytest.mark.parametrize(("answer", "kind"), [
    (Status(500), "http"),
    (Status(429), "http"),
    (Raw(b"<html>gateway</html>"), "garbage"),
    (Raw(b'{"choices": []}'), "garbage"),
    (Raw(b'{"choices": [{"message": {"content": null}}]}'), "garbage"),
    (Sleep(2.0), "timeout"),
])
def test_failures_are_errors_never_verdicts(fake_model, answer, kind):
    server = fake_model(lambda request: answer)
    with pytest.raises(JudgeError) as caught:
        endpoint(server, judge_timeout_s=0.3).complete(ASK, model="gpt-4o-mini")
    assert caught.value.kind == kind


def test_unreachable_endpoint_is_an_http_error():
    dead = ModelEndpoint("http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(JudgeError) as caught:
        dead.complete(ASK, model="m")
    assert caught.value.kind == "http"


def test_no_model_is_refused_before_sending(fake_model):
    server = fake_model(lambda request: "x")
    with pytest.raises(JudgeError) as caught:
        endpoint(server).complete(ASK, model="")
    assert caught.value.kind == "not_configured" and server.requests == []
