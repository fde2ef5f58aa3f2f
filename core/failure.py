"""Did a span fail? Status, error type and error class from every failure signal.

Emitters often leave the span status unset while saying elsewhere that the
operation failed, so the status is raised to "error" by: an exception event,
`error.type`, HTTP status >= 400 on a model call, a guardrail block, or the
finish reason "error". One exception: an explicit OK status with only an
exception event stays OK (the exception was handled).
"""

from __future__ import annotations

from typing import Any, Mapping

from core.coerce import as_bool, as_lower_tuple, as_str, first_count
from core.errors import classify_error
from core.logfire import ERROR as LOGFIRE_ERROR, LEVEL as LOGFIRE_LEVEL, error_message, level_is_error
from core.span import MODEL_CALL_CATEGORIES, Event

_STATUS_BY_CODE = {0: "unset", 1: "ok", 2: "error"}
_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
_FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason")


def span_failure(
    status_code: Any, status_message: Any, attributes: Mapping[str, Any], events: tuple[Event, ...], category: str
) -> tuple[str, str | None, str | None]:
    """(status, error_type, error_class); the last two are None unless status is "error"."""
    has_exception, exception_type, exception_message = _last_exception(events)
    error_type = as_str(attributes.get("error.type"))
    http_status = first_count(attributes, _HTTP_STATUS_KEYS)
    finish_reasons = _finish_reasons(attributes)
    blocked = guardrail_blocked(attributes, category)
    # Logfire sends a failed OpenAI Agents span as an `error` object and an error level only.
    logfire_error = error_message(attributes) if LOGFIRE_ERROR in attributes else None
    if logfire_error is not None or (LOGFIRE_LEVEL in attributes and level_is_error(attributes)):
        has_exception = True
        exception_message = exception_message or logfire_error
    status = _status(
        status_code, error_type=error_type, has_exception=has_exception,
        # A 4xx on a server span is the client's problem; on a model call it is ours.
        http_status=http_status if category in MODEL_CALL_CATEGORIES else None,
        blocked=blocked, finish_reasons=finish_reasons,
    )
    if status != "error":  # a handled exception on an OK span is not its error
        return status, None, None
    verdict = classify_error(
        error_type=error_type, exception_type=exception_type, exception_message=exception_message,
        status_message=as_str(status_message), http_status=http_status, finish_reasons=finish_reasons,
        category=category, guardrail_blocked=blocked, failed=True,
    )
    return status, error_type or exception_type, verdict.error_class if verdict else "unknown"


def status_from_code(status_code: Any) -> str:
    """OTLP StatusCode → "unset" | "ok" | "error" (anything unexpected is unset)."""
    return _STATUS_BY_CODE.get(status_code, "unset") if type(status_code) is int else "unset"


def guardrail_blocked(attributes: Mapping[str, Any], category: str) -> bool:
    """Did a guardrail block? causeline.guardrail.*, or the OpenAI Agents tripwire."""
    if as_bool(attributes.get("causeline.guardrail.passed")) is False:
        return True
    action = as_str(attributes.get("causeline.guardrail.action"))
    if action is not None and action.lower() == "block":
        return True
    if as_bool(attributes.get("gen_ai.guardrail.triggered")):
        return True
    # Logfire's OpenAI Agents guardrail spans carry a bare "triggered" flag.
    return category == "guardrail" and as_bool(attributes.get("triggered")) is True


def _status(
    status_code: Any, *, error_type: str | None, has_exception: bool, http_status: int | None,
    blocked: bool, finish_reasons: tuple[str, ...],
) -> str:
    base = status_from_code(status_code)
    if base == "error":
        return base
    if error_type or blocked or "error" in finish_reasons or (http_status is not None and http_status >= 400):
        return "error"
    if has_exception and base != "ok":
        return "error"
    return base


def _last_exception(events: tuple[Event, ...]) -> tuple[bool, str | None, str | None]:
    """(seen, exception.type, exception.message) of the last exception event."""
    for event in reversed(events):
        if getattr(event, "name", None) == "exception":
            attrs = getattr(event, "attributes", None)
            if not isinstance(attrs, Mapping):
                return True, None, None  # unreadable, but still an exception
            return True, as_str(attrs.get("exception.type")), as_str(attrs.get("exception.message"))
    return False, None, None


def _finish_reasons(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    for key in _FINISH_REASON_KEYS:
        if key in attributes:
            reasons = as_lower_tuple(attributes[key])
            if reasons:
                return reasons
    return ()
