"""The distributed layout on a Citus coordinator (`causeline migrate --citus`; docs/scaling.md).

Run after the Alembic migrations, on the coordinator; idempotent (a table already placed is
left as it is, so a second run, or a run after a later migration, only places what is new).

- Span-level tables are hash-distributed on trace_id and co-located: one big project's spans
  spread over every worker, while everything about one trace (its spans, edges, failures, log
  records, duplicate marks) lives on one shard, so reading or attributing a trace is a router
  query and the ingest joins between them never cross shards.
- Rollups and scores are distributed on project_id (co-located with each other): they are
  small, read per project, and a project's rollups are one shard's worth.
- Configuration and identity (projects, users, keys, prices, rules, alert setup) are reference
  tables: a copy on every node, so any shard joins them locally.
- audit_events stays a local table on the coordinator: its triggers (append only) are not
  something Citus runs on shards, and it is written at human rates.
"""

from __future__ import annotations

import weakref

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

# Order matters: a reference table's foreign keys point at reference tables created before it.
REFERENCE = (
    "projects", "users", "memberships", "api_keys", "user_sessions", "model_prices", "redaction_rules",
    "evaluator_rules", "retention_policies", "alert_channels", "alert_rules", "alert_states",
    "alert_deliveries",
)
BY_TRACE = ("traces", "spans", "span_edges", "trace_failures", "genai_log_records", "span_duplicates", "scores",
            "judge_attributions")
BY_PROJECT = ("usage_rollups", "provider_rollups", "tool_rollups", "failure_rollups", "failure_rollup_deltas")
# judge_calls: Citus distributes no table with an identity column; it is written at the judge's
# budgeted rate and read alone, per project, so it stays on the coordinator like the audit trail.
LOCAL = ("audit_events", "alembic_version", "judge_calls")


def routed_chunks(session: Session, items: list) -> list[list]:
    """`items` in one chunk, or on Citus one chunk per item (per run: the caller groups by trace).
    Writes to the span-level tables go one run at a time there: a statement about one trace is
    routed to its shard, where a statement writing several shards (an UPDATE, a DELETE, an
    INSERT ... SELECT) locks every shard it writes, and two collectors' background passes would
    wait on each other instead of each skipping the runs the other holds."""
    if not items:
        return []
    return [[item] for item in items] if on_citus(session) else [list(items)]


def is_citus(conn: Connection) -> bool:
    """True when the citus extension is installed in this database."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar())


def is_distributed(conn: Connection, table: str = "spans") -> bool:
    if not is_citus(conn):
        return False
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(:t))"), {"t": table}).scalar())


_LAYOUT: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def on_citus(session: Session) -> bool:
    """Whether this session's database has the distributed layout (asked once per engine): the
    few statements Citus cannot run take another form there, and only there."""
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)
    if engine not in _LAYOUT:
        _LAYOUT[engine] = is_distributed(session.connection())
    return _LAYOUT[engine]


def placement(conn: Connection) -> dict[str, str]:
    """table -> 'reference', 'distributed(<column>)' or 'local', for this database's tables."""
    rows = conn.execute(text(
        "SELECT logicalrelid::text, partmethod, repmodel, column_to_column_name(logicalrelid, partkey) "
        "FROM pg_dist_partition")).all()
    # A coordinator table with a foreign key to a reference table is a "Citus local" table
    # (no distribution, replication model 's'): still on the coordinator only.
    placed = {name: ("local" if method == "n" and model == "s" else "reference" if method == "n"
                     else f"distributed({column})") for name, method, model, column in rows}
    for table in REFERENCE + BY_TRACE + BY_PROJECT + LOCAL:
        placed.setdefault(table, "local")
    return placed


def distribute(conn: Connection, shard_count: int | None = None) -> list[str]:
    """Place every table; returns what was placed now (empty when all already were).
    shard_count: shards per distributed table (None: citus.shard_count, 32 by default)."""
    if not is_citus(conn):
        raise RuntimeError("the citus extension is not installed in this database (CREATE EXTENSION citus)")
    placed = placement(conn)
    done = []
    for table in REFERENCE:
        if placed[table] == "local":
            conn.execute(text("SELECT create_reference_table(:t)"), {"t": table})
            done.append(table)
    # traces first: the others are co-located with it.
    for table in BY_TRACE:
        if placed[table] == "local":
            colocate = "none" if table == BY_TRACE[0] else BY_TRACE[0]
            _create(conn, table, "trace_id", colocate, shard_count)
            done.append(table)
    for table in BY_PROJECT:
        if placed[table] == "local":
            colocate = "none" if table == BY_PROJECT[0] else BY_PROJECT[0]
            _create(conn, table, "project_id", colocate, shard_count)
            done.append(table)
    return done


def _create(conn: Connection, table: str, column: str, colocate: str, shard_count: int | None) -> None:
    if shard_count is None or colocate != "none":  # a co-located table takes its group's count
        conn.execute(text("SELECT create_distributed_table(:t, :col, colocate_with => :c)"),
                     {"t": table, "col": column, "c": colocate})
    else:
        conn.execute(text("SELECT create_distributed_table(:t, :col, shard_count => :n)"),
                     {"t": table, "col": column, "n": shard_count})
