"""The canonical span: the only span shape code downstream of decoding ever sees.

Decoding (core.otlp) produces `RawSpan` — OTLP data with attributes flattened to
Python values. Normalization (core.normalize) turns a RawSpan into a `Span` by
applying every telemetry convention we understand; pricing (core.pricing) fills
in the cost. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

# Attribute values after flattening OTLP AnyValue: str, bool, int, float, bytes,
# lists of those, or nested dicts (kvlist). Kept as plain Python for JSONB.
AttrValue = Any
Attributes = Mapping[str, AttrValue]

CATEGORIES = (
    "agent", "llm", "tool", "routing", "retrieval", "embedding", "guardrail", "workflow", "other",
)
# The one "is this a model call" rule (Span.is_model_call; db/ingest.py builds its SQL from it).
MODEL_CALL_CATEGORIES = ("llm", "embedding")
STATUSES = ("unset", "ok", "error")
ERROR_CLASSES = (
    "timeout", "rate_limited", "provider_unavailable", "auth_failed", "context_overflow",
    "content_filtered", "invalid_output", "tool_error", "guardrail_blocked", "budget_exceeded",
    "cancelled", "unknown",
)
LINK_TYPES = ("retry_of", "fallback_of", "handoff_from", "data_from", "caused_by", "follows")
# Relation of an edge built from a plain OTLP link without causeline.link.type.
PLAIN_LINK = "link"
PARENT = "parent"

# How a span's cost was obtained. Priced spans carry "genai-prices <version>" or
# "override:<id>"; "reported" means the instrumentation sent a cost we could not
# re-derive; "unpriced" means a model call we could not price (never shown as $0).
COST_UNPRICED = "unpriced"
COST_REPORTED = "reported"


def is_model_call(category: str | None) -> bool:
    """A span of this category is a model call: priced, counted in usage, de-duplicated."""
    return category in MODEL_CALL_CATEGORIES


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Link:
    trace_id: bytes
    span_id: bytes
    attributes: Attributes = field(default_factory=dict)
    flags: int = 0

    @property
    def relation(self) -> str:
        value = self.attributes.get("causeline.link.type")
        return value if value in LINK_TYPES else PLAIN_LINK


@dataclass(frozen=True, slots=True)
class RawSpan:
    """One OTLP span, decoded and validated, attributes flattened, not yet interpreted."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int  # OTLP StatusCode: 0 unset, 1 ok, 2 error
    status_message: str
    attributes: Attributes
    events: tuple[Event, ...]
    links: tuple[Link, ...]
    resource: Attributes
    scope_name: str = ""
    scope_version: str = ""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts as reported. None means "not reported", which is not 0.

    Per the GenAI conventions `input` already includes cache reads/writes and
    `output` already includes reasoning tokens: price each kind once.
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.input, self.output, self.cache_read, self.cache_write, self.reasoning))


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    otel_kind: int
    category: str
    operation: str | None
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    error_type: str | None
    error_class: str | None
    service_name: str | None
    agent_name: str | None
    tool_name: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    tokens: Tokens
    session_id: str | None
    user_id: str | None
    input: str | None
    output: str | None
    attributes: Attributes
    events: tuple[Event, ...]
    links: tuple[Link, ...]
    resource: Attributes
    # Filled by core.pricing; None on spans that are not model calls.
    cost_usd: Decimal | None = None
    cost_source: str | None = None
    # What the instrumentation itself reported (operation.cost, llm.cost.total, ...).
    reported_cost_usd: Decimal | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_model_call(self) -> bool:
        return is_model_call(self.category)

    @property
    def trace_hex(self) -> str:
        return self.trace_id.hex()

    @property
    def span_hex(self) -> str:
        return self.span_id.hex()
