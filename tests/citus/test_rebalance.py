"""Growing the cluster: a third worker added to the running cluster, shards rebalanced onto it
(citus_rebalance_start, logical replication), after which one project's spans sit on all three
workers, a trace is still read from one shard, and ingest goes on (docs/scaling.md, Operations)."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.engine import libpq_url
from db.ingest_citus import WRITE_FUNCTION
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
        workers = conn.execute(text("SELECT count(*) FROM pg_dist_node WHERE shouldhaveshards AND groupid > 0")).scalar()
        assert len(per_node) == workers and port in per_node and all(n > 0 for n in per_node.values()), per_node
        assert sum(per_node.values()) == 2 * len(traces)
        for tid in traces:  # every trace whole, wherever it went, and read from a single shard
            assert conn.execute(text("SELECT span_count FROM traces WHERE project_id = :p AND trace_id = :t"),
                                {"p": collector.project_id, "t": tid}).scalar() == 2
        plan = "\n".join(conn.execute(text("EXPLAIN SELECT * FROM spans WHERE project_id = :p AND trace_id = :t"),
                                      {"p": collector.project_id, "t": traces[0]}).scalars())
        assert "Task Count: 1\n" in plan, plan
        assert conn.execute(text("SELECT sum(calls) FROM usage_rollups WHERE project_id = :p"),
                            {"p": collector.project_id}).scalar() == len(traces)


CLIENTS = 3


@pytest.mark.slow
def test_ingest_goes_on_during_a_rebalance_and_every_acknowledged_span_is_stored_once(pg, collector):
    """Clients send whole traces (an agent, a model call, a tool call) through the collector without
    pause while a rebalance moves shards onto a new worker; a refused request is sent again until
    acknowledged (a redelivery must not be counted twice). Afterwards: each trace stored exactly
    once, all of it on its own shard, and the rollups exact."""
    if pg.external:
        pytest.skip("adds a worker: only on the cluster this suite started")
    stop = threading.Event()
    acked: list[tuple[bytes, int, int]] = []  # trace, input tokens, output tokens
    refused: list[int] = []
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        headers = {"content-type": "application/x-protobuf", **collector.auth()}
        n = 0
        try:
            with httpx.Client(timeout=120) as http:
                while not stop.is_set():
                    n += 1
                    tid, inp, out = P.trace_id(), 100 + seed * 1000 + n, 1 + n % 50
                    root = P.span(tid, P.span_id(), name="invoke_agent a",
                                  attributes={"gen_ai.operation.name": "invoke_agent"})
                    body = P.request([root, P.span(tid, P.span_id(), parent=root.span_id, name="chat",
                                                   attributes=P.llm_attrs(inp=inp, out=out)),
                                      P.span(tid, P.span_id(), parent=root.span_id, name="execute_tool t",
                                             attributes={"gen_ai.operation.name": "execute_tool",
                                                         "gen_ai.tool.name": "t"})]).SerializeToString()
                    for _ in range(100):
                        status = http.post(collector.traces_endpoint, content=body, headers=headers).status_code
                        if status == 200:
                            break
                        refused.append(status)
                        time.sleep(0.1)
                    else:
                        raise AssertionError(f"trace {tid.hex()} never acknowledged")
                    acked.append((tid, inp, out))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            stop.set()

    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        port = pg.add_worker()
        with collector.engine.connect() as conn:
            moves_before = len(acked)
            conn.execute(text("SELECT citus_rebalance_start()"))
            conn.commit()  # the background job runs only once committed
            conn.execute(text("SELECT citus_rebalance_wait()"))
            moved = conn.execute(text(
                "SELECT count(*) FILTER (WHERE t.status = 'done'), max(j.state::text) FROM pg_dist_background_task t "
                "JOIN pg_dist_background_job j USING (job_id) WHERE j.job_id = (SELECT max(job_id) "
                "FROM pg_dist_background_job)")).one()
            during = len(acked) - moves_before
        time.sleep(1)  # and some more after the moves
    finally:
        stop.set()
        for thread in clients:
            thread.join(300)
    assert not errors, errors
    assert moved[0] > 0 and moved[1] == "finished", moved
    assert during > 0  # traces were acknowledged while shards moved

    traces = len(acked)
    with collector.engine.connect() as conn:
        p = {"p": collector.project_id}
        assert conn.execute(text("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans "
                                 "WHERE project_id = :p"), p).one() == (3 * traces, 3 * traces)
        per_trace = conn.execute(text("SELECT trace_id, span_count FROM traces WHERE project_id = :p"), p).all()
        assert sorted(per_trace) == sorted((tid, 3) for tid, _, _ in acked)
        # All of a trace on its own shard: a router query (on the trace's shard only) finds all three spans.
        for tid, _, _ in acked:
            assert conn.execute(text("SELECT count(*) FROM spans WHERE project_id = :p AND trace_id = :t"),
                                {**p, "t": tid}).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM span_edges WHERE project_id = :p"), p).scalar() == 2 * traces
        usage = conn.execute(text("SELECT sum(calls), sum(input_tokens), sum(output_tokens), sum(cost_usd) "
                                  "FROM usage_rollups WHERE project_id = :p"), p).one()
        cost = conn.execute(text("SELECT sum(cost_usd) FROM spans WHERE project_id = :p AND category = 'llm'"),
                            p).scalar()
        assert tuple(usage) == (traces, sum(i for _, i, _ in acked), sum(o for _, _, o in acked), cost)
        assert conn.execute(text("SELECT sum(calls) FROM provider_rollups WHERE project_id = :p"), p).scalar() == traces
        assert conn.execute(text("SELECT sum(calls) FROM tool_rollups WHERE project_id = :p"), p).scalar() == traces
        assert conn.execute(text("SELECT count(*) FROM citus_shards WHERE nodeport = :port"),
                            {"port": port}).scalar() > 0
    print(f"{traces} traces acknowledged ({during} during the moves of {moved[0]} shard groups), "
          f"{len(refused)} requests refused and sent again, {collector.service.writer.stats.retries} write retries")


# -- a write racing a shard move ----------------------------------------------------------------------

def _node(url: str, port: int) -> psycopg.Connection:
    """A connection straight to the node on `port` (same server user and database as the coordinator)."""
    return psycopg.connect(libpq_url(make_url(url).set(host="127.0.0.1", port=port).render_as_string(
        hide_password=False)), autocommit=True)


def _wait_for(conn: psycopg.Connection, pattern: str, what: str) -> None:
    """Until a backend of `conn`'s node runs a statement matching `pattern` and waits for a lock."""
    for _ in range(1200):
        if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        (pattern,)).fetchone()[0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {what} waiting for a lock")


@pytest.mark.slow
def test_a_batch_that_waited_for_its_shards_move_is_run_again_on_the_new_node(pg, collector):
    """db/ingest_citus.py's guard: a write routed to the shard's old node waits for the move's last
    step (the shard's metadata lock), finds the shard gone, fails with a serialization failure, and the
    writer runs the batch again, routed to the new node. The test holds the shard's metadata lock on
    the old node (as a concurrent writer would) so that the move and then the batch queue behind it
    in that order; releasing it lets the move finish first."""
    tid = P.trace_id()
    root = P.span(tid, P.span_id(), name="invoke_agent a", attributes={"gen_ai.operation.name": "invoke_agent"})
    spans = [root, P.span(tid, P.span_id(), parent=root.span_id, name="chat", attributes=P.llm_attrs())]
    with psycopg.connect(libpq_url(pg.url), autocommit=True) as coordinator:
        shard, source = coordinator.execute(
            "SELECT s.shardid, s.nodeport FROM citus_shards s "
            "WHERE s.shardid = get_shard_id_for_distribution_column('traces', %s)", (tid,)).fetchone()
        target = coordinator.execute(
            "SELECT nodeport FROM pg_dist_node WHERE noderole = 'primary' AND shouldhaveshards AND isactive "
            "AND nodeport <> %s ORDER BY nodeport LIMIT 1", (source,)).fetchone()[0]
    retries = collector.service.writer.stats.retries
    outcome: dict = {}

    def move() -> None:
        with psycopg.connect(libpq_url(pg.url), autocommit=True) as conn:
            conn.execute("SELECT citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s)",
                         (shard, source, target))
        outcome["moved"] = True

    def post() -> None:
        outcome["status"] = httpx.post(
            collector.traces_endpoint, content=P.request(spans).SerializeToString(), timeout=120,
            headers={"content-type": "application/x-protobuf", **collector.auth()}).status_code

    with _node(pg.url, source) as old:
        holder = _node(pg.url, source)
        holder.autocommit = False
        holder.execute("SELECT lock_shard_metadata(5, ARRAY[%s]::bigint[])", (shard,))  # as a writer holds it
        mover, poster = threading.Thread(target=move), threading.Thread(target=post)
        try:
            mover.start()
            _wait_for(old, "%lock_shard_metadata(7%", "the move's last step")
            poster.start()
            _wait_for(old, f"%{WRITE_FUNCTION}%", "the batch's write on the old node")
        finally:
            holder.rollback()
            holder.close()
            mover.join(300)
            poster.join(300)

    assert outcome == {"moved": True, "status": 200}
    assert collector.service.writer.stats.retries > retries  # the guard's branch, then the retry
    with psycopg.connect(libpq_url(pg.url), autocommit=True) as coordinator:
        assert coordinator.execute("SELECT nodeport FROM citus_shards WHERE shardid = %s", (shard,)).fetchone()[0] \
            == target
        assert coordinator.execute("SELECT count(*), count(DISTINCT span_id) FROM spans WHERE project_id = %s "
                                   "AND trace_id = %s", (collector.project_id, tid)).fetchone() == (2, 2)
        assert coordinator.execute("SELECT span_count FROM traces WHERE project_id = %s AND trace_id = %s",
                                   (collector.project_id, tid)).fetchone()[0] == 2
        assert coordinator.execute("SELECT sum(calls) FROM usage_rollups WHERE project_id = %s",
                                   (collector.project_id,)).fetchone()[0] == 1
    with _node(pg.url, target) as new:  # in the shard's own table on the new node
        assert new.execute(f"SELECT span_count FROM traces_{shard} WHERE trace_id = %s", (tid,)).fetchone()[0] == 2
