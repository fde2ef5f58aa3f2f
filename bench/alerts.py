"""Alert evaluation time: one full cycle of 100 rules, against one rollup query, at scale.

    .venv/bin/python bench/alerts.py [--traces 100000] [--rules 100] [--runs 10]

Loads the data of bench/queries.py (~10 spans per trace: 100k traces >= 1M spans over 30
days, ~3% failing, attributed) through the real write path, then creates `--rules` enabled
rules mixing every kind (failure rate and failed runs per agent/step, error rate per
provider/model and error class, p95 latency, cost budgets per hour/day/month and per agent,
new root causes, anomalies, served-model changes; windows from 15 minutes to 7 days) with no
channel, and times alerts.evaluator.run_cycle (lock, measure every rule, move and store every
state). The baseline is one rollup query: the calls and errors of the project over the last
24 hours from usage_rollups. Prints one line per measurement, then a JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.benchdb import bench_database  # noqa: E402
from bench.queries import AGENTS, MODELS, attribute_failing, load, timed  # noqa: E402
from db.engine import libpq_url  # noqa: E402

H = 3600


def rule_specs(count: int) -> list[tuple[str, dict, float | None, int]]:
    """(kind, params, threshold, window_s) for `count` rules, every kind, cycling scopes and windows."""
    windows = [900, H, 6 * H, 24 * H]
    specs: list[tuple[str, dict, float | None, int]] = []
    for agent, w in itertools.product([None, *AGENTS], windows):
        specs.append(("failure_rate", {"agent": agent} if agent else {}, 0.05, w))
    for w in windows:
        specs.append(("failed_runs", {}, 50, w))
        specs.append(("failed_runs", {"step": "chat gpt-4o"}, 10, w))
    for (provider, model, *_), w in itertools.product(MODELS, [900, H, 24 * H]):
        specs.append(("error_rate", {"provider": provider, "model": model}, 0.05, w))
        specs.append(("error_rate", {"provider": provider, "model": model, "error_class": "rate_limit"}, 0.02, w))
        specs.append(("latency_p95", {"provider": provider, "model": model}, 5000, w))
    for period, agent in itertools.product(("hour", "day", "month"), [None, *AGENTS]):
        specs.append(("cost", {"period": period, **({"agent": agent} if agent else {})}, 100, 0))
    for dimension, w in itertools.product(("error_class", "step", "agent", "model"), (H, 24 * H)):
        specs.append(("new_root_cause", {"dimension": dimension}, None, w))
    for metric in ("error_rate", "latency_p95_ms", "cost_per_call_usd"):
        specs.append(("anomaly", {"metric": metric}, None, 24 * H))
    specs += [("served_model_change", {}, None, 24 * H), ("served_model_change", {"provider": "openai"}, None, 7 * 24 * H)]
    # More than the distinct scopes: the same questions with other thresholds (shared by the cycle's memo).
    base = list(specs)
    n = 0
    while len(specs) < count:
        kind, params, threshold, w = base[n % len(base)]
        specs.append((kind, params, None if threshold is None else threshold * 2, w))
        n += 1
    return specs[:count]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from alerts.evaluator import run_cycle
    from core.alerts import parse_rule
    from core.settings import Settings
    from db.engine import make_engine, make_sessionmaker
    from db.queries.alerts import save_rule
    from db.queries.auth import create_project

    with bench_database("causeline_bench_alerts") as url:
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            project_id = create_project(session, "bench").id
        until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        started = time.perf_counter()
        spans, _ = load(url, project_id, args.traces, until)
        loaded = time.perf_counter() - started
        attributed = attribute_failing(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            failures = conn.execute("SELECT count(*) FROM trace_failures").fetchone()[0]
        print(f"loaded {spans:,} spans ({args.traces:,} traces) in {loaded:.1f} s; attributed {attributed:,} "
              f"traces ({failures:,} root causes)", flush=True)

        specs = rule_specs(args.rules)
        with sessions.begin() as session:
            for i, (kind, params, threshold, window_s) in enumerate(specs):
                rule = parse_rule(kind, params, threshold, window_s or None, 3600)
                save_rule(session, project_id, f"rule {i:03d} {kind}", rule, enabled=True, channel_ids=[])
        settings = Settings(database_url=url, demo="off")
        # Evaluated at a time inside the data (the bench data ends at `until`).
        now = [until - timedelta(minutes=30)]

        def cycle():
            now[0] += timedelta(minutes=1)
            result = run_cycle(engine, sessions, settings, now[0])
            assert result is not None and not result.errors, result and result.errors
            return result

        first = cycle()
        with psycopg.connect(libpq_url(url)) as conn:
            def baseline():
                conn.execute("SELECT sum(calls), sum(errors) FROM usage_rollups WHERE project_id = %s "
                             "AND hour >= %s AND hour < %s", (project_id, until - timedelta(hours=24), until)).fetchone()

            base_median, base_p95 = timed(baseline, max(args.runs, 20))
        median, p95 = timed(cycle, args.runs)
        kinds = sorted({s[0] for s in specs})
        print(f"{'one rollup query (24 h calls/errors)':44s} median {base_median:8.2f} ms  p95 {base_p95:8.2f} ms")
        print(f"{f'cycle of {len(specs)} rules ({len(kinds)} kinds)':44s} median {median:8.1f} ms  p95 {p95:8.1f} ms  "
              f"ratio {median / base_median:7.1f}  ({first.queries} distinct queries, "
              f"{median / len(specs):.1f} ms per rule)")
        print(json.dumps({"spans": spans, "rules": len(specs), "distinct_queries": first.queries,
                          "baseline_ms": round(base_median, 2), "cycle_median_ms": round(median, 1),
                          "cycle_p95_ms": round(p95, 1), "ratio": round(median / base_median, 1),
                          "target_met": median < 1000}))
        engine.dispose()


if __name__ == "__main__":
    main()
