"""core.errors: the error taxonomy as a table of signals → class."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import KEYWORD_RULES, ErrorVerdict, classify_error
from core.span import ERROR_CLASSES

# (signals, expected class). Signals are classify_error keyword arguments.
CLASSIFICATION: dict[str, tuple[dict[str, Any], str]] = {
    # error.type
    "error.type timeout": (dict(error_type="timeout"), "timeout"),
    "error.type TimeoutError": (dict(error_type="TimeoutError"), "timeout"),
    "error.type RateLimitError": (dict(error_type="openai.RateLimitError"), "rate_limited"),
    "error.type bare 429": (dict(error_type="429"), "rate_limited"),
    "error.type bare 503": (dict(error_type="503"), "provider_unavailable"),
    "error.type bare 401": (dict(error_type="401"), "auth_failed"),
    "error.type _OTHER says nothing": (dict(error_type="_OTHER"), "unknown"),
    "error.type AuthenticationError": (dict(error_type="openai.AuthenticationError"), "auth_failed"),
    "error.type PermissionDeniedError": (dict(error_type="openai.PermissionDeniedError"), "auth_failed"),
    "error.type ContextWindowExceeded": (dict(error_type="litellm.ContextWindowExceededError"), "context_overflow"),
    "error.type BudgetExceeded": (dict(error_type="litellm.BudgetExceededError"), "budget_exceeded"),
    "error.type UsageLimitExceeded": (dict(error_type="pydantic_ai.exceptions.UsageLimitExceeded"), "budget_exceeded"),
    "error.type UnexpectedModelBehavior": (dict(error_type="UnexpectedModelBehavior"), "invalid_output"),
    # exception type
    "CancelledError": (dict(exception_type="asyncio.exceptions.CancelledError"), "cancelled"),
    "KeyboardInterrupt": (dict(exception_type="KeyboardInterrupt"), "cancelled"),
    "ValidationError": (dict(exception_type="pydantic_core._pydantic_core.ValidationError"), "invalid_output"),
    "JSONDecodeError": (dict(exception_type="json.decoder.JSONDecodeError"), "invalid_output"),
    "ReadTimeout": (dict(exception_type="httpx.ReadTimeout"), "timeout"),
    "ConnectTimeout is a timeout": (dict(exception_type="httpx.ConnectTimeout"), "timeout"),
    "APIConnectionError": (dict(exception_type="openai.APIConnectionError"), "provider_unavailable"),
    "InternalServerError": (dict(exception_type="anthropic.InternalServerError"), "provider_unavailable"),
    "OverloadedError": (dict(exception_type="anthropic.OverloadedError"), "provider_unavailable"),
    "ResourceExhausted": (dict(exception_type="google.api_core.exceptions.ResourceExhausted"), "rate_limited"),
    "DeadlineExceeded": (dict(exception_type="google.api_core.exceptions.DeadlineExceeded"), "timeout"),
    "ContentFilterFinishReasonError": (dict(exception_type="openai.ContentFilterFinishReasonError"), "content_filtered"),
    "tripwire": (dict(exception_type="agents.exceptions.OutputGuardrailTripwireTriggered"), "guardrail_blocked"),
    "ThrottlingException": (dict(exception_type="botocore.errorfactory.ThrottlingException"), "rate_limited"),
    # exception / status messages
    "context_length_exceeded": (dict(exception_message="Error code: 400 - {'code': 'context_length_exceeded'}"), "context_overflow"),
    "maximum context length": (dict(exception_message="This model's maximum context length is 8192 tokens"), "context_overflow"),
    "prompt is too long": (dict(exception_message="prompt is too long: 210000 tokens > 200000 maximum"), "context_overflow"),
    "rate limit words": (dict(exception_message="Rate limit reached for gpt-4o on tokens per min"), "rate_limited"),
    "overloaded": (dict(exception_message="Overloaded"), "provider_unavailable"),
    "503 in an SDK message": (dict(exception_message="Error code: 503 - upstream connect failed"), "provider_unavailable"),
    "429 in an SDK message": (dict(exception_message="Error code: 429 - {'type': 'error'}"), "rate_limited"),
    "unauthorized": (dict(status_message="401 Unauthorized"), "auth_failed"),
    "invalid api key": (dict(exception_message="Incorrect API key provided: sk-...abc"), "auth_failed"),
    "insufficient quota is budget, not rate": (
        dict(exception_message="Error code: 429 - You exceeded your current quota (insufficient_quota)"),
        "budget_exceeded",
    ),
    "budget message": (dict(status_message="run stopped: budget of $5.00 exceeded"), "budget_exceeded"),
    "timed out": (dict(status_message="Request timed out."), "timeout"),
    "numbers without a code word are not statuses": (dict(exception_message="waited 500 ms for 429 rows"), "unknown"),
    # HTTP status
    "http 401": (dict(http_status=401), "auth_failed"),
    "http 403": (dict(http_status=403), "auth_failed"),
    "http 408": (dict(http_status=408), "timeout"),
    "http 413": (dict(http_status=413), "context_overflow"),
    "http 429": (dict(http_status=429), "rate_limited"),
    "http 500": (dict(http_status=500), "provider_unavailable"),
    "http 502": (dict(http_status=502), "provider_unavailable"),
    "http 504": (dict(http_status=504), "timeout"),
    "http 529": (dict(http_status=529), "provider_unavailable"),
    "http 400 alone": (dict(http_status=400), "unknown"),
    "http 400 with context words": (
        dict(http_status=400, exception_message="input is too long for requested model"), "context_overflow",
    ),
    # finish reasons (on a failed span)
    "content_filter": (dict(finish_reasons=("content_filter",), status_message="x"), "content_filtered"),
    "gemini SAFETY": (dict(finish_reasons=("SAFETY",), status_message="x"), "content_filtered"),
    "length on a failed span is truncated output": (
        dict(finish_reasons=("length",), exception_type="ValueError"), "invalid_output",
    ),
    "length with context words is context overflow": (
        dict(finish_reasons=("length",), exception_message="context window exceeded"), "context_overflow",
    ),
    "finish reason error": (dict(finish_reasons=("error",)), "unknown"),
    "finish reasons as a plain string": (dict(finish_reasons="content_filter", status_message="x"), "content_filtered"),
    # category and guardrails
    "failed tool": (dict(exception_type="KeyError", category="tool"), "tool_error"),
    "failed tool, specific cause": (dict(exception_type="TimeoutError", category="tool"), "timeout"),
    "tool whose service is unavailable": (
        dict(status_message="503 Service Unavailable", category="tool"), "tool_error"),
    "tool whose API answered 503": (dict(http_status=503, category="tool"), "tool_error"),
    "tool rate-limited by its API": (dict(http_status=429, category="tool"), "rate_limited"),
    "tool refused by a content filter": (
        dict(exception_message="blocked by content filter", category="tool"), "tool_error"),
    "model call unavailable stays the provider's": (
        dict(status_message="503 Service Unavailable", category="llm"), "provider_unavailable"),
    "smolagents step around a failed tool": (
        dict(exception_type="smolagents.utils.AgentToolExecutionError",
             exception_message="Error executing tool 'lookup' with arguments {'query': 'otel'}: RuntimeError: x"),
        "tool_error",
    ),
    "smolagents tool call the model got wrong": (
        dict(exception_type="smolagents.utils.AgentToolCallError", exception_message="Invalid call to tool 'x'"),
        "tool_error",
    ),
    "guardrail flag": (dict(guardrail_blocked=True), "guardrail_blocked"),
    "guardrail flag beats everything": (dict(guardrail_blocked=True, http_status=429), "guardrail_blocked"),
    # precedence between sources
    "error.type beats the message": (
        dict(error_type="openai.RateLimitError", exception_message="timed out"), "rate_limited",
    ),
    "http beats the message": (dict(http_status=401, exception_message="Overloaded"), "auth_failed"),
    "unspecific type falls through to the message": (
        dict(error_type="openai.BadRequestError", exception_message="maximum context length is 4097"),
        "context_overflow",
    ),
    "budget beats rate limit in one message": (
        dict(exception_message="rate limit: monthly budget exhausted"), "budget_exceeded",
    ),
}


@pytest.mark.parametrize(("signals", "expected"), CLASSIFICATION.values(), ids=CLASSIFICATION.keys())
def test_classification(signals, expected):
    verdict = classify_error(**signals, failed=True)
    assert verdict is not None and verdict.error_class == expected
    assert verdict.evidence  # always explainable


NOT_FAILED: dict[str, dict[str, Any]] = {
    "no signals": {},
    "finish reason stop": dict(finish_reasons=("stop",)),
    "finish reason length alone": dict(finish_reasons=("length",)),
    "content filter alone": dict(finish_reasons=("content_filter",)),
    "http 200": dict(http_status=200),
    "http 302": dict(http_status=302),
    "tool category alone": dict(category="tool"),
    "blank strings": dict(error_type="  ", exception_message=""),
}


@pytest.mark.parametrize("signals", NOT_FAILED.values(), ids=NOT_FAILED.keys())
def test_no_failure_no_verdict(signals):
    assert classify_error(**signals) is None


def test_failed_without_clues_is_unknown():
    assert classify_error(failed=True) == ErrorVerdict("unknown", ("status=error",))
    assert classify_error(failed=True, category="tool") == ErrorVerdict("tool_error", ("category=tool",))


FAILURE_WITHOUT_FLAG: dict[str, tuple[dict[str, Any], str]] = {
    "error.type": (dict(error_type="timeout"), "timeout"),
    "http status": (dict(http_status=429), "rate_limited"),
    "finish reason error": (dict(finish_reasons=("error",)), "unknown"),
    "finish reasons as a plain string": (dict(finish_reasons="content_filter", status_message="x"), "content_filtered"),
    "guardrail": (dict(guardrail_blocked=True), "guardrail_blocked"),
    "status message": (dict(status_message="boom"), "unknown"),
}


@pytest.mark.parametrize(("signals", "expected"), FAILURE_WITHOUT_FLAG.values(), ids=FAILURE_WITHOUT_FLAG.keys())
def test_signals_are_failures_by_themselves(signals, expected):
    verdict = classify_error(**signals)
    assert verdict is not None and verdict.error_class == expected


EVIDENCE: dict[str, tuple[dict[str, Any], ErrorVerdict]] = {
    "agreeing signals, most authoritative first": (
        dict(error_type="openai.RateLimitError", http_status=429, exception_message="Rate limit reached"),
        ErrorVerdict("rate_limited", (
            "error.type=openai.RateLimitError", "http.response.status_code=429",
            "exception.message=Rate limit reached",
        )),
    ),
    "disagreeing signals are left out": (
        dict(error_type="timeout", http_status=503),
        ErrorVerdict("timeout", ("error.type=timeout",)),
    ),
    "finish reason": (
        dict(finish_reasons=("content_filter",), failed=True),
        ErrorVerdict("content_filtered", ("gen_ai.response.finish_reasons=content_filter",)),
    ),
    "guardrail": (dict(guardrail_blocked=True), ErrorVerdict("guardrail_blocked", ("causeline.guardrail=blocked",))),
    "fallback lists what was seen": (
        dict(exception_type="KeyError", exception_message="'city'", category="tool"),
        ErrorVerdict("tool_error", ("exception.type=KeyError", "exception.message='city'", "category=tool")),
    ),
    "long messages are shortened": (
        dict(exception_message="x" * 500),
        ErrorVerdict("unknown", ("exception.message=" + "x" * 119 + "…",)),
    ),
}


@pytest.mark.parametrize(("signals", "expected"), EVIDENCE.values(), ids=EVIDENCE.keys())
def test_evidence(signals, expected):
    assert classify_error(**signals) == expected


def test_rules_name_only_known_classes():
    assert {cls for cls, _ in KEYWORD_RULES} <= set(ERROR_CLASSES)
