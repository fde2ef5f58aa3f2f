"""Every revision walks up and down, and the models match the head schema exactly."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text

from db.engine import sqlalchemy_url
from db.migrate import alembic_config


def test_walk_every_revision_up_and_down(pg):
    url = pg.empty_database()
    cfg = alembic_config(url)
    revisions = list(reversed(list(ScriptDirectory.from_config(cfg).walk_revisions())))
    assert revisions, "no revisions found"
    for rev in revisions:
        command.upgrade(cfg, rev.revision)
    command.check(cfg)  # raises when the models drift from the migrated schema
    for rev in reversed(revisions):
        command.downgrade(cfg, rev.down_revision or "base")
    engine = create_engine(sqlalchemy_url(url))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    pg.drop(url)


def test_primary_keys_match_the_models(database_url, engine):
    """`alembic check` does not compare primary keys: a model's key changed without a
    revision (or the reverse) is caught here."""
    from db.models import Base

    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        stored = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert stored == [c.name for c in table.primary_key.columns], table.name


def test_trace_failures_keeps_root_causes_of_different_traces_with_one_span_id(pg):
    """0005 adds root_trace_id to the key; its downgrade keeps one row per root span id."""
    url = pg.empty_database()
    cfg = alembic_config(url)
    command.upgrade(cfg, "0005")
    engine = create_engine(sqlalchemy_url(url))
    row = ("INSERT INTO trace_failures (project_id, trace_id, root_span_id, root_trace_id, trace_start, "
           "error_class, category, span_name, recovered, trace_failed, confidence, tokens_burned, cost_burned_usd, "
           "duration_ns, propagation_depth, blast_radius, evidence) VALUES (1, '\\x01', '\\x0a', :root, now(), "
           "'timeout', 'tool', 's', false, true, 0.9, 0, 0, 0, 0, 0, '[]')")
    try:
        with engine.begin() as conn:
            conn.execute(text(row), {"root": b"\x01"})
            conn.execute(text(row), {"root": b"\x02"})
        command.downgrade(cfg, "0004")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT root_trace_id FROM trace_failures")).scalars().all() == [b"\x01"]
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    pg.drop(url)


def test_span_digest_is_added_to_stored_rows_and_dropped_again(pg):
    """0023 adds spans.digest to a populated, partitioned spans: every existing row gets its
    v3 leaf (the report's recomputation agrees); the downgrade drops the column and function."""
    from db.models import SpanRow
    from db.queries.reports import leaf_digest

    url = pg.empty_database()
    cfg = alembic_config(url)
    command.upgrade(cfg, "0020")
    engine = create_engine(sqlalchemy_url(url))
    row = ("INSERT INTO spans (project_id, trace_id, span_id, name, kind, category, start_time, end_time, start_ns, "
           "duration_ns, status, input, cost_usd, attributes, events, links, resource) VALUES (1, :t, :s, 'n', 1, "
           "'llm', :at, :at, 0, 5, 'ok', :inp, 0.25, '{\"a\": [1, 2.50]}', '[]', '[]', '{}')")
    try:
        with engine.begin() as conn:
            for i, at in enumerate(("2020-01-01T00:00Z", "2099-06-01T00:00Z", "now")):
                conn.execute(text(row), {"t": bytes([i]) * 16, "s": bytes([i]) * 8, "at": at,
                                         "inp": None if i else "caf\u00e9 \u2713"})
        command.upgrade(cfg, "0023")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'spans'")).scalar() == "p"
            digests = conn.execute(select(SpanRow.digest, leaf_digest())).all()
            assert len(digests) == 3 and all(len(d) == 32 and d == leaf for d, leaf in digests)
        command.downgrade(cfg, "0020")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == 3
            assert conn.execute(text("SELECT count(*) FROM pg_attribute WHERE attname = 'digest' "
                                     "AND attrelid = 'spans'::regclass")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'causeline_span_digest'")
                                ).scalar() == 0
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    pg.drop(url)
