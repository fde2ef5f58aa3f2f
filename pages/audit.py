"""The Audit page's data and GET /api/audit: the project's trail, filtered, with the chain head."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.permissions import Principal
from db.models import AuditEvent
from db.queries.audit import events, head

MAX_LIMIT = 500


class AuditEventOut(BaseModel):
    seq: int = Field(description="Position in the project's chain: 1, 2, 3 ... without gaps.")
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    client_addr: str | None
    details: dict[str, Any]
    hash: str = Field(description="SHA-256 of the event's canonical form, which includes the previous hash (hex).")


class AuditOut(BaseModel):
    project: str
    head_seq: int
    head_hash: str = Field(description="The chain's newest hash: reports carry it, so later tampering shows.")
    filters: dict[str, str]
    events: list[AuditEventOut]
    next_before_seq: int | None = Field(description="Pass as before_seq for the next (older) page.")


def event_out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut(seq=row.seq, at=row.at, actor=row.actor, action=row.action, target=row.target,
                         outcome=row.outcome, client_addr=row.client_addr, details=row.details, hash=row.hash.hex())


def audit_data(session: Session, principal: Principal, *, actor: str | None = None, action: str | None = None,
               target: str | None = None, since: datetime | None = None, until: datetime | None = None,
               before_seq: int | None = None, limit: int = 100) -> AuditOut:
    rows = events(session, principal.project_id, actor=actor, action=action, target=target, since=since,
                  until=until, before_seq=before_seq, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    tip = head(session, principal.project_id)
    filters = {k: v for k, v in dict(actor=actor, action=action, target=target,
                                      since=since.isoformat() if since else None,
                                      until=until.isoformat() if until else None).items() if v}
    return AuditOut(project=principal.project_slug, head_seq=tip.seq, head_hash=tip.hash.hex(), filters=filters,
                    events=[event_out(r) for r in rows], next_before_seq=rows[-1].seq if more and rows else None)
