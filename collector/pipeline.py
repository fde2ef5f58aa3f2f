"""From an inflated body to rows ready for the writer. CPU-bound: runs in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from core.normalize import normalize
from core.otlp import Decoded, Limits, decode_json, decode_protobuf
from core.pricing import PriceOverride, price_span
from db.ingest import edge_rows, span_row

from collector.body import JSON


@dataclass
class Prepared:
    rows: list[tuple]
    edges: list[tuple]
    decoded: Decoded


def prepare(
    body: bytes, media: str, *, project_id: int, limits: Limits, overrides: Sequence[PriceOverride],
) -> Prepared:
    """Raises core.otlp.DecodeError when the body is not an OTLP export at all."""
    decoded = decode_json(body, limits) if media == JSON else decode_protobuf(body, limits)
    rows, edges = [], []
    for raw in decoded.spans:
        span = price_span(normalize(raw), overrides)
        scope = f"{raw.scope_name} {raw.scope_version}".strip() or None
        rows.append(span_row(project_id, span, scope))
        edges.extend(edge_rows(project_id, span))
    return Prepared(rows, edges, decoded)
