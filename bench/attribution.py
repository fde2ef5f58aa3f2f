"""Failure attribution time by trace size and shape, against a baseline measured in the same
run on the same spans: building the parent/children map (a linear scan, the least any tree
algorithm does). Attribution is O(n log n): the ratio to the baseline must stay roughly flat
from 1k to 100k spans (it grew linearly before: 1k spans 0.9 s, 4k 14.5 s).

    .venv/bin/python bench/attribution.py [--sizes 1000,10000,100000] [--runs 5] [--db]

Shapes, each at every size:
  chain  a 100,000-deep parent chain, every other span failed (the hostile trace of issue 9:
         every failed span is its own root cause under an OK parent, above a deep subtree);
  wide   one failed root with n-1 children, every other one failed;
  agent  an agent with steps; each step has model calls (some rate limited and retried,
         some timing out and falling back), tool calls (some failing, consumed through
         data_from links), a guardrail; a third of the steps fail up to the root.
`--db` also times the whole per-trace path on PostgreSQL for the agent trace of the first
size (DATABASE_URL, or an embedded server): load spans + edges (with the linked-trace CTE)
and attribute — what GET /api/traces/{id}/attribution does.
Last line (JSON): per shape and size the attribution and baseline milliseconds, their ratio,
microseconds per span, and `growth`: the ratio at the largest size over the ratio at the
smallest (1 = linear; about log(100k)/log(1k) = 1.7 for n log n; 100 would be quadratic).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.attribution import attribute  # noqa: E402
from core.forensics_view import SpanView, edges_of_spans, view_of_span  # noqa: E402
from core.normalize import normalize  # noqa: E402
from core.span import Event, Link, RawSpan, Tokens  # noqa: E402

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


def _view(n: int, parent: int | None, failed: bool) -> SpanView:
    start = BASE + n * MS
    return SpanView(TRACE, n.to_bytes(8, "big"), parent.to_bytes(8, "big") if parent is not None else None,
                    f"span {n % 50}", category="llm" if n % 3 else "tool", start_ns=start, end_ns=start + MS,
                    status="error" if failed else "ok", error_class="timeout" if failed else None,
                    agent_name="bench" if n % 100 == 0 else None, tokens=Tokens(10, 2))


def chain_trace(n_spans: int) -> list[SpanView]:
    """A parent chain n_spans deep, every other span failed (the root among them)."""
    return [_view(i + 1, i if i else None, i % 2 == 0) for i in range(n_spans)]


def wide_trace(n_spans: int) -> list[SpanView]:
    """A failed root with n_spans - 1 children, every other one failed."""
    return [_view(1, None, True)] + [_view(i + 1, 1, i % 2 == 0) for i in range(1, n_spans)]


def median_ms(fn, runs: int, clock=time.perf_counter, repeat: int = 1) -> float:
    # As timeit does: no garbage collection inside a sample (a full collection of a 100k-span
    # heap would land in whichever sample triggered it).
    samples = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            started = clock()
            for _ in range(repeat):
                fn()
            samples.append((clock() - started) * 1000 / repeat)
        finally:
            gc.enable()
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


def measure(shape: str, views, edges, runs: int) -> dict:
    result = attribute(TRACE, views, edges)
    # CPU time of this process (a shared machine's load stretches wall time, not CPU time),
    # interleaved; the baseline repeated to last as long as one attribution.
    attribution, base = [], []
    repeat = 1
    for _ in range(runs):
        attribution.append(median_ms(lambda: attribute(TRACE, views, edges), 1, time.process_time))
        base.append(median_ms(lambda: baseline(views), 1, time.process_time, repeat))
        repeat = max(1, min(1000, round(attribution[-1] / max(base[-1], 0.001))))
    attribution_ms, baseline_ms = statistics.median(attribution), statistics.median(base)
    row = {"shape": shape, "spans": len(views), "failed": result.failed_span_count,
           "failures": len(result.failures), "attribution_ms": round(attribution_ms, 2),
           "baseline_ms": round(baseline_ms, 3), "ratio": round(attribution_ms / baseline_ms, 1),
           "us_per_span": round(1000 * attribution_ms / len(views), 2)}
    print(f"{shape:>5} {row['spans']:>7} spans, {row['failed']:>6} failed, {row['failures']:>6} failures: "
          f"attribution {attribution_ms:9.1f} ms CPU, baseline {baseline_ms:7.2f} ms, ratio {row['ratio']:6.1f}, "
          f"{row['us_per_span']:6.2f} us/span", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5, help="median of this many runs (3 at 100k spans)")
    parser.add_argument("--db", action="store_true", help="also time load + attribute on PostgreSQL")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]

    rows = []
    agent_spans = {}
    for size in sizes:
        runs = args.runs if size < 100_000 else min(args.runs, 3)
        rows.append(measure("chain", chain_trace(size), [], runs))
        rows.append(measure("wide", wide_trace(size), [], runs))
        spans = agent_spans[size] = synthetic_trace(size)
        rows.append(measure("agent", [view_of_span(s) for s in spans], edges_of_spans(spans), runs))
    growth = {}
    for shape in ("chain", "wide", "agent"):
        mine = [r for r in rows if r["shape"] == shape]
        growth[shape] = round(mine[-1]["ratio"] / mine[0]["ratio"], 2)
    print(f"growth of the ratio from {sizes[0]} to {sizes[-1]} spans: {growth}", flush=True)
    out = {"results": rows, "growth": growth}
    if args.db:
        out["db_ms"] = round(db_time(agent_spans[sizes[0]], 20), 2)
        print(f"load + attribute on PostgreSQL ({sizes[0]} spans): {out['db_ms']:.2f} ms median", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
