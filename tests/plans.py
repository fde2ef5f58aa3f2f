"""Reading EXPLAIN output when `spans` is partitioned: each partition has its own copy of every
index (spans_p20261201_pkey for pk_spans, ...). `indexes_used` names the parent indexes a plan
reads, through whichever partitions."""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from sqlalchemy import event, text


def indexes_used(session, plan: str) -> set[str]:
    """Names of the indexes (parents, for partitions' indexes) that appear in `plan`."""
    rows = session.execute(text("""
        SELECT c.relname, COALESCE(p.relname, c.relname) FROM pg_class c
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
        WHERE c.relkind IN ('i', 'I') AND c.relnamespace = 'public'::regnamespace""")).all()
    return {parent for name, parent in rows if re.search(rf"\b{re.escape(name)}\b", plan)}


@contextlib.contextmanager
def statements_of(session) -> Iterator[list[tuple[str, object]]]:
    """Collects (statement, parameters) of what the session runs inside the block, as sent to the driver."""
    connection = session.connection()
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(connection, "before_cursor_execute", capture)


def explain(session, statement: str, parameters) -> str:
    """EXPLAIN of a statement collected by statements_of, with its own parameters."""
    return "\n".join(row[0] for row in session.connection().exec_driver_sql("EXPLAIN " + statement, parameters))
