"""Server time of the trace page for large traces, against the JSON API call for the same trace
(GET /api/traces/{id}) measured in the same run.

    .venv/bin/python bench/pages.py [--spans 10000] [--runs 10]

Stores one trace per shape (bulk insert, with parent edges and the rollup row), then calls the
real ASGI app in process (FastAPI TestClient, authentication off) for the page and the API.
Shapes: `agent` (a root, steps of 100 spans: a model call with tool calls under it, some failed),
`wide` (a root with n-1 children), `chain` (an n-deep parent chain).
Target: the page under 100 ms for 10,000 spans. Last line (JSON): per shape the page and API
medians (ms) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
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
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from core.settings import Settings
    from db.engine import make_engine
    from db.models import SpanEdge, SpanRow, TraceRow
    from db.queries.auth import create_project
    from server.app import create_app

    results = {}
    with bench_database("causeline_bench_pages") as url:
        engine = make_engine(url)
        traces = {}
        with Session(engine) as session:
            project = create_project(session, "default")
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
        engine.dispose()
    print(json.dumps({"spans": args.spans, **results}))


if __name__ == "__main__":
    main()
