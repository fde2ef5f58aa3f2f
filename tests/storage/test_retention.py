"""Partitions made ahead, retention by dropped partitions and by batches, legal hold and
de-duplication across partitions: on real PostgreSQL, spans written by the real write path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import text

from collector.pipeline import prepare
from core.otlp import Limits
from core.retention import midnight, partition_name
from db.engine import libpq_url
from db.ingest import prepare_connection, write_batch
from db.partitions import create_partition
from db.queries.auth import create_project
from db.queries.retention import set_days, set_hold
from server.maintenance import Maintenance
from tests import otlp_payloads as P

NOW = datetime.now(timezone.utc)


@pytest.fixture
def writer(database_url):
    conn = psycopg.connect(libpq_url(database_url))
    prepare_connection(conn)
    yield conn
    conn.close()


@pytest.fixture
def projects(sessionmaker):
    with sessionmaker.begin() as session:
        return create_project(session, "short").id, create_project(session, "long").id


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9


def trace_at(moment: datetime, spans: int = 2):
    """A root and model calls under it, all starting at `moment` (+ n µs)."""
    tid, root = P.trace_id(), P.span_id()
    return [P.span(tid, root, name="run", start=ns(moment))] + [
        P.span(tid, P.span_id(), parent=root, name="chat", start=ns(moment) + n * 1000, attributes=P.llm_attrs())
        for n in range(1, spans)]


def write(writer, project_id: int, spans) -> int:
    prepared = prepare(P.request(spans).SerializeToString(), "application/x-protobuf", project_id=project_id,
                       limits=Limits(), overrides=())
    return write_batch(writer, prepared.rows, prepared.edges).inserted


def with_day(engine, moment: datetime) -> None:
    with engine.begin() as conn:
        create_partition(conn, moment.date())


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def partitions(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'spans'::regclass")).scalars())


def keeper(sessionmaker, clock=NOW, **options) -> Maintenance:
    return Maintenance(sessionmaker, pause=0, clock=lambda: clock, **options)


def test_partitions_are_made_ahead_and_take_over_rows_from_the_default(engine, sessionmaker, writer, projects):
    later = NOW + timedelta(days=30)
    assert partition_name(later.date()) not in partitions(engine)
    assert write(writer, projects[0], trace_at(later + timedelta(days=3))) == 2  # clock far ahead: the default
    assert count(engine, "SELECT count(*) FROM spans_default") == 2

    created = keeper(sessionmaker, clock=later).ensure_partitions(later)

    assert created == [(later + timedelta(days=n)).date() for n in range(8)]
    assert {partition_name(day) for day in created} <= partitions(engine)
    assert count(engine, "SELECT count(*) FROM spans_default") == 0
    assert count(engine, f"SELECT count(*) FROM {partition_name((later + timedelta(days=3)).date())}") == 2
    assert keeper(sessionmaker, clock=later).ensure_partitions(later) == []  # once only


def test_a_redelivered_span_lands_once_even_after_its_day_got_a_partition(engine, sessionmaker, writer, projects):
    ahead = NOW + timedelta(days=12)
    spans = trace_at(ahead, spans=3)
    assert write(writer, projects[0], spans) == 3  # into spans_default
    keeper(sessionmaker, clock=ahead).ensure_partitions(ahead)  # a day later its partition exists
    assert write(writer, projects[0], spans) == 0  # the redelivery conflicts in the new partition
    assert count(engine, "SELECT count(*) FROM spans") == 3
    assert count(engine, "SELECT span_count FROM traces") == 3
    assert count(engine, "SELECT sum(calls) FROM usage_rollups") == 2  # counted once


@pytest.mark.parametrize("moment", [datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
                                    datetime(2100, 1, 1, tzinfo=timezone.utc)])
def test_spans_far_outside_the_window_are_stored_once(engine, writer, projects, moment):
    spans = trace_at(moment)
    assert write(writer, projects[0], spans) == 2
    assert write(writer, projects[0], spans) == 0
    assert count(engine, "SELECT count(*) FROM spans_default") == 2


def test_expired_days_are_dropped_whole_and_the_rest_kept(engine, sessionmaker, writer, projects):
    old, recent = NOW - timedelta(days=200), NOW - timedelta(days=10)
    for moment in (old, recent):
        with_day(engine, moment)
        for project_id in projects:
            write(writer, project_id, trace_at(moment))
    before = count(engine, "SELECT COALESCE(max(id), 0) FROM audit_events")  # (the Citus suite keeps the trail)

    done = keeper(sessionmaker).run_once()

    assert done.dropped == [partition_name(old.date())]
    assert partition_name(old.date()) not in partitions(engine)
    assert count(engine, "SELECT count(*) FROM spans") == 4  # the recent day, both projects
    assert count(engine, "SELECT count(*) FROM traces") == 2  # expired traces went with their spans
    assert count(engine, "SELECT count(*) FROM span_edges") == 2
    assert count(engine, "SELECT count(*) FROM usage_rollups WHERE hour < :t", t=old + timedelta(days=1)) == 2
    with engine.connect() as conn:  # the drop and each project's deletions are on the audit trail
        events = conn.execute(text("SELECT project_id, action, details FROM audit_events WHERE id > :b ORDER BY id"),
                              {"b": before}).all()
    assert [(e.project_id, e.action) for e in events] == [
        (projects[0], "retention.enforced"), (projects[1], "retention.enforced"),
        (None, "retention.partitions_dropped")]
    assert events[0].details["traces"] == 1 and events[0].details["days"] == 180


def test_projects_with_different_retention_share_a_day_deleted_in_batches(engine, sessionmaker, writer, projects):
    short, long = projects
    day = NOW - timedelta(days=60)
    with_day(engine, day)
    for _ in range(3):
        short_trace = trace_at(day, spans=3)
        write(writer, short, short_trace)
        write(writer, long, trace_at(day, spans=3))
    with sessionmaker.begin() as session:
        set_days(session, short, 30, None)
        # A score and a duplicate mark of the short project's run go with the run.
        tid, span_id = short_trace[1].trace_id, short_trace[1].span_id
        session.execute(text("INSERT INTO scores (project_id, score_key, trace_id, name, data_type, value, source) "
                             "VALUES (:p, 'k', :t, 'relevance', 'numeric', 0.5, 'api')"), {"p": short, "t": tid})
        session.execute(text("INSERT INTO span_duplicates (project_id, trace_id, span_id, duplicate_of, reason) "
                             "VALUES (:p, :t, :s, :s, 'nested')"), {"p": short, "t": tid, "s": span_id})

    done = keeper(sessionmaker, batch=2).run_once()

    assert done.dropped == []  # the long project still needs this day
    assert count(engine, "SELECT count(*) FROM spans WHERE project_id = :p", p=short) == 0
    assert count(engine, "SELECT count(*) FROM spans WHERE project_id = :p", p=long) == 9
    assert count(engine, "SELECT count(*) FROM traces WHERE project_id = :p", p=short) == 0
    assert count(engine, "SELECT count(*) FROM span_edges WHERE project_id = :p", p=short) == 0
    assert count(engine, "SELECT count(*) FROM scores WHERE project_id = :p", p=short) == 0
    assert count(engine, "SELECT count(*) FROM span_duplicates WHERE project_id = :p", p=short) == 0
    assert done.deleted[short]["spans"] == 9
    assert count(engine, "SELECT count(*) FROM usage_rollups WHERE project_id = :p", p=short) > 0  # rollups stay


def test_legal_hold_suspends_deletion_until_released(engine, sessionmaker, writer, projects):
    held, other = projects
    old = NOW - timedelta(days=300)
    with_day(engine, old)
    write(writer, held, trace_at(old))
    write(writer, other, trace_at(NOW - timedelta(days=250)))  # into the default partition
    with sessionmaker.begin() as session:
        set_hold(session, held, True, "litigation 2026-17")

    done = keeper(sessionmaker).run_once()

    assert done.dropped == [] and held not in done.deleted
    assert count(engine, "SELECT count(*) FROM spans WHERE project_id = :p", p=held) == 2
    assert count(engine, "SELECT count(*) FROM spans WHERE project_id = :p", p=other) == 0  # not held: deleted

    with sessionmaker.begin() as session:
        set_hold(session, held, False, None)
    done = keeper(sessionmaker).run_once()
    assert done.dropped == [partition_name(old.date())]
    assert count(engine, "SELECT count(*) FROM spans") == 0


def test_rollups_keep_their_own_longer_retention(engine, sessionmaker, writer, projects):
    project_id = projects[0]
    for days in (400, 800):
        write(writer, project_id, trace_at(NOW - timedelta(days=days)))
    with sessionmaker.begin() as session:
        set_days(session, project_id, 180, 730)
        for days in (400, 800):  # the failure rollup's hours of those runs (as the attributor writes them)
            session.execute(text("""
                INSERT INTO failure_rollups (project_id, hour, dim, grp, failures, recovered, tokens_burned, cost_burned_usd, cost_recovered_usd, confidence_sum, runs, failed_runs, failed_runs_cost_usd, failed_runs_tokens) VALUES (:p, date_trunc('hour', CAST(:t AS timestamptz), 'UTC'), 'total', '',
                    1, 0, 10, 0.5, 0, 0.9, 1, 1, 0.5, 10)"""), {"p": project_id, "t": NOW - timedelta(days=days)})

    keeper(sessionmaker).run_once()

    assert count(engine, "SELECT count(*) FROM spans") == 0
    for table in ("usage_rollups", "provider_rollups", "failure_rollups"):  # all hourly rollups, the same hours
        hours = count(engine, f"SELECT array_agg(hour) FROM {table}")
        assert [h < midnight(NOW) - timedelta(days=730) for h in hours] == [False]


def test_a_busy_day_is_not_waited_for_its_rows_go_in_batches_and_it_is_dropped_later(engine, sessionmaker, writer,
                                                                                     projects):
    old = NOW - timedelta(days=200)
    with_day(engine, old)
    write(writer, projects[0], trace_at(old, spans=3))
    reader = engine.connect()
    reader.execute(text(f"SELECT count(*) FROM {partition_name(old.date())}"))  # holds a lock on that day

    done = keeper(sessionmaker).run_once()  # neither TRUNCATE nor DETACH may wait for the reader

    assert done.dropped == [] and done.deleted[projects[0]]["spans"] == 3
    assert partition_name(old.date()) in partitions(engine)
    reader.rollback()
    reader.close()
    assert keeper(sessionmaker).run_once().dropped == [partition_name(old.date())]


def test_the_thread_makes_partitions_at_start_and_deletes_nothing_in_its_first_round(engine, sessionmaker, writer,
                                                                                     projects):
    import time

    later = NOW + timedelta(days=40)
    write(writer, projects[0], trace_at(NOW - timedelta(days=400)))  # expired, in the default partition
    thread = keeper(sessionmaker, clock=later, interval=3600)
    thread.start()
    try:
        for _ in range(1200):  # the thread's first round, however slow the machine
            if thread.rounds:
                break
            time.sleep(0.1)
    finally:
        thread.stop()
    assert thread.rounds == 1
    assert partition_name((later + timedelta(days=7)).date()) in partitions(engine)
    assert count(engine, "SELECT count(*) FROM spans") == 2


def test_a_span_being_written_into_an_expired_day_keeps_the_day_from_being_truncated(engine, sessionmaker, writer,
                                                                                     projects, monkeypatch):
    """The check "no kept project has rows in this day" and the TRUNCATE happen under a lock that
    stops new rows: a late span whose insert commits just after the check (the interleaving is
    forced below) is never truncated unseen."""
    import server.maintenance as maintenance
    old = NOW - timedelta(days=200)
    with_day(engine, old)
    write(writer, projects[0], trace_at(old, spans=2))
    late = engine.connect()
    late_span = trace_at(old, spans=1)[0]
    late.execute(text("INSERT INTO spans (project_id, trace_id, span_id, name, kind, category, start_time, end_time, "
                      "start_ns, duration_ns, status, attributes, events, links, resource) VALUES (:p, :t, :s, 'late', "
                      "1, 'other', :at, :at, :ns, 0, 'unset', '{}', '[]', '[]', '{}')"),
                 {"p": projects[1], "t": late_span.trace_id, "s": late_span.span_id, "at": old, "ns": ns(old)})

    checked = maintenance.has_rows_of

    def check_then_let_the_late_span_commit(*args):
        found = checked(*args)
        if not late.closed and late.in_transaction():
            late.commit()  # the race: committed after the check, before the TRUNCATE
        return found
    monkeypatch.setattr(maintenance, "has_rows_of", check_then_let_the_late_span_commit)

    done = keeper(sessionmaker).run_once()  # the day is locked against the insert first: not waited for

    assert partition_name(old.date()) not in done.dropped
    if late.in_transaction():
        late.commit()
    late.close()
    assert count(engine, "SELECT count(*) FROM spans WHERE name = 'late'") == 1  # not truncated away
