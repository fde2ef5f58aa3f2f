"""Background evaluation and fine-tuning export on PostgreSQL (DATABASE_URL, or an embedded server).

    .venv/bin/python bench/evaluation.py [--traces 2000] [--calls 3]

Stores `--traces` runs of `--calls` chat calls each (captured output, finish reasons, one
OpenTelemetry evaluation event per run), then times: the evaluator passes that score all of them
(batches of 200, as the background thread runs them), the fine-tuning preview, and the streamed
export (bytes, peak resident memory growth while streaming). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, text  # noqa: E402

from bench.benchdb import bench_database  # noqa: E402
from db.engine import make_engine, make_sessionmaker  # noqa: E402
from db.models import Project, Score, SpanRow, TraceRow  # noqa: E402
from db.queries.evaluation import evaluate_pending  # noqa: E402
from db.queries.finetune import ExportFilters  # noqa: E402
from pages.export import export_preview, export_stream  # noqa: E402


def seed(sessions, traces: int, calls: int) -> None:
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    with sessions.begin() as session:
        project = Project(slug="bench", name="bench")
        session.add(project)
        session.flush()
        for i in range(traces):
            trace_id = os.urandom(16)
            start = now + timedelta(milliseconds=i)
            rows = []
            for j in range(calls):
                start_ns = int(start.timestamp() * 1e9) + j * 1000
                rows.append(dict(
                    project_id=project.id, trace_id=trace_id, span_id=os.urandom(8), parent_span_id=None,
                    name="chat", kind=3, category="llm", start_time=start, end_time=start, start_ns=start_ns,
                    duration_ns=1000, status="ok", agent_name=f"agent-{i % 5}", request_model="gpt-4o",
                    input_tokens=120, output_tokens=40,
                    input=json.dumps([{"role": "user", "content": f"question {i} {j} about order A-{i}"}]),
                    output=json.dumps([{"role": "assistant", "finish_reason": "length" if j == 2 else "stop",
                                        "parts": [{"type": "text", "content": f"answer {i} {j} " * 20}]}]),
                    attributes={"gen_ai.output.type": "json"} if j == 1 else {},
                    events=[{"name": "gen_ai.evaluation.result", "time_ns": start_ns,
                             "attributes": {"gen_ai.evaluation.name": "helpfulness",
                                            "gen_ai.evaluation.score.value": 0.8}}] if j == 0 else [],
                    links=[], resource={}))
            session.execute(SpanRow.__table__.insert(), rows)
            session.add(TraceRow(project_id=project.id, trace_id=trace_id, start_time=start, end_time=start,
                                 span_count=calls, error_count=0, llm_calls=calls, unpriced_calls=0, input_tokens=0,
                                 output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
                                 cost_usd=0, agents=[], models=[], services=[], outcome="ok",
                                 updated_at=now - timedelta(minutes=1)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    with bench_database("causeline_bench_evaluation") as url:
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        seed(sessions, args.traces, args.calls)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # as autovacuum would after a load: plans need statistics
        started = time.perf_counter()
        passes = done = 0
        while True:
            with sessions.begin() as session:
                n = evaluate_pending(session, delay=0, limit=200)
            if not n:
                break
            done += n
            passes += 1
        evaluate_s = time.perf_counter() - started
        with sessions() as session:
            scores = session.scalar(select(func.count()).select_from(Score))
            project_id = session.scalar(select(Project.id))
        filters = ExportFilters(since=datetime.now(timezone.utc) - timedelta(days=1),
                                until=datetime.now(timezone.utc) + timedelta(hours=1))
        started = time.perf_counter()
        with sessions() as session:
            preview = export_preview(session, project_id, filters, 10_000_000)
        preview_s = time.perf_counter() - started
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        size = lines = 0
        for line in export_stream(sessions, project_id, filters, "openai", 10_000_000):
            size += len(line)
            lines += 1
        export_s = time.perf_counter() - started
        rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        engine.dispose()
    result = {"traces": done, "calls": args.traces * args.calls, "scores": scores, "evaluate_s": round(evaluate_s, 3),
              "traces_per_s": round(done / evaluate_s), "preview_s": round(preview_s, 3),
              "examples": preview.examples, "export_s": round(export_s, 3), "export_lines": lines,
              "export_mb": round(size / 1e6, 1), "peak_rss_growth_mb_while_exporting": round(rss_growth_kb / 1024, 1)}
    print(f"evaluated {done} traces ({result['calls']} calls) into {scores} scores in {evaluate_s:.2f} s; "
          f"preview {preview_s:.2f} s; export of {lines} examples ({result['export_mb']} MB) in {export_s:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
