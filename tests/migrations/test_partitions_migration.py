"""0011 partitions a populated `spans` and takes it back, row for row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import create_engine, text

from db.engine import sqlalchemy_url
from db.migrate import alembic_config

INSERT = text(
    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, category, start_time, end_time, start_ns, "
    "duration_ns, status, attributes, events, links, resource, input) "
    "VALUES (:p, :t, :s, 'step', 1, 'llm', :at, :at, :ns, 5, 'ok', '{\"k\": 1}', '[]', '[]', '{}', :content)")


def _moments() -> list[datetime]:
    now = datetime.now(timezone.utc).replace(microsecond=123456)
    return [now, now - timedelta(days=3), now - timedelta(days=400), now + timedelta(days=2),
            datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc), datetime(2100, 6, 1, tzinfo=timezone.utc)]


def _rows(conn):
    return sorted(conn.execute(text(
        "SELECT project_id, trace_id, span_id, start_time, input, attributes FROM spans")).all())


def test_populated_spans_are_partitioned_and_taken_back(pg):
    url = pg.empty_database()
    cfg = alembic_config(url)
    command.upgrade(cfg, "0010")
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            for n, at in enumerate(_moments()):
                conn.execute(INSERT, {"p": 1 + n % 2, "t": bytes([n]) * 16, "s": bytes([n]) * 8, "at": at,
                                      "ns": int(at.timestamp()) * 10**9, "content": f"prompt {n} \\ \t"})
            before = _rows(conn)
        command.upgrade(cfg, "0011")
        with engine.connect() as conn:
            assert _rows(conn) == before
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'spans'")).scalar() == "p"
            placed = dict(conn.execute(text(
                "SELECT tableoid::regclass::text, count(*) FROM spans GROUP BY 1")).all())
            today = datetime.now(timezone.utc)
            # The days that had rows got a partition; 1970 and 2100 wait in the default one.
            assert placed[f"spans_p{today:%Y%m%d}"] == 1
            assert placed[f"spans_p{today - timedelta(days=400):%Y%m%d}"] == 1
            assert placed["spans_default"] == 2
            partitions = set(conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'spans'::regclass")).scalars())
            # Today and a week ahead exist before any span of those days arrives.
            assert {f"spans_p{today + timedelta(days=n):%Y%m%d}" for n in range(8)} <= partitions
            key = conn.execute(text(
                "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
                "CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                "WHERE c.conname = 'pk_spans'")).scalar()
            assert key == ["project_id", "trace_id", "span_id", "start_time"]
        # A later revision adding a column to the partitioned parent reaches every partition.
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE spans ADD COLUMN probe text"))
            assert conn.execute(text("SELECT count(probe) FROM spans_default")).scalar() == 0
            conn.execute(text("ALTER TABLE spans DROP COLUMN probe"))
        command.downgrade(cfg, "0010")
        with engine.connect() as conn:
            assert _rows(conn) == before
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'spans'")).scalar() == "r"
            assert not conn.execute(text("SELECT to_regclass('spans_default')")).scalar()
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert _rows(conn) == before
    finally:
        engine.dispose()
    pg.drop(url)


def test_downgrade_keeps_the_earliest_of_one_span_stored_with_two_start_times(pg):
    url = pg.empty_database()
    cfg = alembic_config(url)
    command.upgrade(cfg, "0011")
    engine = create_engine(sqlalchemy_url(url))
    early = datetime(2026, 11, 30, tzinfo=timezone.utc)
    try:
        with engine.begin() as conn:
            for at in (early + timedelta(days=1), early):
                conn.execute(INSERT, {"p": 1, "t": b"\x01" * 16, "s": b"\x02" * 8, "at": at, "ns": 0, "content": "x"})
        command.downgrade(cfg, "0010")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT start_time FROM spans")).scalars().all() == [early]
    finally:
        engine.dispose()
    pg.drop(url)
