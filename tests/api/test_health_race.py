"""Provider health reads a point's counts and its latency histogram in one statement: a rollup row
committed while it reads (live ingest crossing an hour boundary) is either wholly in the answer or
wholly absent, never counted without its latencies (it once took two statements)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import event, text

from core.latency import BUCKETS
from db.queries.auth import create_project
from db.queries.fleet import Filters, floor_hour
from db.queries.health import fetch_series

ROW = text("""INSERT INTO provider_rollups (project_id, hour, provider, request_model, response_model,
 error_class, calls, errors, retries, fallbacks, unpriced_calls, input_tokens, output_tokens, cache_read_tokens,
 cache_write_tokens, reasoning_tokens, cost_usd, duration_ns, latency_buckets)
 VALUES (:p, :h, 'openai', 'gpt', 'gpt', '', 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0.01, 1000000, :b)""")


def test_row_committed_while_reading(engine, sessionmaker):
    with sessionmaker.begin() as session:
        project_id = create_project(session, "acme").id
    hour = floor_hour(datetime.now(timezone.utc))
    statements = []

    @event.listens_for(engine, "before_cursor_execute")
    def concurrent_writer(conn, cursor, statement, params, context, executemany):
        if "FROM provider_rollups" in statement and "latency_buckets" in statement:
            statements.append(statement)
            if len(statements) == 1:
                with engine.connect() as other:
                    histogram = [0] * BUCKETS
                    histogram[40] = 1
                    other.execute(ROW, {"p": project_id, "h": hour, "b": histogram})
                    other.commit()

    with sessionmaker() as session:
        series = fetch_series(session, Filters(project_id, hour - timedelta(hours=3), hour + timedelta(hours=1)), "hour")
    assert len(statements) == 1
    point = series[("openai", "gpt")][hour]
    assert point.calls == sum(point.histogram) == 1
