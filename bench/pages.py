"""Server time of the pages against their JSON twins measured in the same run: the trace page for
large traces (against GET /api/traces/{id}), and over a fleet of runs (bench/queries.py's data:
~10 spans per run over 30 days, each model call's input a user question) the trace list with a
free-text search (against GET /api/traces with the same query) and the Overview over 30 days
(against GET /api/overview).

    .venv/bin/python bench/pages.py [--spans 10000] [--runs 10] [--fleet-traces 100000]

Stores one trace per shape (bulk insert, with parent edges and the rollup row) and the fleet (so the
trace pages too are read from a populated database), then calls the real ASGI app in process
(FastAPI TestClient, authentication off) for the page and the API.
Shapes: `agent` (a root, steps of 100 spans: a model call with tool calls under it, some failed),
`wide` (a root with n-1 children), `chain` (an n-deep parent chain).
Targets: the trace page under 100 ms for 10,000 spans; the list with a search over 1M spans
(--fleet-traces 100000) and the Overview over 30 days under 300 ms. Last line (JSON): per row the
page and API medians (ms) and their ratio. --fleet-traces 0 skips the fleet.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import bench_database  # noqa: E402

BASE_NS = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp()) * 1_000_000_000


def _span(project_id: int, trace_id: bytes, i: int, parent: bytes | None, *, name: str, category: str = "other",
          start_ms: float, duration_ms: float, failed: bool = False) -> dict:
    start = BASE_NS + int(start_ms * 1e6)
    duration = int(duration_ms * 1e6)
    return dict(
        project_id=project_id, trace_id=trace_id, span_id=i.to_bytes(8, "big"), parent_span_id=parent,
        name=name, kind=1, category=category, start_ns=start, duration_ns=duration,
        start_time=datetime.fromtimestamp(start / 1e9, timezone.utc),
        end_time=datetime.fromtimestamp((start + duration) / 1e9, timezone.utc),
        status="error" if failed else "ok", error_class="timeout" if failed else None,
        status_message="Request timed out" if failed else None,
        input_tokens=100 if category == "llm" else None, output_tokens=20 if category == "llm" else None,
        request_model="gpt-4o" if category == "llm" else None, tool_name="search" if category == "tool" else None,
        attributes={}, events=[], links=[], resource={}, input="question" if category == "llm" else None,
    )


def shape(kind: str, project_id: int, n: int) -> list[dict]:
    trace_id = os.urandom(16)
    root = _span(project_id, trace_id, 1, None, name="run", category="agent", start_ms=0, duration_ms=n)
    spans = [root]
    if kind == "wide":
        spans += [_span(project_id, trace_id, i + 2, root["span_id"], name=f"call {i}", start_ms=i, duration_ms=0.5)
                  for i in range(n - 1)]
    elif kind == "chain":
        for i in range(n - 1):
            spans.append(_span(project_id, trace_id, i + 2, spans[-1]["span_id"], name=f"level {i}",
                               start_ms=i * 0.001, duration_ms=n - i * 0.001))
    else:  # agent: steps of one model call with tool calls under it
        i = 2
        while i <= n:
            step = _span(project_id, trace_id, i, root["span_id"], name=f"step {i // 100}", category="chain",
                         start_ms=i, duration_ms=90)
            llm = _span(project_id, trace_id, i + 1, step["span_id"], name="chat gpt-4o", category="llm",
                        start_ms=i + 1, duration_ms=80, failed=(i // 100) % 7 == 3)
            spans += [step, llm]
            spans += [_span(project_id, trace_id, j, llm["span_id"], name="execute_tool search", category="tool",
                            start_ms=i + 2 + (j - i) * 0.5, duration_ms=0.4) for j in range(i + 2, min(i + 100, n + 1))]
            i += 100
    return spans[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--shapes", default="agent,wide,chain")
    parser.add_argument("--fleet-traces", type=int, default=100_000, help="~10 spans each; 0: no fleet rows")
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from core.settings import Settings
    from db.engine import make_engine
    from db.models import SpanEdge, SpanRow, TraceRow
    from db.partitions import ensure_partitions
    from db.queries.auth import create_project
    from server.app import create_app

    results = {}
    with bench_database("causeline_bench_pages") as url:
        engine = make_engine(url)
        # A running server makes each day's partition before the day starts, so every span of
        # the data below lives in its day's partition, not in spans_default (where only spans
        # that arrive before their day's partition exists go).
        first_day = (datetime.fromtimestamp(BASE_NS / 1e9, timezone.utc) - timedelta(days=31)).date()
        with engine.begin() as conn:
            ensure_partitions(conn, first_day, (datetime.now(timezone.utc).date() - first_day).days + 1)
        traces = {}
        with Session(engine) as session:
            project = create_project(session, "default")
            project_id = project.id
            for kind in args.shapes.split(","):
                spans = shape(kind, project.id, args.spans)
                session.execute(insert(SpanRow), spans)
                session.execute(insert(SpanEdge), [
                    dict(project_id=s["project_id"], trace_id=s["trace_id"], span_id=s["span_id"], relation="parent",
                         linked_trace_id=s["trace_id"], linked_span_id=s["parent_span_id"])
                    for s in spans if s["parent_span_id"] is not None])
                session.add(TraceRow(
                    project_id=project.id, trace_id=spans[0]["trace_id"], root_span_id=spans[0]["span_id"],
                    root_name="run", start_time=spans[0]["start_time"],
                    end_time=max(s["end_time"] for s in spans), span_count=len(spans),
                    error_count=sum(s["status"] == "error" for s in spans),
                    llm_calls=sum(s["category"] == "llm" for s in spans), unpriced_calls=0,
                    input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
                    agents=[], models=[], services=[], cost_usd=0))
                traces[kind] = spans[0]["trace_id"].hex()
            session.commit()
        # The fleet before any measurement: the trace pages are read from a populated database
        # (its partitions' statistics are then those of a real one, not of three traces alone).
        fleet_spans = load_fleet(url, project_id, args.fleet_traces) if args.fleet_traces else 0
        settings = Settings(database_url=url, demo="off", auth_disabled=True)
        app = create_app(settings, engine=engine, parts=("api", "web"))
        with TestClient(app) as client:
            for kind, hex_id in traces.items():
                timings = {}
                for label, path in (("page", f"/traces/{hex_id}"), ("api", f"/api/traces/{hex_id}")):
                    client.get(path).raise_for_status()  # warm up
                    samples = []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        client.get(path).raise_for_status()
                        samples.append((time.perf_counter() - started) * 1000)
                    timings[label] = statistics.median(samples)
                results[kind] = {"page_ms": round(timings["page"], 1), "api_ms": round(timings["api"], 1),
                                 "ratio": round(timings["page"] / timings["api"], 2)}
                print(f"{kind:6} {args.spans} spans: page {timings['page']:.1f} ms, api {timings['api']:.1f} ms, "
                      f"ratio {timings['page'] / timings['api']:.2f}", flush=True)
            if args.fleet_traces:
                results.update({"fleet_spans": fleet_spans, **fleet(client, args.runs)})
        engine.dispose()
    print(json.dumps({"spans": args.spans, **results}))


def load_fleet(url: str, project_id: int, traces: int) -> int:
    """~10 spans per run over the last 30 days (bench/queries.py's data); returns the spans stored."""
    import psycopg

    from bench.queries import load
    from db.engine import libpq_url

    until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    started = time.perf_counter()
    spans, _ = load(url, project_id, traces, until)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"fleet: {spans:,} spans in {traces:,} runs over 30 days loaded in {time.perf_counter() - started:.0f} s",
          flush=True)
    return spans


def fleet(client, runs: int) -> dict:
    """The trace list with a search and the Overview over 30 days, each against its JSON twin."""
    from bench.queries import RARE_WORD

    rows = {
        # A word in every tenth question (the list stops at its page), a word in one run in a thousand,
        # and the same search with a filter on top.
        "list q=refund": ("/traces", "/api/traces", {"q": "refund", "range": "30d"}),
        f"list q={RARE_WORD}": ("/traces", "/api/traces", {"q": RARE_WORD, "range": "30d"}),
        "list q=refund provider=anthropic min_cost=0.01": (
            "/traces", "/api/traces", {"q": "refund", "range": "30d", "provider": "anthropic", "min_cost": "0.01"}),
        "overview range=30d": ("/overview", "/api/overview", {"range": "30d"}),
    }
    found = {}
    for name, (page, api, params) in rows.items():
        timings = {}
        for label, path in (("page", page), ("api", api)):
            client.get(path, params=params).raise_for_status()  # warm up
            samples = []
            for _ in range(runs):
                begun = time.perf_counter()
                client.get(path, params=params).raise_for_status()
                samples.append((time.perf_counter() - begun) * 1000)
            timings[label] = statistics.median(samples)
        found[name] = {"page_ms": round(timings["page"], 1), "api_ms": round(timings["api"], 1),
                       "ratio": round(timings["page"] / timings["api"], 2)}
        print(f"{name}: page {timings['page']:.1f} ms, api {timings['api']:.1f} ms, "
              f"ratio {timings['page'] / timings['api']:.2f}", flush=True)
    return found


if __name__ == "__main__":
    main()
