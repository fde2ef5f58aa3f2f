"""Typed span links: retry_of, fallback_of, handoff_from, data_from, caused_by, follows.

OpenTelemetry links are best given when a span starts (samplers see them), so
the helpers return a :class:`LinkSpec` that you pass to any span-creating API::

    with causeline.model_call("openai", "gpt-4o") as first:
        ...                                    # fails
    with causeline.model_call("anthropic", "claude-sonnet-4-5",
                              links=[causeline.fallback(of=first)]) as second:
        ...

or use the shortcut keywords (``fallback_of=``, ``retry_of=``,
``uses_output_of=``, ``handoff_from=``). A link can also be added to a span that
is already running with ``handle.add_link(spec)`` or :func:`causeline.add_link`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext

from . import _internal
from . import attributes as A

SpanRef = Any  # a causeline span handle, an OpenTelemetry Span, or a SpanContext


class LinkSpec:
    """A link to another span with a Causeline relation (``causeline.link.type``)."""

    __slots__ = ("target", "type", "attempt", "attributes")

    def __init__(
        self,
        target: SpanRef,
        type: str | None,
        attempt: int | None = None,
        attributes: dict[str, Any] | None = None,
    ):
        if type is not None and type not in A.LINK_TYPES:
            try:
                raise ValueError(f"unknown link type {type!r}; expected one of {sorted(A.LINK_TYPES)}")
            except ValueError as exc:
                _internal.handle(exc, "link type")
        self.target = target
        self.type = type
        self.attempt = attempt
        self.attributes = attributes

    def span_context(self) -> SpanContext | None:
        return span_context_of(self.target)

    def to_otel(self) -> Link | None:
        ctx = self.span_context()
        if ctx is None or not ctx.is_valid:
            return None
        attrs: dict[str, Any] = dict(self.attributes) if self.attributes else {}
        if self.type is not None:
            attrs[A.LINK_TYPE] = self.type
        return Link(ctx, attrs)

    def __repr__(self) -> str:
        return f"LinkSpec(type={self.type!r}, attempt={self.attempt!r}, target={self.target!r})"


def span_context_of(ref: SpanRef) -> SpanContext | None:
    """The SpanContext behind a handle, an OTel span or a SpanContext (None if unknown)."""
    if ref is None:
        return None
    if isinstance(ref, SpanContext):
        return ref
    if isinstance(ref, LinkSpec):
        return ref.span_context()
    get = getattr(ref, "get_span_context", None)
    if callable(get):
        return get()
    span = getattr(ref, "span", None)
    if span is not None and span is not ref:
        return span_context_of(span)
    return None


def _next_attempt(ref: SpanRef, attempt: int | None) -> int:
    if attempt is not None:
        return int(attempt)
    prev = getattr(ref, "attempt", None)
    return (prev + 1) if isinstance(prev, int) and not isinstance(prev, bool) else 2


def fallback(of: SpanRef, attempt: int | None = None) -> LinkSpec:
    """This span is a fallback for the failed span ``of`` (e.g. another model).

    ``attempt`` (1-based) defaults to the failed attempt's number plus one.
    """
    return LinkSpec(of, A.LINK_FALLBACK_OF, _next_attempt(of, attempt))


def retry(of: SpanRef, attempt: int | None = None) -> LinkSpec:
    """This span retries the failed span ``of`` (same operation again)."""
    return LinkSpec(of, A.LINK_RETRY_OF, _next_attempt(of, attempt))


def uses_output_of(span: SpanRef) -> LinkSpec:
    """This span consumed the output of ``span`` (data lineage, ``data_from``)."""
    return LinkSpec(span, A.LINK_DATA_FROM)


def handoff_from(span: SpanRef) -> LinkSpec:
    """This agent span took over from the handoff span ``span``."""
    return LinkSpec(span, A.LINK_HANDOFF_FROM)


def caused_by(span: SpanRef) -> LinkSpec:
    """This span happened because of ``span`` (e.g. a compensating action)."""
    return LinkSpec(span, A.LINK_CAUSED_BY)


def follows(span: SpanRef) -> LinkSpec:
    """This span follows ``span`` (ordering without parenthood, e.g. queued work)."""
    return LinkSpec(span, A.LINK_FOLLOWS)


def link(span: SpanRef, type: str | None = None) -> LinkSpec:
    """A link of any Causeline relation (``retry_of``, ``fallback_of``, ``handoff_from``,
    ``data_from``, ``caused_by``, ``follows``); ``None`` makes a plain, untyped link."""
    return LinkSpec(span, type)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def build_links(
    links: Iterable[Any] | None = None,
    *,
    fallback_of: SpanRef = None,
    retry_of: SpanRef = None,
    uses_output_of: SpanRef = None,
    handoff_from: SpanRef = None,
    attempt: int | None = None,
) -> tuple[list[Link], int | None]:
    """Turn user link arguments into OTel links; also return the attempt number."""
    specs: list[LinkSpec] = []
    for item in _as_list(links):
        if isinstance(item, LinkSpec):
            specs.append(item)
        elif isinstance(item, Link):
            specs.append(item)  # type: ignore[arg-type]
        else:  # a bare span reference: a plain, untyped link
            specs.append(LinkSpec(item, None))
    if fallback_of is not None:
        specs.append(fallback(fallback_of, attempt))
    if retry_of is not None:
        specs.append(retry(retry_of, attempt))
    for ref in _as_list(uses_output_of):
        specs.append(LinkSpec(ref, A.LINK_DATA_FROM))
    if handoff_from is not None:
        specs.append(LinkSpec(handoff_from, A.LINK_HANDOFF_FROM))

    out: list[Link] = []
    for spec in specs:
        if isinstance(spec, Link):
            out.append(spec)
            continue
        if attempt is None and spec.attempt is not None:
            attempt = spec.attempt
        otel = spec.to_otel()
        if otel is not None:
            out.append(otel)
    return out, attempt


def add_link_to(span: trace.Span, spec: LinkSpec | SpanRef, type: str | None = None) -> None:
    """Add a link to a running span (OpenTelemetry API >= 1.23)."""
    if not isinstance(spec, LinkSpec):
        spec = LinkSpec(spec, type)
    otel = spec.to_otel()
    if otel is None:
        return
    span.add_link(otel.context, otel.attributes)
    if spec.attempt is not None and spec.type in (A.LINK_FALLBACK_OF, A.LINK_RETRY_OF):
        span.set_attribute(A.ATTEMPT, spec.attempt)
