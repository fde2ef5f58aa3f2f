"""A project's retention as the Settings page and GET /api/settings show it (core/retention.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.retention import DEFAULT_DAYS, DEFAULT_ROLLUP_DAYS, below_floor, effective
from db.queries.retention import policy


class RetentionOut(BaseModel):
    days: int = Field(description="Days spans (with their traces, lineage, root causes, log content) are kept.")
    own_days: bool = Field(description="False: the server's default (CAUSELINE_RETENTION_DAYS).")
    rollup_days: int = Field(description="Days the hourly cost and health rollups are kept.")
    own_rollup_days: bool
    below_floor: bool = Field(description="Shorter than the six months of EU AI Act Articles 19 and 26(6).")
    legal_hold: bool = Field(description="While on hold nothing of the project is deleted.")
    hold_reason: str | None = Field(description="Null unless you manage settings or read the audit trail.")
    span_cutoff: datetime | None = Field(description="Spans that started before it are being deleted; null on hold.")
    rollup_cutoff: datetime | None


def retention_data(session: Session, project_id: int, *, see_reason: bool, default_days: int = DEFAULT_DAYS,
                   default_rollup_days: int = DEFAULT_ROLLUP_DAYS) -> RetentionOut:
    current = policy(session, project_id)
    rule = effective(current, datetime.now(timezone.utc), default_days=default_days,
                     default_rollup_days=default_rollup_days)
    return RetentionOut(
        days=rule.days, own_days=current.days is not None, rollup_days=rule.rollup_days,
        own_rollup_days=current.rollup_days is not None, below_floor=below_floor(rule.days),
        legal_hold=rule.legal_hold, hold_reason=current.hold_reason if see_reason else None,
        span_cutoff=rule.span_cutoff, rollup_cutoff=rule.rollup_cutoff)
