"""Ingest while retention runs: spans/s with and without the maintenance job deleting at the same time.

    .venv/bin/python bench/retention.py [--old 200000] [--spans 100000] [--clients 4]

Fills a database with `--old` expired spans in two other projects (half in days that can be
dropped whole, half in days that a third project with a long retention still needs, so they go in
batches of CAUSELINE_RETENTION_BATCH_ROWS), then starts `causeline serve --only collector` and sends
`--spans` spans twice: once alone, once while server/maintenance.py's round runs in this process.
Last line: {"spans_per_s_alone": ..., "spans_per_s_during_retention": ..., "retention_s": ...,
"rows_deleted": ..., "partitions_dropped": ...}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from bench.benchdb import bench_database  # noqa: E402
from bench.ingest import agent_trace, send_all, start_collector  # noqa: E402
from db.engine import libpq_url, make_sessionmaker, sqlalchemy_url  # noqa: E402
from server.maintenance import Maintenance  # noqa: E402
from tests import otlp_payloads as P  # noqa: E402

FILL = """
INSERT INTO spans (project_id, trace_id, span_id, name, kind, category, start_time, end_time, start_ns, duration_ns,
                   status, attributes, events, links, resource, input)
SELECT %(project)s, decode(lpad(to_hex(g / 10), 32, '0'), 'hex'), decode(lpad(to_hex(g), 16, '0'), 'hex'),
       'chat gpt-4o', 1, 'llm', t, t, 0, 1000, 'ok', '{"gen_ai.request.model": "gpt-4o"}', '[]', '[]', '{}',
       repeat('old prompt ', 40)
FROM generate_series(1, %(n)s) AS g,
     LATERAL (SELECT now() - make_interval(days => %(age)s + g %% %(days)s)) AS d(t)
"""
TRACES = """
INSERT INTO traces (project_id, trace_id, start_time, end_time, span_count, error_count, llm_calls, unpriced_calls,
                    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
                    agents, models, services)
SELECT project_id, trace_id, min(start_time), max(end_time), count(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}', '{}', '{}'
FROM spans WHERE project_id = %(project)s GROUP BY 1, 2
"""


def payloads(first_trace: int, total: int, batch: int = 512) -> tuple[list[bytes], int]:
    rng, out, pending, count, trace_no = random.Random(first_trace), [], [], 0, first_trace
    while count < total:
        trace_no += 1
        for pb in agent_trace(rng, trace_no):
            pending.append(pb)
            count += 1
            if len(pending) == batch:
                out.append(P.request(pending, service="bench-agent").SerializeToString())
                pending = []
    if pending:
        out.append(P.request(pending, service="bench-agent").SerializeToString())
    return out, count


def fill(url: str, old: int) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        for slug in ("short", "dropped"):
            conn.execute("INSERT INTO projects (slug, name) VALUES (%s, %s)", (slug, slug))
        ids = dict(conn.execute("SELECT slug, id FROM projects").fetchall())
        # The ingesting project keeps everything (its bench spans are from 2025); "short" keeps 30 days.
        conn.execute("INSERT INTO retention_policies (project_id, days) VALUES (%s, 3000), (%s, 30)",
                     (ids["default"], ids["short"]))
        for day in range(8):  # partitions for the old days (the migration made them for days with data only)
            for age in (60 + day, 200 + day):
                conn.execute(f"CREATE TABLE IF NOT EXISTS spans_p{_day(conn, age)} PARTITION OF spans FOR VALUES "
                             f"FROM ('{_day(conn, age, iso=True)}') TO ('{_day(conn, age - 1, iso=True)}')")
        conn.execute(FILL, {"project": ids["short"], "n": old // 2, "age": 60, "days": 7})
        conn.execute(FILL, {"project": ids["dropped"], "n": old // 2, "age": 200, "days": 7})
        # The long-lived project also has a little in the short project's days, so they cannot be dropped.
        conn.execute(FILL, {"project": ids["default"], "n": 70, "age": 60, "days": 7})
        for slug in ("short", "dropped"):
            conn.execute(TRACES, {"project": ids[slug]})
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _day(conn, age: int, iso: bool = False) -> str:
    query = ("SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => %s))::date"
             + ("::text" if iso else ""))
    value = conn.execute(query, (age,)).fetchone()[0]
    return f"{value} 00:00:00+00" if iso else value.strftime("%Y%m%d")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", type=int, default=200_000)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with bench_database("causeline_bench_retention") as url:
        (alone, n_alone), (during, n_during) = payloads(0, args.spans), payloads(10**6, args.spans)
        process, base = start_collector(url)  # bootstraps the default project (id 1)
        try:
            started = time.perf_counter()
            fill(url, args.old)
            print(f"filled {args.old} expired spans in {time.perf_counter() - started:.1f} s", flush=True)
            elapsed_alone, _ = send_all(base, alone, args.clients)
            engine = create_engine(sqlalchemy_url(url), pool_size=2)
            keeper = Maintenance(make_sessionmaker(engine))
            result: dict = {}

            def enforce() -> None:
                began = time.perf_counter()
                done = keeper.run_once()
                result.update(retention_s=time.perf_counter() - began, done=done)

            thread = threading.Thread(target=enforce)
            thread.start()
            elapsed_during, _ = send_all(base, during, args.clients)
            ingest_finished_first = thread.is_alive()
            thread.join()
            engine.dispose()
        finally:
            process.terminate()
            process.wait(60)
        with psycopg.connect(libpq_url(url)) as conn:
            stored = conn.execute("SELECT count(*) FROM spans WHERE project_id = 1").fetchone()[0]
            left = conn.execute("SELECT count(*) FROM spans WHERE project_id <> 1").fetchone()[0]
        done = result["done"]
        deleted = sum(sum(counts.values()) for counts in done.deleted.values())
        print(f"alone: {n_alone / elapsed_alone:,.0f} spans/s; during retention: {n_during / elapsed_during:,.0f} "
              f"spans/s (retention {result['retention_s']:.1f} s, {'longer' if ingest_finished_first else 'shorter'} "
              f"than the ingest run); dropped {done.dropped}; deleted {done.deleted}; stored {stored}, "
              f"expired left {left}", flush=True)
        print(json.dumps({"spans_per_s_alone": round(n_alone / elapsed_alone),
                          "spans_per_s_during_retention": round(n_during / elapsed_during),
                          "retention_s": round(result["retention_s"], 2), "rows_deleted": deleted,
                          "partitions_dropped": len(done.dropped), "stored_ok": stored == n_alone + n_during + 70 and left == 0}))


if __name__ == "__main__":
    main()
