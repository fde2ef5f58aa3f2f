"""One chat-completions call to an OpenAI-compatible endpoint, with what it cost.

Every failure becomes a `JudgeError` with a short reason and a kind (`timeout`, `http`,
`garbage`, `not_configured`), so callers record it as an error, never as a verdict. The endpoint is
configured by the operator (often a model server on the private network), so it is not subject to
the alert channels' public-address rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import httpx2
import orjson

from core.pricing import price_call
from core.settings import Settings

MAX_REPLY_BYTES = 4 * 1024 * 1024  # a reply beyond this is refused, not parsed


class JudgeError(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    text: str
    model: str  # the model that answered (the endpoint's `model` field, else the one asked)
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None  # None: unpriced (unknown model or no usage reported)
    latency_ms: float
    finish_reason: str | None


@dataclass(frozen=True)
class ModelEndpoint:
    base_url: str
    api_key: str | None = None
    provider: str | None = None
    timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelEndpoint | None":
        """The configured endpoint, or None when none is (then nothing may be sent anywhere)."""
        if not settings.judge_base_url:
            return None
        key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
        return cls(settings.judge_base_url.rstrip("/"), key, settings.judge_provider or None, settings.judge_timeout_s)

    def complete(self, messages: list[dict], *, model: str, max_tokens: int = 1024, temperature: float = 0.0,
                 json_reply: bool = False) -> Reply:
        """Ask `model`; raises JudgeError. `json_reply` asks for a JSON object (response_format), which
        servers that do not support it ignore: callers parse defensively either way."""
        if not model:
            raise JudgeError("not_configured", "no model given (CAUSELINE_JUDGE_MODEL)")
        body: dict = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if json_reply:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json", "User-Agent": "causeline-judge"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        started_ns = time.time_ns()
        started = time.perf_counter()
        try:
            response = httpx2.post(f"{self.base_url}/chat/completions", content=orjson.dumps(body), headers=headers,
                                   timeout=self.timeout_s, follow_redirects=False)
        except httpx2.TimeoutException:
            raise JudgeError("timeout", f"no answer within {self.timeout_s:g} s") from None
        except httpx2.HTTPError as exc:
            raise JudgeError("http", f"{type(exc).__name__}: {exc}"[:300]) from None
        latency_ms = (time.perf_counter() - started) * 1000
        if not 200 <= response.status_code < 300:
            raise JudgeError("http", f"HTTP {response.status_code}")
        if len(response.content) > MAX_REPLY_BYTES:
            raise JudgeError("garbage", f"reply of {len(response.content)} bytes (limit {MAX_REPLY_BYTES})")
        return _reply(response.content, model, self.provider, started_ns, latency_ms)


def _reply(content: bytes, asked: str, provider: str | None, started_ns: int, latency_ms: float) -> Reply:
    try:
        data = orjson.loads(content)
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        raise JudgeError("garbage", f"not a chat completion: {content[:120]!r}") from None
    if not isinstance(text, str):
        raise JudgeError("garbage", "the reply has no text content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    served = data.get("model") if isinstance(data.get("model"), str) and data.get("model") else asked
    finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
    cost = price_call(provider, served, input_tokens, output_tokens, started_ns)
    if cost is None and served != asked:
        cost = price_call(provider, asked, input_tokens, output_tokens, started_ns)
    return Reply(text, served, input_tokens, output_tokens, cost, latency_ms, finish)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
