"""Response models: what /docs (OpenAPI) documents and what clients can rely on.

Conventions, the same everywhere:
- ids are lowercase hex (trace 32 chars, span 16);
- money is a decimal *string* in USD ("0.0081"): exact (PostgreSQL numeric), never a
  binary float; null means "no cost", and `cost_source = "unpriced"` means a model
  call we could not price — never read it as $0;
- nanosecond timestamps are decimal strings, because they exceed the 2^53 range that
  JavaScript numbers hold exactly (OTLP/JSON does the same); ISO-8601 UTC next to them;
- token counts are null when the instrumentation did not report them (not 0).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from core.masking import mask_attributes, mask_events, mask_text
from core.model_call_dedup import not_counted_note
from db.models import SpanEdge, SpanRow, TraceRow
from pages.scores import ScoreOut


def money(value: Decimal | None) -> str | None:
    """Exact decimal string without the column's trailing zeros: Decimal('0.0081000000') -> '0.0081'."""
    if value is None:
        return None
    return format(value.normalize(), "f")


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, in words.")


class TokenCounts(BaseModel):
    input: int | None = Field(description="Includes cache reads and writes (GenAI conventions).")
    output: int | None = Field(description="Includes reasoning tokens.")
    cache_read: int | None
    cache_write: int | None
    reasoning: int | None


class TraceSummary(BaseModel):
    trace_id: str = Field(description="32 lowercase hex characters.")
    root_span_id: str | None = Field(description="Null until the root span has arrived.")
    root_name: str | None
    service_name: str | None
    status: str = Field(description="error: a span failed; ok: no failures and the root span is explicitly OK; "
                                    "unset: no failures, root status unset (typical for OTel instrumentations).")
    outcome: str | None = Field(default=None, description="failed, recovered (failures the run went on from: a "
                                "retry, fallback or handler succeeded) or ok; null until attributed.")
    start: datetime
    end: datetime
    duration_ms: float
    span_count: int
    error_count: int
    llm_calls: int
    unpriced_calls: int = Field(description="Model calls without a price; `cost_usd` excludes them.")
    tokens: TokenCounts
    cost_usd: str = Field(description="Sum over priced spans, decimal string in USD.", examples=["0.0123"])
    agents: list[str]
    models: list[str]
    services: list[str]
    session_id: str | None
    user_id: str | None
    html_url: str = Field(description="The same trace as a page.")
    input_preview: str | None = Field(default=None, description="In lists: one line of the run's input (the "
                                      "first user message), masked for readers without read_content.")


class RunTotalsOut(BaseModel):
    runs: int = Field(description="Runs the filters select (every page, not only this one); with `capped`, "
                                  "more than this many.")
    capped: bool = Field(default=False, description="A search matched more runs than `runs` (1,000): counting "
                                                    "stopped there and the totals below are null.")
    failed: int | None = Field(description="Of them, runs whose outcome is failed.")
    with_errors: int | None = Field(description="Of them, runs where a span failed (attributed or not).")
    cost_usd: str | None = Field(description="Priced model calls only; see unpriced_calls.")
    unpriced_calls: int | None = Field(description="Model calls without a price, never counted as $0.")
    input_tokens: int | None
    output_tokens: int | None


class TraceList(BaseModel):
    traces: list[TraceSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
    totals: RunTotalsOut | None = Field(default=None, description="Totals of every run the filters select.")


class SpanOut(BaseModel):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    otel_kind: int = Field(description="OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.")
    category: str
    operation: str | None
    status: str = Field(description="unset | ok | error")
    status_message: str | None
    error_type: str | None
    error_class: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    tokens: TokenCounts
    cost_usd: str | None = Field(description="Decimal string in USD; null when not priced.")
    cost_source: str | None = Field(description="'genai-prices <version>', 'override:<id>', 'reported' or 'unpriced'.")
    reported_cost_usd: str | None = Field(description="Cost the instrumentation itself reported, if any.")
    duplicate_of: str | None = Field(
        default=None, description="Set on a model call recorded again by a stacked instrumentation: the span id "
                                  "that counts instead. This span adds nothing to any calls, tokens or cost total.")
    duplicate_reason: str | None = Field(
        default=None, description="Why (with duplicate_of): 'same_response_id' or 'nested'.")
    not_counted: str | None = Field(default=None, description="duplicate_reason as a sentence.")
    agent_name: str | None
    tool_name: str | None
    service_name: str | None
    session_id: str | None
    user_id: str | None
    start: datetime = Field(description="Microsecond precision; see start_ns for the exact value.")
    start_ns: str = Field(description="Nanoseconds since the Unix epoch, as a decimal string.")
    end_ns: str
    duration_ns: int
    duration_ms: float
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    resource: dict[str, Any]
    scope: str | None
    input: str | None = Field(description="Captured prompt/input content, verbatim (untrusted text); from the "
                                          "span's attributes, else the JSON list of its GenAI log events' messages.")
    output: str | None = Field(description="Captured completion/output content, as `input`.")


class EdgeOut(BaseModel):
    relation: str = Field(description="parent, retry_of, fallback_of, handoff_from, data_from, caused_by, follows or link.")
    trace_id: str
    span_id: str
    linked_trace_id: str
    linked_span_id: str


class TraceDetailOut(BaseModel):
    trace: TraceSummary
    spans: list[SpanOut] = Field(description="The stored spans of the trace, ordered by start time: all of them, "
                                             "or the earliest CAUSELINE_MAX_TRACE_SPANS when `truncated`.")
    edges: list[EdgeOut] = Field(description="Edges from this trace's spans, and from other traces into it.")
    truncated: bool = Field(description="The trace has more spans than returned (see trace.span_count).")
    scores: list[ScoreOut] = Field(default_factory=list, description="Evaluation scores of the run and its spans.")


def _tokens(row: SpanRow | TraceRow) -> TokenCounts:
    return TokenCounts(
        input=row.input_tokens, output=row.output_tokens, cache_read=row.cache_read_tokens,
        cache_write=row.cache_write_tokens, reasoning=row.reasoning_tokens,
    )


def trace_summary(row: TraceRow, status: str) -> TraceSummary:
    trace_hex = row.trace_id.hex()
    return TraceSummary(
        trace_id=trace_hex, root_span_id=row.root_span_id.hex() if row.root_span_id else None,
        root_name=row.root_name, service_name=row.service_name, status=status, outcome=row.outcome,
        start=row.start_time, end=row.end_time,
        duration_ms=(row.end_time - row.start_time).total_seconds() * 1000,
        span_count=row.span_count, error_count=row.error_count, llm_calls=row.llm_calls,
        unpriced_calls=row.unpriced_calls, tokens=_tokens(row), cost_usd=money(row.cost_usd) or "0",
        agents=list(row.agents or []), models=list(row.models or []), services=list(row.services or []),
        session_id=row.session_id, user_id=row.user_id, html_url=f"/traces/{trace_hex}",
    )


def span_out(row: SpanRow, *, content: bool = True) -> SpanOut:
    """`content=False` (a reader without `read_content`): captured text masked (core/masking.py)."""
    attributes, events, text_in, text_out = row.attributes or {}, row.events or [], row.input, row.output
    if not content:
        attributes, events = mask_attributes(attributes), mask_events(events)
        text_in, text_out = mask_text(text_in), mask_text(text_out)
    return SpanOut(
        trace_id=row.trace_id.hex(), span_id=row.span_id.hex(),
        parent_span_id=row.parent_span_id.hex() if row.parent_span_id else None,
        name=row.name, otel_kind=row.kind, category=row.category, operation=row.operation,
        status=row.status, status_message=row.status_message, error_type=row.error_type,
        error_class=row.error_class, provider=row.provider, request_model=row.request_model,
        response_model=row.response_model, tokens=_tokens(row), cost_usd=money(row.cost_usd),
        cost_source=row.cost_source, reported_cost_usd=money(row.reported_cost_usd),
        duplicate_of=row.duplicate_of.hex() if row.duplicate_of else None, duplicate_reason=row.duplicate_reason,
        not_counted=not_counted_note(row.duplicate_reason) if row.duplicate_of else None,
        agent_name=row.agent_name, tool_name=row.tool_name, service_name=row.service_name,
        session_id=row.session_id, user_id=row.user_id, start=row.start_time,
        start_ns=str(row.start_ns), end_ns=str(row.start_ns + row.duration_ns),
        duration_ns=row.duration_ns, duration_ms=row.duration_ns / 1_000_000,
        attributes=attributes, events=events, links=row.links or [],
        resource=row.resource or {}, scope=row.scope, input=text_in, output=text_out,
    )


def edge_out(row: SpanEdge) -> EdgeOut:
    return EdgeOut(
        relation=row.relation, trace_id=row.trace_id.hex(), span_id=row.span_id.hex(),
        linked_trace_id=row.linked_trace_id.hex(), linked_span_id=row.linked_span_id.hex(),
    )
