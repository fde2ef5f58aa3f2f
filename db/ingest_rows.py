"""A span as the writer's staging rows, and those rows as COPY data: pure, no database driver.

Runs in the decoder worker processes (collector/pipeline.py), which import this and not db/ingest.py:
the driver (psycopg, libpq and its TLS and Kerberos libraries) would add ~20 MB to each worker
for nothing. db/ingest.py writes what this encodes; STAGE_SPAN_COLUMNS there is the row layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import orjson

from core.coerce import as_count
from core.model_call_dedup import response_id
from core.span import Event, Link, Span


@dataclass(frozen=True)
class Encoded:
    """One request's rows as COPY data for stage_spans and stage_edges (text format, UTF-8)."""
    spans: bytes
    edges: bytes
    count: int  # span rows

    @property
    def nbytes(self) -> int:
        return len(self.spans) + len(self.edges)


def _dumps(value) -> str:
    # orjson: ~5x faster than json on the ingest hot path; default=str covers bytes-like oddities.
    return orjson.dumps(value, default=str).decode()


def _events_json(events: Sequence[Event]) -> str:
    return _dumps([{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in events])


def _links_json(links: Sequence[Link]) -> str:
    return _dumps([
        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(), "relation": link.relation,
         "attributes": link.attributes}
        for link in links
    ])


def span_row(project_id: int, span: Span, scope: str | None = None) -> tuple:
    tokens = span.tokens
    return (
        project_id, span.trace_id, span.span_id, span.parent_span_id, span.name, span.otel_kind,
        span.category, span.operation, span.start_ns, span.end_ns, span.status, span.status_message,
        span.error_type, span.error_class, span.service_name, span.agent_name, span.tool_name,
        span.provider, span.request_model, span.response_model,
        tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning,
        span.cost_usd, span.cost_source, span.reported_cost_usd, span.session_id, span.user_id,
        span.input, span.output, _dumps(span.attributes), _events_json(span.events),
        _links_json(span.links), _dumps(span.resource), scope, retry_kind(span),
        response_id(span.attributes) if span.is_model_call else None,
    )


def retry_kind(span: Span) -> str | None:
    """'fallback' (a fallback_of link), 'retry' (a retry_of link, or causeline.attempt > 1) or None."""
    kind = None
    for link in span.links:
        relation = link.relation
        if relation == "fallback_of":
            return "fallback"
        if relation == "retry_of":
            kind = "retry"
    if kind is None:
        attempt = span.attributes.get("causeline.attempt")
        if attempt is not None and (as_count(attempt) or 0) > 1:
            kind = "retry"
    return kind


def edge_rows(project_id: int, span: Span) -> Iterable[tuple]:
    """Link edges; parent edges are derived from the inserted rows in SQL."""
    for link in span.links:
        yield (project_id, span.trace_id, span.span_id, link.relation, link.trace_id, link.span_id)


# -- text COPY format ---------------------------------------------------------------------------
# Encoded in Python (psycopg formats only for a live connection, and the decoder processes have
# none). Text, not binary: no per-type wire formats (numeric), and as fast to produce here.

def encode(span_rows: Sequence[tuple], edges: Sequence[tuple] = ()) -> Encoded:
    return Encoded(_copy_text(span_rows), _copy_text(edges), len(span_rows))


def _copy_field(value) -> str:
    """The uncommon types (the hot path in _copy_text handles exact str, None, bytes and int)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, bool):  # never a number here: PostgreSQL refuses it rather than coercing it
        text = "true" if value else "false"
    else:
        text = str(value)  # Decimal, str subclasses
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(rows: Iterable[tuple]) -> bytes:
    """Rows in PostgreSQL's text COPY format: tab-separated, \\N for NULL, backslash escapes.

    A string PostgreSQL cannot store (a lone surrogate) is passed through as invalid UTF-8 so that
    PostgreSQL refuses the request's data (400), as it would have refused the value itself."""
    lines = []
    for row in rows:
        fields = []
        add = fields.append
        for value in row:
            kind = type(value)
            if kind is str:
                if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
                    value = (value.replace("\\", "\\\\").replace("\t", "\\t")
                             .replace("\n", "\\n").replace("\r", "\\r"))
                add(value)
            elif value is None:
                add("\\N")
            elif kind is bytes:
                add("\\\\x" + value.hex())  # bytea hex input, its backslash escaped for COPY
            elif kind is int:
                add(str(value))
            else:
                add(_copy_field(value))
        lines.append("\t".join(fields))
    if not lines:
        return b""
    lines.append("")
    return "\n".join(lines).encode("utf-8", "surrogatepass")
