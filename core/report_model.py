"""The one model of an audit report, rendered as HTML, PDF, JSON and CSV by reports/.

A report is a cover (what, whose, which window, who generated it, when), key facts, titled
tables and bar charts, plus what makes it verifiable: the manifest of the span records it
covers (core/report_manifest.py) and the audit trail's head at generation time. Builders
here are pure: they take what db/ and pages/ returned and decide what the reader sees,
including whether captured content is shown (the reader's role AND the generator's choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from core.attribution_model import TraceAttribution
from core.failure import guardrail_blocked
from core.masking import MASK, mask_attributes
from core.report_manifest import Manifest
from core.span import MODEL_CALL_CATEGORIES
from core.trace_costs import TraceCosts

MAX_ROWS = 500  # rows of one table; the count of all is kept beside it
TEXT_CAP = 2000  # characters of captured content shown per field


@dataclass(frozen=True)
class Table:
    key: str  # machine name: the CSV section and JSON key
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: int | None = None  # rows before the cap, when capped
    note: str = ""


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[tuple[str, float], ...]
    unit: str = ""


@dataclass(frozen=True)
class Report:
    kind: str  # "incident" | "period"
    title: str
    project: str
    since: datetime
    until: datetime
    generated_at: datetime
    generator: str  # the audit trail's actor
    content: str  # how captured content is treated, in words
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...]
    retention: str
    audit_head: tuple[int, str]  # (seq, hex hash) of the project's chain
    manifest: Manifest
    subject: str = ""  # the trace id of an incident
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "title": self.title, "project": self.project, "subject": self.subject,
            "window": {"since": _cell(self.since), "until": _cell(self.until)},
            "generated_at": _cell(self.generated_at), "generator": self.generator, "content": self.content,
            "facts": dict(self.facts), "retention": self.retention,
            "audit_trail_head": {"seq": self.audit_head[0], "hash": self.audit_head[1]},
            "tables": {t.key: {"title": t.title, "total": len(t.rows) if t.total is None else t.total,
                               "note": t.note, "rows": [dict(zip(t.columns, map(_cell, r))) for r in t.rows]}
                       for t in self.tables},
            "charts": [{"title": c.title, "unit": c.unit, "bars": [list(b) for b in c.bars]} for c in self.charts],
            "manifest": self.manifest.header(),  # the renderings stream its entries after it
        }


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


def capped(key: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, note: str = "",
           limit: int = MAX_ROWS) -> Table:
    rows = [tuple(r) for r in rows]
    total = len(rows) if len(rows) > limit else None
    if total is not None:
        note = f"{note} First {limit} of {total} shown.".strip()
    return Table(key, title, tuple(columns), tuple(rows[:limit]), total, note)


def content_policy(sees_content: bool, include_content: bool) -> tuple[bool, str]:
    """Whether captured content is shown, and the sentence the report says about it."""
    if not include_content:
        return False, "captured content not included (chosen at generation)"
    if not sees_content:
        return False, "captured content masked: the generator's role cannot read captured content"
    return True, "captured content included"


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= TEXT_CAP else text[:TEXT_CAP] + f"… [{len(text) - TEXT_CAP} more characters]"


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 1)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.000001"))


def _count(values: Iterable[str | None]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for v in values:
        if v:
            counts[v] = counts.get(v, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class Cover:
    project: str
    generated_at: datetime
    generator: str
    retention: str
    audit_head: tuple[int, str]


def incident_report(cover: Cover, trace_id: bytes, spans: Sequence[Mapping[str, Any]],
                    attribution: TraceAttribution | None, costs: TraceCosts | None, manifest: Manifest, *,
                    sees_content: bool, include_content: bool, judge: Mapping[str, Any] | None = None) -> Report:
    """One run and the runs linked to it. `spans`: the stored fields of every covered span.
    `judge`: the judge's verdict on the run (judge-assisted attribution: agent, step_index,
    step_span, reasoning, model, prompt_version), reported apart from the root causes."""
    show, content = content_policy(sees_content, include_content)
    spans = sorted(({**s, "attributes": s["attributes"] or {}} for s in spans),
                   key=lambda s: (s["start_ns"], bytes(s["trace_id"]), bytes(s["span_id"])))
    names = {(bytes(s["trace_id"]), bytes(s["span_id"])): s["name"] for s in spans}
    start = min(s["start_time"] for s in spans)
    end = max(s["end_time"] for s in spans)
    t0 = spans[0]["start_ns"]

    runs: dict[bytes, list] = {}
    for s in spans:
        runs.setdefault(bytes(s["trace_id"]), []).append(s)
    run_rows = [(tid.hex(), "requested" if tid == trace_id else "linked",
                 next((s["name"] for s in ss if s["parent_span_id"] is None), ss[0]["name"]),
                 min(s["start_time"] for s in ss), max(s["end_time"] for s in ss), len(ss),
                 sum(s["status"] == "error" for s in ss)) for tid, ss in runs.items()]
    run_rows.sort(key=lambda r: (r[1] != "requested", r[3]))

    model_calls = [s for s in spans if s["category"] in MODEL_CALL_CATEGORIES]
    inventory = (
        [("agent", a, n) for a, n in _count(s["agent_name"] for s in spans)]
        + [("model", m, n) for m, n in _count(
            f"{s['provider'] or '?'} / {s['request_model'] or '?'}"
            + (f" (served {s['response_model']})" if s["response_model"] and s["response_model"] != s["request_model"]
               else "") for s in model_calls)]
        + [("tool", t, n) for t, n in _count(s["tool_name"] for s in spans)]
    )

    failures = attribution.failures if attribution else ()
    cause_rows = [(
        f.root_cause.name, f.error_class, "yes" if f.recovered else "no",
        f"{f.recovery} by {f.recovered_by.name}" if f.recovered_by else (f.recovery or ""),
        " → ".join(p.name for p in f.propagation_path), f.blast_radius.size,
        f"{f.burned.total_tokens} tokens, ${_money(f.burned.cost_usd)}, {_ms(f.burned.duration_ns)} ms",
        round(f.confidence, 2),
    ) for f in failures]
    evidence_rows = [(f.root_cause.name, e) for f in failures for e in f.evidence]

    routes = [(s["name"], ", ".join(map(str, _as_list(s["attributes"].get("causeline.route.candidates")))),
               s["attributes"].get("causeline.route.chosen"), s["attributes"].get("causeline.route.reason"))
              for s in spans if s["operation"] == "route"]
    guards = [(s["name"], s["status"], "blocked" if guardrail_blocked(s["attributes"], s["category"]) else "passed",
               s["status_message"]) for s in spans
              if s["category"] == "guardrail" or any(k.startswith("causeline.guardrail.") for k in s["attributes"])]

    linked = len(runs) > 1
    timeline_cols = ["+ms", "span", *(["run"] if linked else []), "category", "agent", "model / tool", "status",
                     "duration ms", "error class", "parent"]
    timeline, captured = [], []
    for s in spans:
        timeline.append([
            _ms(s["start_ns"] - t0), s["name"], *([bytes(s["trace_id"]).hex()[:8]] if linked else []),
            s["category"], s["agent_name"], s["tool_name"] or s["response_model"] or s["request_model"], s["status"],
            _ms(s["duration_ns"]), s["error_class"],
            names.get((bytes(s["trace_id"]), bytes(s["parent_span_id"])), "(not received)")
            if s["parent_span_id"] else ""])
        if s["input"] is not None or s["output"] is not None:
            if show:
                captured.append((s["name"], _short(s["input"]), _short(s["output"])))
            elif include_content:
                captured.append((s["name"], s["input"] and MASK, s["output"] and MASK))

    tables = [
        capped("runs", "Runs covered", ["trace id", "relation", "root span", "start", "end", "spans", "errors"],
               run_rows),
        capped("inventory", "Agents, models and tools", ["kind", "name", "spans"], inventory),
        capped("root_causes", "Root causes, propagation and recovery",
               ["root cause", "error class", "recovered", "recovery", "propagation path", "blast radius",
                "burned", "confidence"],
               cause_rows, note="" if attribution else "attribution unavailable for this run"),
        capped("evidence", "Evidence for each root cause", ["root cause", "evidence"], evidence_rows),
        *([capped("judge_view", "The judge's view (model output, not structural evidence)",
                  ["agent", "step", "step span", "reasoning", "model", "prompt version"],
                  [(judge["agent"], judge["step_index"], judge["step_span"],
                    judge["reasoning"] if show else (judge["reasoning"] and MASK), judge["model"],
                    judge["prompt_version"])])] if judge else []),
        capped("routing", "Routing decisions", ["span", "candidates", "chosen", "reason"], routes),
        capped("guardrails", "Guardrail results", ["span", "status", "result", "message"], guards),
    ]
    charts = []
    if costs is not None:
        tables.append(capped("cost_by_model", "Cost and tokens by model",
                             ["model", "calls", "unpriced calls", "input tokens", "output tokens", "cost USD"],
                             [(g.key, g.calls, g.unpriced_calls, g.tokens.input, g.tokens.output, _money(g.cost_usd))
                              for g in costs.by_model]))
        charts.append(Chart("Cost by agent (USD)", tuple((g.key, float(g.cost_usd or 0)) for g in costs.by_agent), "USD"))
    charts.append(Chart("Span duration by category (ms)", tuple(
        (cat, _ms(sum(s["duration_ns"] for s in spans if s["category"] == cat)) or 0.0)
        for cat, _ in _count(s["category"] for s in spans)), "ms"))
    tables.append(capped("timeline", "Timeline", timeline_cols, timeline))
    tables.append(capped("content", "Captured content", ["span", "input", "output"], captured,
                         note=content[0].upper() + content[1:] + "."))
    tables.append(capped("attributes", "Span attributes", ["span", "attributes"],
                         [(s["name"], _attrs(s["attributes"], show)) for s in spans]))

    facts = [
        ("Run", trace_id.hex()), ("Outcome", _outcome(attribution)),
        ("Started", _when(start)), ("Ended", _when(end)),
        ("Duration", f"{(end - start).total_seconds():.3f} s"), ("Spans", str(len(spans))),
        ("Linked runs", str(len(runs) - 1)), ("Model calls", str(len(model_calls))),
    ]
    if costs is not None:
        facts += [("Cost (priced calls)", f"${_money(costs.cost_usd)}"),
                  ("Unpriced calls", str(costs.unpriced_calls)),
                  ("Tokens in / out", f"{costs.tokens.input} / {costs.tokens.output}"),
                  ("Spent on failed calls", f"${_money(costs.failed_cost_usd)}")]
    return Report("incident", f"Incident report: run {trace_id.hex()[:16]}…", cover.project, start, end,
                  cover.generated_at, cover.generator, content, tuple(facts), tuple(tables), tuple(charts),
                  cover.retention, cover.audit_head, manifest, subject=trace_id.hex())


def _outcome(attribution: TraceAttribution | None) -> str:
    if attribution is None:
        return "unknown (not attributed)"
    if attribution.root_missing:
        return "unknown: the run's top span was never received"
    if attribution.failed:
        return f"failed ({len(attribution.failures)} root cause(s))"
    if attribution.failures:
        return f"succeeded after recovering from {len(attribution.failures)} failure(s)"
    return "succeeded"


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _attrs(attributes: Mapping[str, Any], show: bool) -> str:
    shown = attributes if show else mask_attributes(attributes)
    return "; ".join(f"{k}={_short(str(v))}" for k, v in sorted(shown.items()))


@dataclass(frozen=True)
class PeriodFacts:
    """What db/ and pages/ answered for a project and window, in plain rows."""

    runs: Sequence[tuple]  # (trace id hex, root name, start, end, spans, errors, cost)
    runs_total: int
    spans: int
    model_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    unpriced_calls: int
    models: Sequence[tuple]  # (provider, model, calls, errors, retries, fallbacks, first, last)
    model_changes: Sequence[tuple]  # (provider, requested, previous, new, first seen, calls since)
    failures_by_class: Sequence[tuple]  # (error class, failed runs, root causes, recovered)
    failure_concentration: Sequence[tuple]  # (dimension, key, root causes, share of all root causes)
    guardrail_blocks: Sequence[tuple]  # (span name, blocks)
    anomalies: Sequence[tuple]  # (provider, model, metric, time, value, baseline median, z)
    cost_by_model: Sequence[tuple]  # (model, calls, tokens in, tokens out, cost, complete)
    cost_by_day: Sequence[tuple]  # (day, cost)


def period_report(cover: Cover, since: datetime, until: datetime, f: PeriodFacts, manifest: Manifest) -> Report:
    retries = sum(m[4] for m in f.models)
    fallbacks = sum(m[5] for m in f.models)
    facts = (
        ("Window", f"{_when(since)} to {_when(until)}"), ("Runs", str(f.runs_total)),
        ("Spans", str(f.spans)), ("Model calls", str(f.model_calls)),
        ("Tokens in / out", f"{f.tokens_in} / {f.tokens_out}"), ("Cost (priced calls)", f"${_money(f.cost_usd)}"),
        ("Unpriced calls", str(f.unpriced_calls)), ("Retries / fallbacks", f"{retries} / {fallbacks}"),
        ("Served-model changes", str(len(f.model_changes))),
        ("Guardrail blocks", str(sum(b[1] for b in f.guardrail_blocks))), ("Anomalies", str(len(f.anomalies))),
        ("Retention", cover.retention),
    )
    tables = (
        capped("models", "Models and providers used",
               ["provider", "requested model", "calls", "errors", "retries", "fallbacks", "first hour", "last hour"],
               f.models),
        capped("model_changes", "Served-model changes",
               ["provider", "requested model", "previously served", "now served", "first seen", "calls since"],
               f.model_changes, note="" if f.model_changes else "No change of the served model was seen."),
        capped("failures_by_class", "Failures by class", ["error class", "failed runs", "root causes", "recovered"],
               f.failures_by_class),
        capped("failure_concentration", "Where failures concentrated", ["dimension", "value", "root causes", "share of root causes"],
               f.failure_concentration),
        capped("guardrail_blocks", "Guardrail blocks", ["guardrail", "blocks"], f.guardrail_blocks),
        capped("anomalies", "Anomalies", ["provider", "model", "metric", "time", "value", "baseline median", "z"],
               f.anomalies),
        capped("cost_by_model", "Cost by model", ["model", "calls", "input tokens", "output tokens", "cost USD",
                                                  "complete"], f.cost_by_model),
        Table("periods_of_use", "Periods of use (each run's start and end)",
              ("trace id", "root span", "start", "end", "spans", "errors", "cost USD"),
              tuple(tuple(r) for r in f.runs[:MAX_ROWS]),
              f.runs_total if f.runs_total > len(f.runs[:MAX_ROWS]) else None,
              f"First {min(len(f.runs), MAX_ROWS)} of {f.runs_total} runs shown (oldest first)."
              if f.runs_total > min(len(f.runs), MAX_ROWS) else ""),
    )
    charts = (
        Chart("Cost per day (USD)", tuple((str(d), float(c or 0)) for d, c in f.cost_by_day), "USD"),
        Chart("Calls by model", tuple((f"{m[0]} / {m[1]}", float(m[2])) for m in f.models[:12])),
        Chart("Root causes by error class", tuple((c[0], float(c[2])) for c in f.failures_by_class[:12])),
    )
    return Report("period", f"Period report: {cover.project}", cover.project, since, until, cover.generated_at,
                  cover.generator, "captured content not included (record-keeping report)", facts, tables, charts,
                  cover.retention, cover.audit_head, manifest)
