"""Failure attribution time for one synthetic 1,000-span trace, against a baseline measured in
the same run: building the trace's parent/children map (the least any tree algorithm does).

    .venv/bin/python bench/attribution.py [--spans 1000] [--runs 50] [--db]

The trace: an agent with steps; each step has model calls (some rate limited and retried,
some timing out and falling back), tool calls (some failing, consumed through data_from
links), a guardrail; a third of the steps fail up to the root. `--db` also times the whole
per-trace path on PostgreSQL (DATABASE_URL, or an embedded server): load spans + edges
(with the linked-trace CTE) and attribute — what GET /api/traces/{id}/attribution does.
Last line: {"spans": ..., "attribution_ms": ..., "baseline_ms": ..., "ratio": ..., "db_ms": ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.attribution import attribute  # noqa: E402
from core.forensics_view import edges_of_spans, view_of_span  # noqa: E402
from core.normalize import normalize  # noqa: E402
from core.span import Event, Link, RawSpan  # noqa: E402

TRACE = bytes.fromhex("5eed" * 8)
MS = 1_000_000
BASE = 1_763_800_000_000_000_000


def synthetic_trace(n_spans: int):
    """Canonical spans (normalized from raw OTLP-like spans) of one agent run with ~n_spans spans."""
    counter = iter(range(1, 10 * n_spans))
    raws: list[RawSpan] = []

    def add(parent, name, attrs, start, dur, status=0, message="", events=(), links=()):
        span_id = next(counter).to_bytes(8, "big")
        raws.append(RawSpan(TRACE, span_id, parent, name, 1, start, start + dur, status, message, attrs,
                            tuple(events), tuple(links), {"service.name": "bench"}))
        return span_id

    steps = max(1, -(-(n_spans - 1) // 21))  # each step: itself + 20 children
    root = add(None, "invoke_agent planner", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
               BASE, 10_000 * MS, status=2)
    t = BASE + MS
    for step in range(steps):
        if len(raws) >= n_spans:
            break
        failing = step % 3 == 0
        step_id = add(root, f"invoke_workflow step{step}", {"gen_ai.operation.name": "invoke_workflow",
                                                           "gen_ai.workflow.name": f"step{step}"},
                      t, 24 * MS, status=2 if failing else 0)
        previous = None
        for k in range(20):
            if len(raws) >= n_spans:
                break
            kind = k % 5
            if kind in (0, 1, 2):
                links = [Link(TRACE, previous, {"causeline.link.type": "retry_of"})] if previous and k % 7 == 0 else []
                limited = k % 4 == 0
                previous = add(step_id, "chat gpt-4o", {
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 400, "gen_ai.usage.output_tokens": 40,
                    **({"http.response.status_code": 429} if limited else {})},
                    t + k * MS, MS, status=2 if limited else 0,
                    events=[Event("exception", t + k * MS, {"exception.type": "openai.RateLimitError"})] if limited else (),
                    links=links)
            elif kind == 3:
                tool = add(step_id, "execute_tool search", {"gen_ai.operation.name": "execute_tool",
                                                            "gen_ai.tool.name": "search"},
                           t + k * MS, MS, status=2 if failing else 0)
                previous = tool
            else:
                add(step_id, "apply_guardrail schema", {"gen_ai.operation.name": "apply_guardrail"},
                    t + k * MS, MS, status=2 if failing else 0,
                    links=[Link(TRACE, previous, {"causeline.link.type": "data_from"})] if previous else ())
        t += 25 * MS
    return [normalize(raw) for raw in raws]


def median_ms(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def baseline(views) -> dict:
    children: dict = {}
    for v in views:
        if v.parent_span_id:
            children.setdefault((v.trace_id, v.parent_span_id), []).append(v.key)
    return children


def db_time(spans, runs: int) -> float:
    from bench.benchdb import bench_database
    from db.engine import libpq_url, make_engine, make_sessionmaker
    from db.ingest import edge_rows, prepare_connection, span_row, write_batch
    from db.queries.auth import create_project
    from db.queries.forensics import trace_attribution

    import psycopg

    with bench_database("causeline_bench_attr") as url:
        engine = make_engine(url, pool_size=1)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            project_id = create_project(session, "bench").id
        with psycopg.connect(libpq_url(url)) as conn:
            prepare_connection(conn)
            write_batch(conn, [span_row(project_id, s) for s in spans],
                        [e for s in spans for e in edge_rows(project_id, s)])

        def once():
            with sessions() as session:
                result = trace_attribution(session, project_id, TRACE)
                assert result is not None and result.attribution.span_count == len(spans)

        once()
        elapsed = median_ms(once, runs)
        engine.dispose()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", action="store_true", help="also time load + attribute on PostgreSQL")
    args = parser.parse_args()

    spans = synthetic_trace(args.spans)
    views = [view_of_span(s) for s in spans]
    edges = edges_of_spans(spans)
    result = attribute(TRACE, views, edges)
    print(f"trace: {len(views)} spans, {len(edges)} edges, {result.failed_span_count} failed spans, "
          f"{len(result.failures)} failures", flush=True)
    attribution_ms = median_ms(lambda: attribute(TRACE, views, edges), args.runs)
    baseline_ms = median_ms(lambda: baseline(views), args.runs)
    print(f"attribution (core): {attribution_ms:.2f} ms median of {args.runs}", flush=True)
    print(f"baseline (parent map): {baseline_ms:.3f} ms", flush=True)
    out = {"spans": len(views), "attribution_ms": round(attribution_ms, 2), "baseline_ms": round(baseline_ms, 3),
           "ratio": round(attribution_ms / baseline_ms, 1)}
    if args.db:
        out["db_ms"] = round(db_time(spans, min(args.runs, 20)), 2)
        print(f"load + attribute on PostgreSQL: {out['db_ms']:.2f} ms median", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
