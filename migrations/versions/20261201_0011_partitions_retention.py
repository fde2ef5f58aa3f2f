"""spans range-partitioned by UTC day of start_time; per-project retention and legal hold

Revision ID: 0011
Revises: 0014
Create Date: 2026-12-01 18:30:00

The primary key gains start_time (a partition key must be part of every unique key): a
redelivered span carries the same start time, lands in the same partition and still
conflicts with itself. The existing rows are copied into the partitioned table (PostgreSQL
cannot partition a table in place): one daily partition per day that has rows in the last
800 days or the next 7, everything else in spans_default. The copy needs the table's size
again in free disk for its duration (docs/operations.md, "Upgrading to partitioned spans").
The server creates further days ahead itself (db/partitions.py).

The downgrade copies back into one table; should two rows share (project, trace, span) with
different start times, the earliest is kept.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0014'
branch_labels = None
depends_on = None

SEARCHED = ("name", "input", "output")  # as in 0010
HISTORY_DAYS = 800
AHEAD_DAYS = 7


def _indexes(table: str) -> None:
    op.execute(f"CREATE INDEX ix_spans_project_start ON {table} (project_id, start_time)")
    for field in SEARCHED:
        op.execute(f"CREATE INDEX ix_spans_{field}_search ON {table} "
                   f"USING gin (to_tsvector('simple'::regconfig, coalesce({field}, '')))")


def _rename_away(table: str, suffix: str) -> None:
    """Free the names the new table takes (constraint and index names are per schema)."""
    op.execute(f"ALTER TABLE spans RENAME TO {table}")
    op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT pk_spans TO pk_spans_{suffix}")
    for index in ("ix_spans_project_start", *(f"ix_spans_{f}_search" for f in SEARCHED)):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_{suffix}")


def _columns(conn, table: str) -> str:
    return conn.execute(sa.text(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"), {"t": table}).scalar_one()


def _literal(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=timezone.utc).isoformat(sep=" ")


def upgrade() -> None:
    op.create_table(
        'retention_policies',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=True),
        sa.Column('rollup_days', sa.Integer(), nullable=True),
        sa.Column('legal_hold', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('hold_reason', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_retention_policies_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', name=op.f('pk_retention_policies')),
    )
    # Retention deletes log records nobody's span claims by time (db/queries/retention.py).
    op.create_index('ix_genai_log_records_project_time', 'genai_log_records', ['project_id', 'time_ns'])

    conn = op.get_bind()
    _rename_away("spans_unpartitioned", "old")
    op.execute("CREATE TABLE spans (LIKE spans_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
               "INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (start_time)")
    op.execute("CREATE TABLE spans_default PARTITION OF spans DEFAULT")
    today = datetime.now(timezone.utc).date()
    days = set(conn.execute(sa.text(
        "SELECT DISTINCT (start_time AT TIME ZONE 'UTC')::date FROM spans_unpartitioned "
        "WHERE start_time >= CAST(:lo AS timestamptz) AND start_time < CAST(:hi AS timestamptz)"),
        {"lo": _literal(today - timedelta(days=HISTORY_DAYS)), "hi": _literal(today + timedelta(days=AHEAD_DAYS + 1))},
    ).scalars())
    days |= {today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)}
    for day in sorted(days):
        op.execute(f"CREATE TABLE spans_p{day:%Y%m%d} PARTITION OF spans FOR VALUES "
                   f"FROM ('{_literal(day)}') TO ('{_literal(day + timedelta(days=1))}')")
    columns = _columns(conn, "spans")
    op.execute(f"INSERT INTO spans ({columns}) SELECT {columns} FROM spans_unpartitioned")
    op.execute("DROP TABLE spans_unpartitioned")
    # Keys and indexes built after the copy: one sort per partition instead of row-by-row inserts.
    op.execute("ALTER TABLE spans ADD CONSTRAINT pk_spans PRIMARY KEY (project_id, trace_id, span_id, start_time)")
    _indexes("spans")


def downgrade() -> None:
    conn = op.get_bind()
    _rename_away("spans_partitioned", "part")
    op.execute("CREATE TABLE spans (LIKE spans_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
               "INCLUDING STORAGE INCLUDING COMPRESSION)")
    op.execute("ALTER TABLE spans ADD CONSTRAINT pk_spans PRIMARY KEY (project_id, trace_id, span_id)")
    columns = _columns(conn, "spans")
    op.execute(f"INSERT INTO spans ({columns}) SELECT {columns} FROM spans_partitioned "
               "ORDER BY start_time ON CONFLICT DO NOTHING")
    op.execute("DROP TABLE spans_partitioned")  # its partitions with it
    _indexes("spans")
    op.drop_index('ix_genai_log_records_project_time', table_name='genai_log_records')
    op.drop_table('retention_policies')
