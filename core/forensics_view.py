"""The light span and edge views that attribution, lineage and trace costs work on.

`SpanView` holds only what forensics needs; it is built from a canonical `Span`
(`view_of_span`) or from a stored row (db.queries.forensics). `EdgeView` is one
lineage edge: span --relation--> linked span (the parent, or a link's target).
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

from core.span import COST_UNPRICED, PARENT, Span, Tokens

Key = tuple[bytes, bytes]  # (trace_id, span_id)


@dataclass(frozen=True, slots=True)
class SpanView:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    category: str = "other"
    start_ns: int = 0
    end_ns: int = 0
    status: str = "unset"
    error_type: str | None = None
    error_class: str | None = None
    status_message: str | None = None
    service_name: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    tokens: Tokens = Tokens()
    cost_usd: Decimal | None = None
    cost_source: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # core.span.Event objects or stored dicts {"name", "time_ns", "attributes"}.
    events: tuple[Any, ...] = ()
    # A model call recorded again by a stacked instrumentation: the span that counts instead
    # (core.model_call_dedup); its tokens and cost are not added anywhere.
    duplicate_of: bytes | None = None

    @property
    def key(self) -> Key:
        return (self.trace_id, self.span_id)

    @property
    def failed(self) -> bool:
        return self.status == "error"

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def unpriced(self) -> bool:
        return self.cost_source == COST_UNPRICED


@dataclass(frozen=True, slots=True)
class EdgeView:
    trace_id: bytes
    span_id: bytes
    relation: str
    linked_trace_id: bytes
    linked_span_id: bytes

    @property
    def source(self) -> Key:
        return (self.trace_id, self.span_id)

    @property
    def target(self) -> Key:
        return (self.linked_trace_id, self.linked_span_id)

    @property
    def cross_trace(self) -> bool:
        return self.trace_id != self.linked_trace_id


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span named in a verdict: ids plus the name to show."""

    trace_id: bytes
    span_id: bytes
    name: str

    @property
    def key(self) -> Key:
        return (self.trace_id, self.span_id)


def ref(view: SpanView) -> SpanRef:
    return SpanRef(view.trace_id, view.span_id, view.name)


def view_of_span(span: Span) -> SpanView:
    return SpanView(
        trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id, name=span.name,
        category=span.category, start_ns=span.start_ns, end_ns=span.end_ns, status=span.status,
        error_type=span.error_type, error_class=span.error_class, status_message=span.status_message,
        service_name=span.service_name, agent_name=span.agent_name, tool_name=span.tool_name,
        provider=span.provider, request_model=span.request_model, response_model=span.response_model,
        tokens=span.tokens, cost_usd=span.cost_usd, cost_source=span.cost_source,
        attributes=span.attributes, events=span.events,
    )


def edges_of_spans(spans: Iterable[Span]) -> list[EdgeView]:
    """Parent and link edges of canonical spans, as the batch writer stores them."""
    edges: list[EdgeView] = []
    for span in spans:
        if span.parent_span_id:
            edges.append(EdgeView(span.trace_id, span.span_id, PARENT, span.trace_id, span.parent_span_id))
        for link in span.links:
            edges.append(EdgeView(span.trace_id, span.span_id, link.relation, link.trace_id, link.span_id))
    return edges
