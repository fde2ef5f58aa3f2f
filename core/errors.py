"""Error taxonomy: which kind of failure a span had, and the evidence for it.

The verdict comes from the most authoritative signal that says something
specific. Signals are read in this order (structured before free text):

    guardrail block flag > error.type > exception.type > HTTP status
    > blocking finish reasons (content_filter...) > exception.message
    > status message > truncation finish reasons (length...)

Each text signal is matched against `KEYWORD_RULES`, an ordered table where the
first class with a matching keyword wins (causes before effects: a run
"cancelled because the budget ran out" is budget_exceeded). Numeric codes
("429", "Error code: 503 - ...") go through `HTTP_STATUS_CLASSES`. When nothing
specific matches, a failed tool span is `tool_error`, anything else `unknown`. A tool span is
never blamed on a model provider: the model-only classes (`MODEL_ONLY_CLASSES`) become
`tool_error` there, with their evidence.

Evidence lists every signal that agrees with the verdict, most authoritative
first, e.g. ("error.type=openai.RateLimitError", "http.response.status_code=429").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from core.span import ERROR_CLASSES

# Classes that only a model call can have: the same words from a tool make it a tool_error.
MODEL_ONLY_CLASSES = frozenset({"provider_unavailable", "context_overflow", "content_filtered"})

# Ordered (class, keywords); matched as substrings of the lowercased text.
# Exception class names are lowercased too, so "openai.RateLimitError" hits
# "ratelimit" and "asyncio.CancelledError" hits "cancelled".
KEYWORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("budget_exceeded", (
        "budget", "insufficient_quota", "current quota", "usagelimitexceeded", "usage limit",
        "spend limit", "billing",
    )),
    ("context_overflow", (
        "context_length_exceeded", "maximum context length", "context length", "context window",
        "contextwindowexceeded", "prompt is too long", "input is too long", "too many tokens",
        "reduce the length", "request_too_large", "payload too large",
    )),
    ("content_filtered", (
        "content_filter", "content filter", "contentfilter", "content_policy", "content policy",
        "content management policy", "responsibleaipolicyviolation", "blocked due to safety",
        "safety settings",
    )),
    ("guardrail_blocked", ("tripwire", "guardrail")),
    ("auth_failed", (
        "authenticationerror", "authentication_error", "permissiondenied", "permission_error",
        "permission denied", "unauthorized", "unauthenticated", "forbidden", "invalid api key",
        "invalid_api_key", "incorrect api key", "invalid x-api-key", "api key",
    )),
    ("rate_limited", (
        "ratelimit", "rate limit", "rate_limit", "too many requests", "resource_exhausted",
        "resourceexhausted", "throttl",
    )),
    ("timeout", ("timeout", "timed out", "deadline")),
    ("provider_unavailable", (
        "overloaded", "unavailable", "internalservererror", "internal server error", "server_error",
        "apiconnectionerror", "connection error", "connectionerror", "connecterror",
        "connection refused", "connection reset", "bad gateway", "badgateway", "server disconnected",
        "remotedisconnected",
    )),
    ("cancelled", ("cancelled", "canceled", "keyboardinterrupt", "aborterror")),
    ("invalid_output", (
        "validationerror", "jsondecodeerror", "unexpectedmodelbehavior", "outputparserexception",
        "lengthfinishreason", "invalid json", "failed to parse", "could not parse", "unable to parse",
        "parse error", "parsing error",
    )),
    # smolagents wraps a failed tool in these (on its step span); the tool span has the cause.
    ("tool_error", ("agenttoolexecutionerror", "agenttoolcallerror")),
)

# HTTP status → class; other 5xx are provider_unavailable. 400 says nothing by
# itself (context overflow shows up in the accompanying message).
HTTP_STATUS_CLASSES: dict[int, str] = {
    401: "auth_failed",
    403: "auth_failed",
    408: "timeout",
    413: "context_overflow",
    429: "rate_limited",
    504: "timeout",
}

# Finish reasons that mean the provider refused or blocked the output.
BLOCKING_FINISH_REASONS: dict[str, str] = {
    "content_filter": "content_filtered",
    "safety": "content_filtered",            # Gemini
    "prohibited_content": "content_filtered",
    "blocklist": "content_filtered",
    "spii": "content_filtered",
    "refusal": "content_filtered",           # Anthropic
}
# Output cut at max tokens on a *failed* span: the truncated output is what broke
# (unparseable JSON, incomplete tool call), so invalid_output. A prompt that does
# not fit the window fails before generating and reports context words instead.
TRUNCATION_FINISH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})

# "Error code: 429 - {...}" (OpenAI/Anthropic SDKs), "status code 503", "status: 401".
_CODE_IN_TEXT = re.compile(r"(?:code|status)[^0-9a-z]{0,3}([1-5][0-9][0-9])(?![0-9])")
_MAX_TEXT = 4096  # the telling part of an error message is at its start
_MAX_EVIDENCE_TEXT = 120

assert all(cls in ERROR_CLASSES for cls, _ in KEYWORD_RULES)
assert all(cls in ERROR_CLASSES for cls in HTTP_STATUS_CLASSES.values())


@dataclass(frozen=True, slots=True)
class ErrorVerdict:
    error_class: str
    evidence: tuple[str, ...]


def classify_error(
    *,
    error_type: str | None = None,
    exception_type: str | None = None,
    exception_message: str | None = None,
    status_message: str | None = None,
    http_status: int | None = None,
    finish_reasons: Iterable[str] = (),
    category: str | None = None,
    guardrail_blocked: bool = False,
    failed: bool = False,
) -> ErrorVerdict | None:
    """Classify a failure; None when no input shows one.

    `failed=True` says the caller already knows the span failed (status error),
    so a span with no further clue is `unknown` (or `tool_error`) instead of None.
    """
    if isinstance(finish_reasons, str):
        finish_reasons = (finish_reasons,)
    reasons = tuple(r.lower() for r in finish_reasons if isinstance(r, str))
    signals = _signals(
        error_type=error_type, exception_type=exception_type, exception_message=exception_message,
        status_message=status_message, http_status=http_status, finish_reasons=reasons,
        guardrail_blocked=guardrail_blocked,
    )
    failure_seen = failed or "error" in reasons or any(s[2] for s in signals)
    if not failure_seen:
        return None
    verdict = next((cls for _, cls, _ in signals if cls), None)
    if verdict is not None:
        evidence = tuple(ev for ev, cls, _ in signals if cls == verdict)
        if category == "tool" and verdict in MODEL_ONLY_CLASSES:
            # A tool's downstream service said "503" or "content filtered": the tool failed, no
            # model provider did (provider health and fallbacks must not count it).
            return ErrorVerdict("tool_error", (*evidence, "category=tool"))
        return ErrorVerdict(verdict, evidence)
    evidence = [ev for ev, _, is_failure in signals if is_failure]
    if "error" in reasons:
        evidence.append("gen_ai.response.finish_reasons=error")
    if category == "tool":
        return ErrorVerdict("tool_error", (*evidence, "category=tool"))
    return ErrorVerdict("unknown", tuple(evidence) or ("status=error",))


def _signals(
    *,
    error_type: str | None,
    exception_type: str | None,
    exception_message: str | None,
    status_message: str | None,
    http_status: int | None,
    finish_reasons: tuple[str, ...],
    guardrail_blocked: bool,
) -> list[tuple[str, str | None, bool]]:
    """(evidence, class or None, is a failure signal) per present signal, by authority."""
    signals: list[tuple[str, str | None, bool]] = []
    if guardrail_blocked:
        signals.append(("causeline.guardrail=blocked", "guardrail_blocked", True))
    for label, text in (("error.type", error_type), ("exception.type", exception_type)):
        if isinstance(text, str) and text.strip():
            signals.append((f"{label}={_short(text)}", _text_class(text), True))
    if isinstance(http_status, int) and not isinstance(http_status, bool) and http_status >= 400:
        signals.append((f"http.response.status_code={http_status}", _http_class(http_status), True))
    for reason in finish_reasons:
        if reason in BLOCKING_FINISH_REASONS:
            signals.append((f"gen_ai.response.finish_reasons={reason}", BLOCKING_FINISH_REASONS[reason], False))
    for label, text in (("exception.message", exception_message), ("status.message", status_message)):
        if isinstance(text, str) and text.strip():
            signals.append((f"{label}={_short(text)}", _text_class(text), True))
    for reason in finish_reasons:
        if reason in TRUNCATION_FINISH_REASONS:
            signals.append((f"gen_ai.response.finish_reasons={reason}", "invalid_output", False))
    return signals


def _text_class(text: str) -> str | None:
    """Class named by an error type or message, via keywords then numeric codes."""
    lowered = text[:_MAX_TEXT].lower()
    for error_class, keywords in KEYWORD_RULES:
        for keyword in keywords:
            if keyword in lowered:
                return error_class
    stripped = lowered.strip()
    if stripped.isdigit() and len(stripped) == 3:  # error.type may be the bare status code
        return _http_class(int(stripped))
    match = _CODE_IN_TEXT.search(lowered)
    return _http_class(int(match.group(1))) if match else None


def _http_class(status: int) -> str | None:
    if status in HTTP_STATUS_CLASSES:
        return HTTP_STATUS_CLASSES[status]
    if 500 <= status <= 599:
        return "provider_unavailable"
    return None


def _short(text: str) -> str:
    text = " ".join(text[: _MAX_EVIDENCE_TEXT * 2].split())
    return text if len(text) <= _MAX_EVIDENCE_TEXT else text[: _MAX_EVIDENCE_TEXT - 1] + "…"
