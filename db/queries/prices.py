"""Per-project price overrides."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.price_overrides import PriceOverride  # not core.pricing: that loads genai-prices (the CLI lists overrides)
from db.models import ModelPrice

log = logging.getLogger(__name__)


def price_overrides(session: Session, project_id: int) -> list[PriceOverride]:
    """Valid overrides of the project. A row PriceOverride refuses (say, effective_to before
    effective_from) is skipped and logged: one bad row must not stop ingest for the project."""
    rows = session.scalars(select(ModelPrice).where(ModelPrice.project_id == project_id).order_by(ModelPrice.id))
    overrides = []
    for row in rows:
        try:
            overrides.append(PriceOverride(
                id=row.id, model_pattern=row.model_pattern, provider=row.provider,
                input_per_mtok=row.input_per_mtok, output_per_mtok=row.output_per_mtok,
                cache_read_per_mtok=row.cache_read_per_mtok, cache_write_per_mtok=row.cache_write_per_mtok,
                effective_from=row.effective_from, effective_to=row.effective_to,
            ))
        except ValueError as exc:
            log.warning("price override %s of project %s ignored: %s", row.id, project_id, exc)
    return overrides


def add_price_override(
    session: Session, project_id: int, *, model_pattern: str, provider: str | None,
    input_per_mtok: Decimal, output_per_mtok: Decimal, cache_read_per_mtok: Decimal | None,
    cache_write_per_mtok: Decimal | None, effective_from: datetime, effective_to: datetime | None,
) -> ModelPrice:
    """Validated by PriceOverride first, so a row that could not price is never stored."""
    PriceOverride(
        id=0, model_pattern=model_pattern, provider=provider, input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok, cache_read_per_mtok=cache_read_per_mtok,
        cache_write_per_mtok=cache_write_per_mtok, effective_from=effective_from, effective_to=effective_to,
    )
    row = ModelPrice(
        project_id=project_id, model_pattern=model_pattern, provider=provider, input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok, cache_read_per_mtok=cache_read_per_mtok,
        cache_write_per_mtok=cache_write_per_mtok, effective_from=effective_from, effective_to=effective_to,
    )
    session.add(row)
    session.flush()
    return row


def list_price_overrides(session: Session, project_id: int) -> list[ModelPrice]:
    return list(session.scalars(select(ModelPrice).where(ModelPrice.project_id == project_id).order_by(ModelPrice.id)))


def remove_price_override(session: Session, project_id: int, override_id: int) -> bool:
    row = session.get(ModelPrice, override_id)
    if row is None or row.project_id != project_id:
        return False
    session.delete(row)
    session.flush()
    return True


def models_seen(session: Session, project_id: int) -> list[tuple[str, str]]:
    """(provider, model) pairs this project's model calls requested or were served, from the rollups
    (provider_rollups: the same pairs as usage_rollups, ~4x fewer rows)."""
    rows = session.execute(text("""
        SELECT DISTINCT provider, model FROM (
            SELECT provider, request_model AS model FROM provider_rollups WHERE project_id = :p
            UNION SELECT provider, response_model FROM provider_rollups WHERE project_id = :p
        ) m WHERE model <> '' ORDER BY provider, model
    """), {"p": project_id})
    return [(r.provider, r.model) for r in rows]
