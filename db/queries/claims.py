"""Claiming pending traces for background work (attribution, evaluation) with SKIP LOCKED, so
several collectors share the work.

One statement on PostgreSQL. Citus locks rows only in a query routed to one shard, and traces are
spread over shards by trace_id: there the candidates are read first, then each is locked by its
key (a router query) if it is still pending and nobody holds it. A candidate taken meanwhile is
skipped, as SKIP LOCKED skips it; the batch may then be smaller, the next round takes the rest.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.citus import on_citus
from db.models import TraceRow


def claim_traces(session: Session, query: Select, pending) -> list:
    """Rows of `query` (its first two columns: project_id, trace_id; it filters on `pending`),
    each locked until the transaction ends."""
    if not on_citus(session):
        return session.execute(query.with_for_update(skip_locked=True)).all()
    claimed = []
    for row in session.execute(query).all():
        locked = session.execute(
            select(TraceRow.trace_id)
            .where(TraceRow.project_id == row[0], TraceRow.trace_id == row[1], pending)
            .with_for_update(skip_locked=True)
        ).first()
        if locked is not None:
            claimed.append(row)
    return claimed
