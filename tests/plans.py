"""Reading EXPLAIN output when `spans` is partitioned: each partition has its own copy of every
index (spans_p20261201_pkey for pk_spans, ...). `indexes_used` names the parent indexes a plan
reads, through whichever partitions."""

from __future__ import annotations

import re

from sqlalchemy import text


def indexes_used(session, plan: str) -> set[str]:
    """Names of the indexes (parents, for partitions' indexes) that appear in `plan`."""
    rows = session.execute(text("""
        SELECT c.relname, COALESCE(p.relname, c.relname) FROM pg_class c
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
        WHERE c.relkind IN ('i', 'I') AND c.relnamespace = 'public'::regnamespace""")).all()
    return {parent for name, parent in rows if re.search(rf"\b{re.escape(name)}\b", plan)}
