"""One snapshot for several connections: what lets a report read its sections on one connection
and its digests on another (the database does both at once) and still see one state of the data.

The exporting transaction runs in REPEATABLE READ, so its snapshot is taken by its first
statement (pg_export_snapshot() here) and held until it ends; a transaction on another
connection adopts it with SET TRANSACTION SNAPSHOT before its first query. PostgreSQL refuses
the import once the exporter has ended, so the exporter must stay open until every reader has
started (the caller's with-blocks nest that way). Read only: nothing a report reads may write.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

# What pg_export_snapshot() returns ("00000003-0000001B-1"); SET TRANSACTION SNAPSHOT takes a
# literal, not a parameter, so the id is checked before it is spelled into the statement.
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


def snapshot_bind(engine: Engine) -> Engine:
    """The engine whose sessions run REPEATABLE READ, READ ONLY transactions (the same pool)."""
    return engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


def export_snapshot(session: Session) -> str:
    """Takes the snapshot of `session`'s transaction (a snapshot_bind session, before any other
    query) and names it for other connections."""
    return session.execute(select(func.pg_export_snapshot())).scalar_one()


def use_snapshot(session: Session, snapshot_id: str) -> None:
    """Makes `session`'s transaction (a snapshot_bind session, before any other query) read the
    snapshot another transaction exported."""
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError(f"not a snapshot id: {snapshot_id!r}")
    session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'"))
