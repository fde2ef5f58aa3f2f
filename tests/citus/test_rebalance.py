"""Growing the cluster: a third worker added to the running cluster, shards rebalanced onto it
(citus_rebalance_start, logical replication), after which one project's spans sit on all three
workers, a trace is still read from one shard, and ingest goes on (docs/scaling.md, Operations)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import otlp_payloads as P
from tests.citus.test_layout import _post

SPANS_PER_NODE = """
SELECT s.nodeport, sum(r.result::bigint)
FROM pg_dist_partition p
CROSS JOIN LATERAL run_command_on_shards(p.logicalrelid, 'SELECT count(*) FROM %s WHERE project_id = ' || :project) r
JOIN citus_shards s ON s.shardid = r.shardid
WHERE p.logicalrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'spans'::regclass)
GROUP BY s.nodeport"""


def _trace(collector) -> bytes:
    tid = P.trace_id()
    root = P.span(tid, P.span_id(), name="invoke_agent a", attributes={"gen_ai.operation.name": "invoke_agent"})
    _post(collector, [root, P.span(tid, P.span_id(), parent=root.span_id, name="chat", attributes=P.llm_attrs())])
    return tid


@pytest.mark.slow
def test_a_third_worker_takes_its_share_of_one_projects_spans_after_a_rebalance(pg, collector):
    if pg.external:
        pytest.skip("adds a worker: only on the cluster this suite started")
    traces = [_trace(collector) for _ in range(40)]
    port = pg.add_worker()
    with collector.engine.connect() as conn:
        conn.execute(text("SELECT citus_rebalance_start()"))
        conn.commit()  # the background job runs only once committed
        conn.execute(text("SELECT citus_rebalance_wait()"))
        state = conn.execute(text("SELECT state FROM citus_rebalance_status() ORDER BY job_id DESC LIMIT 1")).scalar()
        assert state == "finished"

    traces += [_trace(collector) for _ in range(10)]  # ingest after the moves, the new worker included

    with collector.engine.connect() as conn:
        per_node = dict(conn.execute(text(SPANS_PER_NODE), {"project": str(collector.project_id)}).all())
        assert len(per_node) == 3 and port in per_node and all(n > 0 for n in per_node.values()), per_node
        assert sum(per_node.values()) == 2 * len(traces)
        for tid in traces:  # every trace whole, wherever it went, and read from a single shard
            assert conn.execute(text("SELECT span_count FROM traces WHERE project_id = :p AND trace_id = :t"),
                                {"p": collector.project_id, "t": tid}).scalar() == 2
        plan = "\n".join(conn.execute(text("EXPLAIN SELECT * FROM spans WHERE project_id = :p AND trace_id = :t"),
                                      {"p": collector.project_id, "t": traces[0]}).scalars())
        assert "Task Count: 1\n" in plan, plan
        assert conn.execute(text("SELECT sum(calls) FROM usage_rollups WHERE project_id = :p"),
                            {"p": collector.project_id}).scalar() == len(traces)
