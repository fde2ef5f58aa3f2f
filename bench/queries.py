"""Across-traces query latency at scale, against a plain indexed count measured in the same run.

    .venv/bin/python bench/queries.py [--traces 100000] [--runs 20]
    .venv/bin/python bench/queries.py --traces 100000,500000     # the growth curve, 1M -> 5M spans

Loads ~10 spans per trace (>= 1M spans for 100k traces; ~3% of traces fail, their failed
model call retried), spread over 30 days, plus one 1,000-span trace, through the real write
path (db.ingest.write_batch: staging COPY, insert, rollups) from rows built directly (no OTLP
decoding: that is bench/ingest.py's subject). The failing traces are then attributed
(db.queries.forensics.attribute_pending fills trace_failures). Each endpoint is called through
the real ASGI app (FastAPI TestClient, API key auth) over the full 30 days; the baseline is
`SELECT count(*) FROM spans WHERE project_id = ? AND start_time >= ? AND start_time < ?` over the
same window. Uses DATABASE_URL's server or an embedded PostgreSQL in a temp dir.
One line per endpoint, then a JSON line: {"baseline_ms": ..., "<endpoint>": {"median_ms", "p95_ms", "ratio"}}.
With several scales (--traces 100000,500000) the data grows to each in turn (the later traces
spread over the same 30 days) and each scale is measured and printed; the last JSON line is then
{"curve": [<one result per scale>], "growth": {"<endpoint>": median at the last scale / at the
first}} beside "spans_growth": growth under spans_growth means the endpoint grows sub-linearly.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.benchdb import bench_database  # noqa: E402
from db.engine import libpq_url  # noqa: E402
from db.ingest import STAGE_SPAN_COLUMNS, prepare_connection, write_batch  # noqa: E402

MODELS = [("openai", "gpt-4o", Decimal("0.0000025"), Decimal("0.00001")),
          ("openai", "gpt-4o-mini", Decimal("0.00000015"), Decimal("0.0000006")),
          ("anthropic", "claude-sonnet-4-5", Decimal("0.000003"), Decimal("0.000015")),
          ("anthropic", "claude-3-5-haiku-latest", Decimal("0.0000008"), Decimal("0.000004"))]
AGENTS = ["support", "billing", "triage"]
SERVICES = ["web-agent", "batch-agent"]
TOOLS = ["search_docs", "get_order", "refund", "send_email", "lookup_customer"]
TOPICS = ["refund request", "shipping delay", "password reset", "invoice copy", "cancel subscription",
          "change address", "damaged item", "upgrade plan", "billing error", "account locked"]
RARE_WORD = "zanzibar"
DAYS = 30
_COLUMNS = [name for name, _ in STAGE_SPAN_COLUMNS]
_DEFAULTS = dict.fromkeys(_COLUMNS)
_DEFAULTS.update(kind=1, status="unset", attributes="{}", events="[]", links="[]", resource="{}", scope="bench")


def row(**values) -> tuple:
    merged = {**_DEFAULTS, **values}
    return tuple(merged[name] for name in _COLUMNS)


class Builder:
    def __init__(self, project_id: int, until: datetime, seed: int = 7) -> None:
        self.project_id = project_id
        self.rng = random.Random(seed)
        self.end_ns = int(until.timestamp()) * 1_000_000_000
        self.start_ns = self.end_ns - DAYS * 86_400 * 1_000_000_000
        self.change_ns = self.start_ns + 20 * 86_400 * 1_000_000_000  # gpt-4o silently served as a new version

    def llm(self, tid, sid, parent, t, service, agent, session, user, *, failed=False, retry_of=None, unpriced=False):
        rng = self.rng
        provider, model, p_in, p_out = rng.choice(MODELS)
        served = "gpt-4o-2024-11-20" if model == "gpt-4o" and t >= self.change_ns else model
        if unpriced:
            provider, model, served = "self-hosted", "internal-llm", "internal-llm"
        t_in, t_out = rng.randint(200, 4000), rng.randint(20, 800)
        duration = int(rng.lognormvariate(20.4, 0.6))  # median ~700 ms
        links = "[]"
        if retry_of is not None:
            links = json.dumps([{"trace_id": tid.hex(), "span_id": retry_of.hex(), "relation": "retry_of",
                                 "attributes": {"causeline.link.type": "retry_of"}}])
        # What the user asked: words the trace list's free-text search finds (one rare word, RARE_WORD).
        question = (f"{rng.choice(TOPICS)} for order {rng.randint(1000, 99999)} from {user}"
                    + (f" {RARE_WORD}" if rng.random() < 0.001 else ""))
        return row(project_id=self.project_id, trace_id=tid, span_id=sid, parent_span_id=parent, name=f"chat {model}",
                   input=json.dumps([{"role": "user", "content": question}]),
                   kind=3, category="llm", operation="chat", start_ns=t, end_ns=t + duration,
                   status="error" if failed else "unset", status_message="rate limit exceeded" if failed else None,
                   error_type="429" if failed else None, error_class="rate_limited" if failed else None,
                   service_name=service, agent_name=agent, provider=provider, request_model=model,
                   response_model=served, input_tokens=t_in, output_tokens=t_out, cache_read_tokens=0,
                   cost_usd=None if unpriced else p_in * t_in + p_out * t_out,
                   cost_source="unpriced" if unpriced else "bench-prices", session_id=session, user_id=user,
                   attributes='{"gen_ai.operation.name": "chat"}', links=links,
                   resource=f'{{"service.name": "{service}"}}', retry_kind="retry" if retry_of else None)

    def trace(self, number: int, *, size: int = 10, failing: bool = False):
        rng = self.rng
        tid = number.to_bytes(16, "big")
        ids = iter(range(1, 100_000))
        sid = lambda: (number * 100_000 + next(ids)).to_bytes(8, "big")  # noqa: E731
        t = rng.randint(self.start_ns, self.end_ns - 60 * 1_000_000_000)
        service, agent = rng.choice(SERVICES), rng.choice(AGENTS)
        session, user = f"conv-{number // 3}", f"user-{number % 2000}"
        root_id = sid()
        rows, edges = [row(project_id=self.project_id, trace_id=tid, span_id=root_id, name=f"invoke_agent {agent}",
                           category="agent", operation="invoke_agent", start_ns=t, end_ns=t + 30_000_000_000,
                           status="error" if failing else "unset", error_class="rate_limited" if failing else None,
                           service_name=service, agent_name=agent, session_id=session, user_id=user,
                           resource=f'{{"service.name": "{service}"}}')], []
        rows.append(row(project_id=self.project_id, trace_id=tid, span_id=sid(), parent_span_id=root_id, name="route",
                        category="routing", operation="route", start_ns=t + 1000, end_ns=t + 2_000_000,
                        service_name=service, agent_name=agent))
        clock = t + 3_000_000
        fail_at = rng.randint(0, 2) if failing else -1
        position = 0
        while len(rows) < size:
            if position % 3 == 2:
                tool = rng.choice(TOOLS)
                tool_failed = rng.random() < 0.002
                rows.append(row(project_id=self.project_id, trace_id=tid, span_id=sid(), parent_span_id=root_id,
                                name=f"execute_tool {tool}", category="tool", operation="execute_tool",
                                start_ns=clock, end_ns=clock + rng.randint(5, 400) * 1_000_000,
                                status="error" if tool_failed else "unset",
                                error_class="tool_error" if tool_failed else None,
                                service_name=service, agent_name=agent, tool_name=tool))
            else:
                span_id = sid()
                rows.append(self.llm(tid, span_id, root_id, clock, service, agent, session, user,
                                     failed=position == fail_at, unpriced=rng.random() < 0.01))
                if position == fail_at and len(rows) < size:
                    retry_id = sid()
                    clock += 2_000_000
                    rows.append(self.llm(tid, retry_id, root_id, clock, service, agent, session, user,
                                         retry_of=span_id))
                    edges.append((self.project_id, tid, retry_id, "retry_of", tid, span_id))
            clock += 50_000_000
            position += 1
        return rows, edges


def _failing(number: int) -> bool:
    """~3% of traces fail, spread evenly and the same whatever the scale (Knuth's multiplicative hash)."""
    return (number * 2654435761) % 2**32 % 100 < 3


def load(url: str, project_id: int, traces: int, until: datetime, threads: int = 2, *,
         first: int = 1) -> tuple[int, bytes]:
    """Writes traces numbered first .. first+traces-1 (~10 spans each) plus one 1,000-span failing
    trace numbered first+traces. Batches are built as they are written, so memory stays flat at
    any scale. Returns (spans written, trace id of the 1,000-span trace)."""
    builder = Builder(project_id, until, seed=first)
    big_number = first + traces
    numbers = iter(range(first, big_number + 1))
    lock = threading.Lock()
    errors: list[Exception] = []
    written = [0]

    def next_batch() -> tuple[list, list] | None:
        with lock:
            rows, edges = [], []
            for number in numbers:
                r, e = builder.trace(number, size=1000 if number == big_number else 10,
                                     failing=_failing(number) or number == big_number)
                rows += r
                edges += e
                if len(rows) >= 5000:
                    break
            written[0] += len(rows)
            return (rows, edges) if rows else None

    def writer():
        with psycopg.connect(libpq_url(url)) as conn:
            prepare_connection(conn)
            while (batch := next_batch()) is not None:
                try:
                    write_batch(conn, *batch)
                except Exception as exc:  # surfaced after join
                    errors.append(exc)
                    return

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return written[0], big_number.to_bytes(16, "big")


def attribute_failing(url: str) -> int:
    """Attribute only the traces with errors (the others have no failure to materialize), batch by
    batch as the background attributor does: each batch's failure_rollups journal is folded."""
    from collector.attributor import Attributor
    from db.engine import make_engine, make_sessionmaker

    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("UPDATE traces SET attributed_at = updated_at WHERE error_count = 0")
        conn.commit()
    engine = make_engine(url, pool_size=1)
    done = 0
    try:
        attributor = Attributor(make_sessionmaker(engine), delay=0, batch=200)
        while count := attributor.run_once():
            done += count
        return done
    finally:
        engine.dispose()


def timed(fn, runs: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


ENDPOINTS = {
    "costs?group_by=model": ("/api/costs", {"group_by": "model"}),
    "costs?group_by=day": ("/api/costs", {"group_by": "day"}),
    "costs?group_by=tool": ("/api/costs", {"group_by": "tool"}),
    "costs?group_by=model, exact edges": ("/api/costs", {"group_by": "model", "edges": True}),
    "costs?group_by=tool, exact edges": ("/api/costs", {"group_by": "tool", "edges": True}),
    "costs?group_by=user": ("/api/costs", {"group_by": "user"}),
    "costs?group_by=session": ("/api/costs", {"group_by": "session"}),
    "health/providers": ("/api/health/providers", {}),
    "health/providers?bucket=hour": ("/api/health/providers", {"bucket": "hour"}),
    "anomalies": ("/api/anomalies", {}),
    # Issue 4's per-trace and failure endpoints (api/forensics.py).
    "failures": ("/api/failures", {}),
    # The 30 days off the hour at both ends are read from trace_failures (failure_rollups.serves
    # says no); the default window (24 h ending with the hour, core.window.quick_bounds) and the
    # 30 days above from failure_rollups.
    "failures, off the hour": ("/api/failures", {"edges": True}),
    "failures, default window": ("/api/failures", {"default": True}),
    # Issue 7's workbench pages: the Overview must answer 30 days in < 300 ms.
    "overview?range=30d": ("/api/overview", {"range": "30d"}),
    "overview?range=24h": ("/api/overview", {"range": "24h"}),
    "providers?range=30d": ("/api/providers", {"range": "30d"}),
}


def measure(client, conn, headers: dict, project_id: int, since: datetime, until: datetime, big_trace: bytes,
            runs: int) -> dict:
    """Every endpoint over the 30 days, against the count baseline, at the data's current size."""
    window = {"since": since.isoformat(), "until": until.isoformat()}
    # The same window off the hour at both ends: costs then also read the spans of the two
    # partial edge hours (db.queries.costs, docs/fleet.md "Exact windows").
    edges = {"since": (since + timedelta(minutes=30)).isoformat(),
             "until": (until - timedelta(minutes=30)).isoformat()}

    def baseline():
        conn.execute("SELECT count(*) FROM spans WHERE project_id = %s AND start_time >= %s "
                     "AND start_time < %s", (project_id, since, until)).fetchone()

    base_median, base_p95 = timed(baseline, runs)
    print(f"{'baseline count(*) over 30 days':48s} median {base_median:8.1f} ms  p95 {base_p95:8.1f} ms", flush=True)
    results = {"baseline_ms": round(base_median, 1), "baseline_p95_ms": round(base_p95, 1)}
    calls = []
    for name, (path, extra) in ENDPOINTS.items():
        params = dict(extra)
        if params.pop("default", False):
            pass
        elif "range" not in params:
            params.update(edges if params.pop("edges", False) else window)
        calls.append((name, path, params))
    calls.append(("traces/{1000-span trace}/attribution", f"/api/traces/{big_trace.hex()}/attribution", {}))
    for name, path, params in calls:
        response = client.get(path, params=params, headers=headers)
        response.raise_for_status()

        def call(path=path, params=params):
            client.get(path, params=params, headers=headers).raise_for_status()

        median, p95 = timed(call, runs)
        results[name] = {"median_ms": round(median, 1), "p95_ms": round(p95, 1), "ratio": round(median / base_median, 2)}
        print(f"{name:48s} median {median:8.1f} ms  p95 {p95:8.1f} ms  ratio {median / base_median:6.2f}", flush=True)
    return results


def describe(url: str, loaded: float, attributed: int, attributing: float) -> tuple[int, int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        stored, traces, failing, rollups, failures = conn.execute(
            "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM traces), "
            "(SELECT count(*) FROM traces WHERE error_count > 0), (SELECT count(*) FROM usage_rollups), "
            "(SELECT count(*) FROM trace_failures)").fetchone()
    print(f"loaded {stored:,} spans in {traces:,} traces ({failing:,} failing) in {loaded:.1f} s; "
          f"{rollups:,} usage rollup rows; attributed {attributed:,} traces ({failures:,} failures) "
          f"in {attributing:.1f} s", flush=True)
    return stored, traces


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", default="100000",
                        help="traces of ~10 spans; several comma-separated scales measure the growth curve")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    scales = [int(n) for n in args.traces.split(",")]
    if scales != sorted(scales) or scales[0] < 1:
        parser.error("--traces: positive scales in increasing order")

    from fastapi.testclient import TestClient

    from core.settings import Settings
    from db.engine import make_engine, make_sessionmaker
    from db.queries.auth import create_api_key, create_project
    from server.app import create_app

    with bench_database("causeline_bench_q") as url:
        engine = make_engine(url, pool_size=2)
        with make_sessionmaker(engine).begin() as session:
            project = create_project(session, "bench")
            key = create_api_key(session, project.id, name="bench", scopes=["read"]).secret
            project_id = project.id
        until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        since = until - timedelta(days=DAYS)
        settings = Settings(database_url=url, demo="off")
        app = create_app(settings, engine=engine, parts=("api",))
        headers = {"authorization": f"Bearer {key}"}
        curve, loaded_traces, written = [], 0, 0
        # Autocommit: the baseline's connection stays open across scales, and a transaction left
        # open would hold back vacuum for the whole next load (the rollups' dead row versions,
        # the visibility map), which is what made the 5M scale look slow in earlier curves.
        with TestClient(app) as client, psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for scale in scales:
                started = time.perf_counter()
                # Each scale's extra traces start after the previous scale's traces and its big trace.
                spans, big_trace = load(url, project_id, scale - loaded_traces, until, first=loaded_traces + written + 1)
                loaded = time.perf_counter() - started
                written += 1  # the big trace's number
                loaded_traces = scale
                started = time.perf_counter()
                attributed = attribute_failing(url)
                stored, traces = describe(url, loaded, attributed, time.perf_counter() - started)
                result = {"spans": stored, "traces": traces,
                          **measure(client, conn, headers, project_id, since, until, big_trace, args.runs)}
                curve.append(result)
                print(json.dumps(result), flush=True)
        engine.dispose()
        if len(curve) > 1:
            first, last = curve[0], curve[-1]
            growth = {name: round(last[name]["median_ms"] / first[name]["median_ms"], 2)
                      for name in first if isinstance(first[name], dict)}
            spans_growth = round(last["spans"] / first["spans"], 2)
            for name, g in growth.items():
                print(f"{name:48s} x{g:5.2f} for x{spans_growth} spans: {'sub-linear' if g < spans_growth else 'LINEAR OR WORSE'}")
            print(json.dumps({"curve": curve, "spans_growth": spans_growth,
                              "baseline_growth": round(last["baseline_ms"] / first["baseline_ms"], 2), "growth": growth}))


if __name__ == "__main__":
    main()
