"""auto_instrument with a real ``openai`` client against a fake OpenAI-compatible
server on loopback: the model-call span carries provider, model and token usage
and nests under the calling agent.

Also guards the pinned ``causeline[openai]`` extra: on 2026-11-21
opentelemetry-instrumentation-openai-v2 2.4b0 failed to import with
opentelemetry-util-genai 1.2b0/1.3b0; the instrumentation must import and
enable with whatever is installed here.
"""

from __future__ import annotations

import asyncio
import http.server
import importlib.metadata
import json
import threading
import tomllib
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sdk_helpers import parent_id

import causeline

openai = pytest.importorskip("openai", reason="install causeline[openai] for this test")

SDK_PYPROJECT = Path(__file__).resolve().parents[2] / "sdk" / "pyproject.toml"


class FakeOpenAI:
    """POST /v1/chat/completions -> a fixed completion with usage; model 'fail-*' -> 429."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                fake.bodies.append(body)
                if body["model"].startswith("fail"):
                    status, payload = 429, {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
                else:
                    status, payload = (
                        200,
                        {
                            "id": "chatcmpl-test-1",
                            "object": "chat.completion",
                            "created": 1763700000,
                            "model": body["model"] + "-2024-08-06",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": "The answer is 42."},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
                        },
                    )
                out = json.dumps(payload).encode()
                self.send_response(status)
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


@pytest.fixture
def fake_openai():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def test_openai_instrumentation_imports_with_installed_versions():
    # Fails loudly on the next incompatible opentelemetry-util-genai release.
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    assert OpenAIInstrumentor().instrumentation_dependencies()


def test_installed_versions_match_the_pinned_extra():
    extra = tomllib.loads(SDK_PYPROJECT.read_text())["project"]["optional-dependencies"]["openai"]
    pins = dict(req.split("==") for req in extra if "==" in req)
    assert pins, "the openai extra should pin its instrumentation packages"
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, f"{name}: pinned {version}"


def test_chat_completion_becomes_a_model_call_span_under_the_agent(start_causeline, fake_openai):
    rec = start_causeline(auto_instrument=["openai"])
    assert causeline.stats()["instrumentations"]["openai"] == "enabled"
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)

    @causeline.agent("answerer")
    def answerer(question):
        with causeline.step("draft"):
            response = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
            )
        return response.choices[0].message.content

    assert answerer("What is 6 x 7?") == "The answer is 42."
    chat = rec.one("chat gpt-4o-mini")
    a = chat.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
    assert a["gen_ai.usage.input_tokens"] == 21
    assert a["gen_ai.usage.output_tokens"] == 7
    assert chat.kind == SpanKind.CLIENT
    assert "gen_ai.input.messages" not in a  # content capture is off
    step = rec.one("invoke_workflow draft")
    assert parent_id(chat) == step.context.span_id
    assert parent_id(step) == rec.one("invoke_agent answerer").context.span_id
    assert chat.context.trace_id == step.context.trace_id


def test_async_client_and_errors(start_causeline, fake_openai):
    rec = start_causeline(auto_instrument=["openai"])
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)

    async def main():
        async with causeline.agent_run("async-answerer"):
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model="fail-model", messages=[{"role": "user", "content": "x"}])
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "y"}])

    asyncio.run(main())
    agent = rec.one("invoke_agent async-answerer")
    failed = rec.one("chat fail-model")
    ok = rec.one("chat gpt-4o")
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"]
    assert ok.attributes["gen_ai.usage.input_tokens"] == 21
    assert parent_id(failed) == parent_id(ok) == agent.context.span_id


def test_content_capture_goes_through_redaction(start_causeline, fake_openai, monkeypatch):
    # recorded by monkeypatch, so the value init() sets is undone after the test
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    rec = start_causeline(auto_instrument=["openai"], capture_content=True)
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    with causeline.agent_run("capturer"):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "my email is zed@corp.example"}]
        )
    a = rec.one("chat gpt-4o").attributes
    assert "zed@corp.example" not in a["gen_ai.input.messages"]
    assert "[REDACTED_EMAIL]" in a["gen_ai.input.messages"]
    assert "The answer is 42." in a["gen_ai.output.messages"]
