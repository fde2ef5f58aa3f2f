"""Retention policies (per project) and the small deletes that enforce them where no whole
partition can go (core/retention.py holds the rules, server/maintenance.py runs them).

Every delete takes at most `limit` rows, found through an index whose leading columns are
(project_id, time or trace): one short transaction each, so no long lock is held and
autovacuum reuses the space as it goes. Functions take a session and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.retention import Policy
from db.citus import on_citus
from db.models import Project, RetentionPolicy


def policies(session: Session) -> list[Policy]:
    """One per project (the default where it has no row of its own)."""
    rows = session.execute(
        select(Project.id, RetentionPolicy.days, RetentionPolicy.rollup_days, RetentionPolicy.legal_hold,
               RetentionPolicy.hold_reason)
        .outerjoin(RetentionPolicy, RetentionPolicy.project_id == Project.id).order_by(Project.id)
    ).all()
    return [Policy(r.id, r.days, r.rollup_days, bool(r.legal_hold), r.hold_reason) for r in rows]


def policy(session: Session, project_id: int) -> Policy:
    row = session.get(RetentionPolicy, project_id)
    if row is None:
        return Policy(project_id)
    return Policy(project_id, row.days, row.rollup_days, row.legal_hold, row.hold_reason)


def _upsert(session: Session, project_id: int, **values) -> None:
    # now() through `excluded`: Citus runs no non-IMMUTABLE function in DO UPDATE SET.
    statement = insert(RetentionPolicy).values(project_id=project_id, updated_at=text("now()"), **values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[RetentionPolicy.project_id],
        set_={**values, "updated_at": statement.excluded.updated_at}))


def set_days(session: Session, project_id: int, days: int | None, rollup_days: int | None) -> None:
    """None sets a value back to the server's default."""
    _upsert(session, project_id, days=days, rollup_days=rollup_days)


def set_hold(session: Session, project_id: int, hold: bool, reason: str | None) -> None:
    lock_holds(session, exclusive=True)
    _upsert(session, project_id, legal_hold=hold, hold_reason=reason if hold else None)


HOLD_LOCK = 0x401D  # advisory lock: a hold and a deleting transaction never interleave


def lock_holds(session: Session, *, exclusive: bool = False) -> None:
    """Every deleting transaction takes it shared, a hold change exclusively: a deletion either
    commits before the hold or sees it."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    session.execute(text(f"SELECT {function}(:k)"), {"k": HOLD_LOCK})


def held_projects(session: Session) -> set[int]:
    """Projects on legal hold now (call after lock_holds, in the deleting transaction)."""
    return set(session.execute(select(RetentionPolicy.project_id).where(RetentionPolicy.legal_hold)).scalars())


# -- enforcement --------------------------------------------------------------------------------

_SPANS = text("""
DELETE FROM spans WHERE project_id = :p AND start_time < :cutoff
  AND (project_id, trace_id, span_id, start_time) IN (
    SELECT project_id, trace_id, span_id, start_time FROM spans
    WHERE project_id = :p AND start_time < :cutoff LIMIT :n)
""")

# A trace goes once its last span is past retention: its rollup row, lineage edges, root
# causes, log content, duplicate marks and scores (all keyed by (project_id, trace_id)).
_EXPIRED_TRACES = text("""
SELECT trace_id FROM traces WHERE project_id = :p AND start_time < :cutoff AND end_time < :cutoff LIMIT :n
""")
_BY_TRACE = tuple(text(f"DELETE FROM {table} WHERE project_id = :p AND trace_id = ANY(:ids)")
                  for table in ("span_edges", "trace_failures", "genai_log_records", "span_duplicates", "scores",
                                "judge_attributions", "traces"))

# Log content no span claims (it may arrive alone), by its own time.
_LOG_RECORDS = text("""
DELETE FROM genai_log_records WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM genai_log_records WHERE project_id = :p AND time_ns < :cutoff_ns LIMIT :n))
""")
ROLLUP_TABLES = ("usage_rollups", "provider_rollups", "tool_rollups", "failure_rollups", "failure_rollup_deltas")
_ROLLUPS = tuple(text(f"""
DELETE FROM {table} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM {table} WHERE project_id = :p AND hour < :cutoff LIMIT :n))
""") for table in ROLLUP_TABLES)


# Citus has no ctid across shards: there the same batches are chosen by primary key.
_KEYS = {"genai_log_records": "project_id, trace_id, span_id, record_key",
         "usage_rollups": "project_id, hour, service, provider, request_model, response_model, agent, error_class",
         "provider_rollups": "project_id, hour, provider, request_model, response_model, error_class",
         "tool_rollups": "project_id, hour, service, agent, tool, error_class",
         "failure_rollups": "project_id, hour, dim, grp",
         "failure_rollup_deltas": "project_id, id"}
_LOG_RECORDS_BY_KEY = text(f"""
DELETE FROM genai_log_records WHERE project_id = :p AND ({_KEYS["genai_log_records"]}) IN (
    SELECT {_KEYS["genai_log_records"]} FROM genai_log_records WHERE project_id = :p AND time_ns < :cutoff_ns LIMIT :n)
""")
_ROLLUPS_BY_KEY = tuple(text(f"""
DELETE FROM {table} WHERE project_id = :p AND ({_KEYS[table]}) IN (
    SELECT {_KEYS[table]} FROM {table} WHERE project_id = :p AND hour < :cutoff LIMIT :n)
""") for table in ROLLUP_TABLES)


def delete_spans(session: Session, project_id: int, cutoff: datetime, limit: int) -> int:
    return session.execute(_SPANS, {"p": project_id, "cutoff": cutoff, "n": limit}).rowcount


def delete_traces(session: Session, project_id: int, cutoff: datetime, limit: int) -> int:
    ids = session.execute(_EXPIRED_TRACES, {"p": project_id, "cutoff": cutoff, "n": limit}).scalars().all()
    if ids:
        for statement in _BY_TRACE:
            session.execute(statement, {"p": project_id, "ids": ids})
    return len(ids)


def delete_log_records(session: Session, project_id: int, cutoff: datetime, limit: int) -> int:
    cutoff_ns = int(cutoff.timestamp()) * 1_000_000_000
    statement = _LOG_RECORDS_BY_KEY if on_citus(session) else _LOG_RECORDS
    return session.execute(statement, {"p": project_id, "cutoff_ns": cutoff_ns, "n": limit}).rowcount


def delete_rollups(session: Session, project_id: int, cutoff: datetime, limit: int) -> int:
    return sum(session.execute(statement, {"p": project_id, "cutoff": cutoff, "n": limit}).rowcount
               for statement in (_ROLLUPS_BY_KEY if on_citus(session) else _ROLLUPS))
