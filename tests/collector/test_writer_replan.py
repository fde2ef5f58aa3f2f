"""The writer's cached plans follow the tables as they fill (db.ingest.replan, collector/writer.py).

A plan cached while a partition is empty reads the de-duplication facts of a trace through
(project_id, start_time): every span stored after the trace's start, so each small request cost
more as the partition filled (docs/scaling.md). replan() drops the cached plans; the next use
plans for the partition as it is now and reads the trace's own spans by its key."""

from __future__ import annotations

import time

import psycopg
import pytest

from collector.pipeline import prepare_copy
from collector.writer import BatchWriter
from core.otlp import Limits
from db.engine import libpq_url
from db.ingest import prepare_connection, replan, write_encoded
from db.ingest_dedup import FACTS_SQL
from tests import otlp_payloads as P

PROTOBUF = "application/x-protobuf"


def agent_run(start_ns: int) -> bytes:
    """An agent and its three model calls: what FACTS_SQL looks at."""
    tid, root = P.trace_id(), P.span_id()
    spans = [P.span(tid, root, name="invoke_agent support", start=start_ns, duration=10_000_000,
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})]
    spans += [P.span(tid, P.span_id(), parent=root, name="chat gpt-4o", start=start_ns + i * 1_000_000,
                     attributes=P.llm_attrs()) for i in range(3)]
    return P.request(spans).SerializeToString()


def encoded(project_id: int, runs: int, start_ns: int) -> list:
    return [prepare_copy(agent_run(start_ns + i * 1_000), PROTOBUF, project_id=project_id, limits=Limits(),
                         overrides=()).data for i in range(runs)]


def scans_of(plan: dict, relation: str, alias: str) -> list[dict]:
    """The plan nodes reading `relation` under an alias starting with `alias`."""
    found = []
    stack = [plan["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == relation and node.get("Alias", "").startswith(alias):
            found.append(node)
        stack.extend(node.get("Plans", []))
    return found


def cached_plan(conn: psycopg.Connection) -> dict:
    return conn.execute("EXPLAIN (FORMAT JSON) EXECUTE facts").fetchone()[0][0]


@pytest.fixture
def writer_conn(database_url):
    conn = psycopg.connect(libpq_url(database_url))
    prepare_connection(conn)
    project_id = conn.execute("INSERT INTO projects (name, slug) VALUES ('replan', 'replan') RETURNING id").fetchone()[0]
    # No analyze may correct the plan behind the test's back (the situation replan() is for).
    conn.execute("ALTER TABLE spans_default SET (autovacuum_enabled = off)")
    conn.commit()
    yield conn, project_id
    conn.close()


def test_replan_reads_a_filled_partition_by_trace(writer_conn):
    conn, project_id = writer_conn
    conn.execute(f"PREPARE facts AS {FACTS_SQL}")
    empty = cached_plan(conn)
    # P.BASE_NS is a day without a partition of its own: the spans land in spans_default.
    # Without statistics the planner takes the key from about 2,400 spans on (PostgreSQL 15/16).
    for i in range(0, 1200, 100):
        write_encoded(conn, encoded(project_id, 100, P.BASE_NS + i * 1_000_000))
    assert conn.execute("SELECT count(*) FROM spans_default").fetchone()[0] == 4800

    cached = cached_plan(conn)
    replan(conn)
    fresh = cached_plan(conn)

    def by_trace(plan: dict) -> bool:
        nodes = scans_of(plan, "spans_default", "m")
        assert nodes, "the candidates read no longer scans spans_default"
        return all("trace_id" in node.get("Index Cond", "") for node in nodes)

    # The plan made on the empty partition is kept while it fills, and reads a trace's facts
    # through every span after its start; planned again, it reads the trace by its key.
    assert cached == empty and not by_trace(cached)
    assert by_trace(fresh)


def test_writer_keeps_writing_through_replans(database_url, monkeypatch):
    """Plans dropped before every batch: psycopg's prepared statements (made after 5 uses) stay
    valid, and every batch is written."""
    monkeypatch.setattr("collector.writer.REPLAN_SECONDS", 0.0)
    with psycopg.connect(libpq_url(database_url)) as conn:
        project_id = conn.execute(
            "INSERT INTO projects (name, slug) VALUES ('replan', 'replan') RETURNING id").fetchone()[0]
    writer = BatchWriter(libpq_url(database_url), max_queue_spans=10_000, batch_max_spans=512, batch_max_wait_ms=0,
                         connections=1)
    writer.start()
    try:
        now_ns = time.time_ns()
        for data in encoded(project_id, 12, now_ns):
            assert writer.submit(data).result(timeout=30).inserted == 4
    finally:
        writer.stop()
    assert writer.stats.batches == 12 and writer.stats.failures == 0
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM spans WHERE project_id = %s", (project_id,)).fetchone()[0] == 48
