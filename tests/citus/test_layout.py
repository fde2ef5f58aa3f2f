"""The distributed layout itself: every table placed as db/citus.py says, one project's spans
spread over both workers, and one trace read by a router query (one shard, one task)."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from db.citus import BY_PROJECT, BY_TRACE, LOCAL, REFERENCE, placement
from db.migrate import distribute
from tests import otlp_payloads as P


def test_every_table_is_placed_and_migrate_citus_is_idempotent(pg, engine):
    assert distribute(pg.url) == []  # the session's cluster is already laid out
    with engine.connect() as conn:
        placed = placement(conn)
        tables = set(conn.execute(text(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') "
            "AND NOT relispartition")).scalars())
    assert tables == set(REFERENCE + BY_TRACE + BY_PROJECT + LOCAL), "a new table needs a deliberate placement"
    assert {t for t in REFERENCE if placed[t] != "reference"} == set()
    assert {t for t in BY_TRACE if placed[t] != "distributed(trace_id)"} == set()
    assert {t for t in BY_PROJECT if placed[t] != "distributed(project_id)"} == set()
    assert {t for t in LOCAL if placed[t] != "local"} == set()
    with engine.connect() as conn:
        groups = conn.execute(text(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid::text = ANY(:t)"),
            {"t": list(BY_TRACE)}).scalar_one()
    assert groups == 1  # co-located: a trace's rows of every table on one shard


def _post(collector, spans) -> None:
    response = httpx.post(collector.traces_endpoint, content=P.request(spans).SerializeToString(), timeout=30,
                          headers={"content-type": "application/x-protobuf", **collector.auth()})
    assert response.status_code == 200, response.text


def test_one_projects_spans_spread_over_both_workers_and_a_trace_is_one_shard(collector):
    traces = [P.trace_id() for _ in range(40)]
    for tid in traces:
        root = P.span(tid, P.span_id(), name="invoke_agent a", attributes={"gen_ai.operation.name": "invoke_agent"})
        _post(collector, [root, P.span(tid, P.span_id(), parent=root.span_id, name="chat", attributes=P.llm_attrs())])
    with collector.engine.connect() as conn:
        # Rows of this one project per worker node, counted on each shard placement of spans' partitions.
        per_node = dict(conn.execute(text("""
            SELECT s.nodeport, sum(r.result::bigint)
            FROM pg_dist_partition p
            CROSS JOIN LATERAL run_command_on_shards(
                p.logicalrelid, 'SELECT count(*) FROM %s WHERE project_id = ' || :project) r
            JOIN citus_shards s ON s.shardid = r.shardid
            WHERE p.logicalrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'spans'::regclass)
            GROUP BY s.nodeport"""), {"project": str(collector.project_id)}).all())
        assert sum(per_node.values()) == 80
        workers = set(conn.execute(text("SELECT nodeport FROM pg_dist_node WHERE noderole = 'primary' "
                                        "AND shouldhaveshards AND groupid <> 0")).scalars())
        assert set(per_node) == workers and len(workers) >= 2, per_node  # every worker (a third after a rebalance)
        assert all(n > 0 for n in per_node.values()), per_node

        # Reading one trace (its row, its spans, its edges) is routed to a single shard.
        for query in ("SELECT * FROM traces WHERE project_id = :p AND trace_id = :t",
                      "SELECT * FROM spans WHERE project_id = :p AND trace_id = :t ORDER BY start_ns",
                      "SELECT s.span_id, e.relation FROM spans s JOIN span_edges e ON e.project_id = s.project_id "
                      "AND e.trace_id = s.trace_id AND e.span_id = s.span_id WHERE s.project_id = :p AND s.trace_id = :t"):
            plan = "\n".join(conn.execute(text("EXPLAIN " + query), {"p": collector.project_id, "t": traces[0]})
                             .scalars())
            assert "Task Count: 1\n" in plan, plan
        # While a fleet-wide read of the project fans out over all shards.
        plan = "\n".join(conn.execute(text("EXPLAIN SELECT count(*) FROM spans WHERE project_id = :p"),
                                      {"p": collector.project_id}).scalars())
        assert "Task Count: 1\n" not in plan
