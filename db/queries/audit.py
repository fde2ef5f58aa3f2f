"""The audit trail: append in the caller's transaction, read with filters, walk for verification.

Appends to one chain are serialized by a transaction-scoped advisory lock on the chain, so
concurrent writers (threads, processes, servers) keep one chain without gaps or forks; the
lock is held until the caller's commit, and (chain, seq) is unique as a last line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.audit_chain import GENESIS, AuditRecord, record_hash
from db.models import AuditEvent

LOCK_CLASS = 0x4155  # "AU": the advisory-lock namespace of audit chains
MAX_FIELD = 2000  # targets and detail values are capped: the trail records, it does not store payloads


def _cap(value):
    """Details are flat: strings (capped, NUL-free, no lone surrogates), integers, booleans or None.
    Anything else is stored as its text, so the hash of what is written equals the hash of what
    JSONB gives back (floats and nested values would not round-trip exactly)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    text = str(value).replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= MAX_FIELD else text[:MAX_FIELD] + "…"


def append(session: Session, *, project_id: int | None, actor: str, action: str, target: str | None = None,
           outcome: str = "ok", client_addr: str | None = None, details: dict | None = None) -> AuditEvent:
    """Appends one event to the project's chain, in the caller's transaction (never commits)."""
    chain = project_id or 0
    session.execute(text("SELECT pg_advisory_xact_lock(:cls, :chain)"), {"cls": LOCK_CLASS, "chain": chain})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    record = AuditRecord(chain, seq, datetime.now(timezone.utc), _cap(actor), action, _cap(target), outcome,
                         _cap(client_addr), {str(_cap(k)): _cap(v) for k, v in (details or {}).items()}, prev)
    row = AuditEvent(project_id=project_id, chain=chain, seq=seq, at=record.at, actor=record.actor, action=action,
                     target=record.target, outcome=outcome, client_addr=record.client_addr, details=record.details,
                     prev_hash=prev, hash=record_hash(record))
    session.add(row)
    session.flush()
    return row


def to_record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(row.chain, row.seq, row.at, row.actor, row.action, row.target, row.outcome,
                       row.client_addr, row.details, row.prev_hash)


def walk(session: Session, chain: int | None = None, batch: int = 5000) -> Iterator[tuple[int, AuditRecord, bytes]]:
    """Every event in (chain, seq) order, streamed in keyset pages (bounded memory)."""
    after = (-1, 0)
    while True:
        query = select(AuditEvent).where(func.row(AuditEvent.chain, AuditEvent.seq) > func.row(*after))
        if chain is not None:
            query = query.where(AuditEvent.chain == chain)
        rows = list(session.scalars(query.order_by(AuditEvent.chain, AuditEvent.seq).limit(batch)))
        if not rows:
            return
        for row in rows:
            yield row.id, to_record(row), row.hash
        after = (rows[-1].chain, rows[-1].seq)
        session.expunge_all()


@dataclass(frozen=True)
class Head:
    chain: int
    seq: int
    hash: bytes


def head(session: Session, project_id: int | None) -> Head:
    chain = project_id or 0
    row = session.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain == chain)
                          .order_by(AuditEvent.seq.desc()).limit(1)).one_or_none()
    return Head(chain, row.seq, row.hash) if row else Head(chain, 0, GENESIS)


def events(session: Session, project_id: int, *, actor: str | None = None, action: str | None = None,
           target: str | None = None, since: datetime | None = None, until: datetime | None = None,
           before_seq: int | None = None, limit: int = 100) -> list[AuditEvent]:
    """The project's events, newest first, filtered; `before_seq` pages backwards."""
    query = select(AuditEvent).where(AuditEvent.chain == project_id)
    if actor:
        query = query.where(AuditEvent.actor.contains(actor, autoescape=True))
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if target:
        query = query.where(AuditEvent.target.contains(target, autoescape=True))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if before_seq:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit)))
