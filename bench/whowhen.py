"""Judge-assisted failure attribution on the Who&When benchmark (Zhang et al., ICML 2025).

    .venv/bin/python bench/whowhen.py [--data ../shared/whowhen] [--limit N] [--ground-truth both|with|without]

Reads the data set where it lies (never copied into the repository), turns each failed run into
one OTLP trace (a root workflow span holding the question, marked failed; one agent span per
history step, its agent from `name` or `role`, its message as captured output), ingests the traces
through the collector's write path (decode, normalize, redact, price, COPY) into PostgreSQL
(DATABASE_URL, or an embedded server), attributes them structurally, then asks the judge:
- without the ground truth through the background job itself (judge.attribution.JudgeAttributor:
  weak-evidence check, prompt, budget, judge_calls, judge_attributions);
- with the ground truth given to the judge (the paper's other setting) through the same call.
Prints agent-level and step-level accuracy per subset (the paper's metrics: predicted agent ==
`mistake_agent`, predicted step == `mistake_step`; a run without a verdict counts as wrong) as a
table, and a last JSON line. Needs a model endpoint (CAUSELINE_JUDGE_BASE_URL, CAUSELINE_JUDGE_MODEL);
without one it says so and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "whowhen"
SUBSETS = ("Algorithm-Generated", "Hand-Crafted")
BASE_NS = 1_764_547_200_000_000_000  # 2025-12-01
STEP_NS = 1_000_000
FAILED = "the team's final answer was wrong"  # what the run records; never the correct answer


@dataclass(frozen=True)
class Run:
    subset: str
    name: str  # the file's stem
    question: str
    ground_truth: str
    history: list[dict]
    mistake_agent: str
    mistake_step: int

    @property
    def trace_id(self) -> bytes:
        return hashlib.sha256(f"whowhen/{self.subset}/{self.name}".encode()).digest()[:16]


def load_runs(data: Path, subset: str, limit: int | None = None) -> list[Run]:
    """The subset's runs in file-number order (the first `limit`); a file that is not a labelled run
    is skipped."""
    files = sorted((data / subset).glob("*.json"), key=lambda p: (len(p.stem), p.stem))
    runs = []
    for path in files:
        if limit is not None and len(runs) >= limit:
            break
        raw = json.loads(path.read_text(encoding="utf-8"))
        try:
            runs.append(Run(subset, path.stem, str(raw.get("question") or ""), str(raw.get("ground_truth") or ""),
                            list(raw["history"]), str(raw["mistake_agent"]), int(raw["mistake_step"])))
        except (KeyError, TypeError, ValueError):
            continue
    return runs


def agent_of(message: dict) -> tuple[str, str]:
    """(agent name, span name) of a history message: `name` (Algorithm-Generated) else `role`
    (Hand-Crafted, where "Orchestrator (-> WebSurfer)" is the Orchestrator)."""
    label = str(message.get("name") or message.get("role") or "unknown")
    agent = label.split(" (", 1)[0].strip() or label
    return agent, label


def _value(value) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))


def _span(trace_id: bytes, number: int, parent: bytes | None, name: str, start: int, end: int,
          attributes: dict, error: str | None = None) -> Span:
    span = Span(trace_id=trace_id, span_id=hashlib.sha256(trace_id + number.to_bytes(4, "big")).digest()[:8],
                parent_span_id=parent or b"", name=name, kind=1, start_time_unix_nano=start, end_time_unix_nano=end,
                status=Status(code=2, message=error) if error else Status())
    span.attributes.extend(KeyValue(key=k, value=_value(v)) for k, v in attributes.items())
    return span


def to_otlp(run: Run) -> ExportTraceServiceRequest:
    """One trace: the root workflow span (the question as input, marked failed with no error
    detail) and one agent span per history step, in order, the message as its output."""
    steps = len(run.history)
    root = _span(run.trace_id, 0, None, f"whowhen {run.subset} {run.name}", BASE_NS, BASE_NS + (steps + 1) * STEP_NS,
                 {"gen_ai.operation.name": "invoke_workflow", "input.value": run.question}, error=FAILED)
    spans = [root]
    for index, message in enumerate(run.history):
        agent, label = agent_of(message)
        start = BASE_NS + (index + 1) * STEP_NS
        content = message.get("content")
        spans.append(_span(run.trace_id, index + 1, root.span_id, label, start, start + STEP_NS // 2, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
            # An empty message is still a step: the labels index into the history.
            "output.value": content if isinstance(content, str) and content.strip() else "(empty message)",
            "whowhen.step": index}))
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="whowhen")))
    scope = resource.scope_spans.add()
    scope.scope.name = "bench.whowhen"
    scope.spans.extend(spans)
    return request


def ingest(database_url: str, project_id: int, runs: list[Run]) -> int:
    """Through the collector's write path: decode, normalize, redact, price, COPY."""
    import psycopg

    from collector.body import PROTOBUF
    from collector.pipeline import prepare
    from core.otlp import Limits
    from db.engine import libpq_url
    from db.ingest import prepare_connection, write_batch

    written = 0
    with psycopg.connect(libpq_url(database_url)) as conn:
        prepare_connection(conn)
        for run in runs:
            prepared = prepare(to_otlp(run).SerializeToString(), PROTOBUF, project_id=project_id, limits=Limits(),
                               overrides=())
            write_batch(conn, prepared.rows, prepared.edges)
            written += len(prepared.rows)
    return written


@dataclass(frozen=True)
class Prediction:
    agent: str | None  # None: no verdict (the call failed or answered garbage)
    step: int | None


def score(runs: list[Run], predictions: dict[bytes, Prediction]) -> dict:
    """Agent- and step-level accuracy (the paper's metrics) of predictions keyed by trace id; a
    run without a verdict counts as wrong."""
    from core.judge_attribution import agent_key

    agent_ok = step_ok = verdicts = 0
    for run in runs:
        p = predictions.get(run.trace_id)
        if p is None or p.agent is None:
            continue
        verdicts += 1
        agent_ok += agent_key(p.agent) == agent_key(run.mistake_agent)
        step_ok += p.step == run.mistake_step
    n = len(runs)
    return {"runs": n, "verdicts": verdicts, "agent_accuracy": round(agent_ok / n, 4) if n else None,
            "step_accuracy": round(step_ok / n, 4) if n else None}


def judge_all(sessions, settings, database_url: str, project_id: int, runs: list[Run], modes: tuple[str, ...]) -> dict:
    """Ingest, attribute, judge; {mode: {subset: score}}."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from db.models import JudgeAttribution
    from db.queries.forensics import attribute_pending
    from judge.attribution import JudgeAttributor, judge_run, read_run
    from judge.client import JudgeError, ModelEndpoint
    from core.judge_attribution import VerdictError

    ingest(database_url, project_id, runs)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    while True:
        with sessions.begin() as session:
            if not attribute_pending(session, now=later, delay=0, limit=200):
                break
    endpoint = ModelEndpoint.from_settings(settings)
    results: dict = {}
    if "without" in modes:
        job = JudgeAttributor(sessions, endpoint, settings, batch=50)
        while job.run_once():
            pass
        with sessions() as session:
            rows = session.scalars(select(JudgeAttribution).where(JudgeAttribution.project_id == project_id)).all()
            predictions = {r.trace_id: Prediction(r.agent, r.step_index) for r in rows if r.status == "verdict"}
        results["without_ground_truth"] = _per_subset(runs, predictions)
    if "with" in modes:
        predictions = {}
        for run in runs:
            read = read_run(sessions, project_id, run.trace_id)
            if read is None or not read[1].steps:
                continue
            try:
                verdict, _ = judge_run(sessions, endpoint, settings, project_id, run.trace_id, read[1],
                                       ground_truth=run.ground_truth)
            except (JudgeError, VerdictError):
                continue
            predictions[run.trace_id] = Prediction(verdict.agent, verdict.step)
        results["with_ground_truth"] = _per_subset(runs, predictions)
    return results


def _per_subset(runs: list[Run], predictions: dict) -> dict:
    return {subset: score([r for r in runs if r.subset == subset], predictions)
            for subset in SUBSETS if any(r.subset == subset for r in runs)}


def table(results: dict) -> str:
    lines = [f"{'setting':<22} {'subset':<20} {'runs':>5} {'verdicts':>8} {'agent acc':>9} {'step acc':>9}"]
    for mode, subsets in results.items():
        for subset, s in subsets.items():
            lines.append(f"{mode:<22} {subset:<20} {s['runs']:>5} {s['verdicts']:>8} "
                         f"{s['agent_accuracy']:>9.1%} {s['step_accuracy']:>9.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Who&When directory (not copied)")
    parser.add_argument("--limit", type=int, default=None, help="runs per subset (default: all)")
    parser.add_argument("--ground-truth", choices=("both", "with", "without"), default="both")
    parser.add_argument("--daily-tokens", type=int, default=50_000_000, help="the judge's token budget for this run")
    parser.add_argument("--daily-usd", type=float, default=100.0, help="the judge's USD budget for this run")
    args = parser.parse_args(argv)

    from core.settings import Settings

    settings = Settings()
    if not settings.judge_base_url or not settings.judge_model:
        print("no model endpoint configured (CAUSELINE_JUDGE_BASE_URL and CAUSELINE_JUDGE_MODEL): nothing measured")
        print(json.dumps({"skipped": "no model endpoint configured"}))
        return 0
    if not all((args.data / subset).is_dir() for subset in SUBSETS):
        print(f"Who&When data not found in {args.data} (see its README): nothing measured")
        print(json.dumps({"skipped": f"no data in {args.data}"}))
        return 0
    settings = settings.model_copy(update={"judge_daily_tokens": args.daily_tokens, "judge_daily_usd": args.daily_usd})
    runs = [run for subset in SUBSETS for run in load_runs(args.data, subset, args.limit)]
    modes = ("without", "with") if args.ground_truth == "both" else (args.ground_truth,)

    from bench.benchdb import bench_database
    from db.engine import make_engine, make_sessionmaker
    from db.queries.auth import create_project

    with bench_database("causeline_bench_whowhen") as url:
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            project_id = create_project(session, "whowhen").id
        results = judge_all(sessions, settings, url, project_id, runs, modes)
        engine.dispose()
    print(f"Who&When, all-at-once, judge {settings.judge_model} at {settings.judge_base_url}")
    print(table(results))
    print(json.dumps({"model": settings.judge_model, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
