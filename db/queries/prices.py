"""Per-project price overrides."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.pricing import PriceOverride
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
