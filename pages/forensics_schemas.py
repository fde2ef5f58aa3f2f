"""Response models of the forensics endpoints (attribution, lineage, trace costs, failures).

Same conventions as pages/schemas.py: lowercase hex ids, money as decimal strings in USD
(never floats; null = nothing priced), token counts as integers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from pages.schemas import money
from core.attribution import BlastRadius, Burned, Failure, TraceAttribution
from core.forensics_view import SpanRef
from core.judge_attribution import METHOD
from core.masking import mask_text
from core.lineage import Lineage
from core.trace_costs import CostGroup, ModelCallCost, TraceCosts
from db.queries.failures import FailureGroup, FailureTotals


class SpanRefOut(BaseModel):
    trace_id: str
    span_id: str
    name: str


class TokensByKind(BaseModel):
    input: int = Field(description="Includes cache reads and writes (GenAI conventions).")
    output: int = Field(description="Includes reasoning tokens.")
    cache_read: int
    cache_write: int
    reasoning: int


class BurnedOut(BaseModel):
    tokens: TokensByKind
    total_tokens: int = Field(description="input + output (each kind counted once).")
    cost_usd: str = Field(description="Priced spans only, decimal string.", examples=["0.0042"])
    unpriced_calls: int = Field(description="Model calls burned that could not be priced (not in cost_usd).")
    duration_ns: int = Field(description="Time of the root cause and its failed re-attempts.")
    duration_ms: float


class SkippedStepOut(BaseModel):
    name: str
    reason: str = Field(description="cancelled: started and cut short by this failure; "
                                    "planned: named in causeline.plan.steps of a failed ancestor, never started.")
    span: SpanRefOut | None


class BlastRadiusOut(BaseModel):
    data_consumers: list[SpanRefOut] = Field(description="Spans that consumed the failed output, "
                                                         "directly or transitively (data_from links).")
    failed_ancestors: list[SpanRefOut] = Field(description="Ancestors of the root cause that failed because of it.")
    skipped_steps: list[SkippedStepOut]
    size: int


class FailureGrouping(BaseModel):
    service: str | None
    agent: str | None = Field(description="The root cause's agent, else its nearest agent ancestor's.")
    tool: str | None = Field(description="The root cause's tool, else its nearest tool ancestor's.")
    provider: str | None = Field(description="Of the root cause, or of the model call whose output it rejected.")
    request_model: str | None
    response_model: str | None
    step: str = Field(description="The nearest workflow step around the root cause; the root cause itself when "
                                  "it ran in no step.")


class FailureOut(BaseModel):
    root_cause: SpanRefOut
    error_class: str = Field(description="timeout, rate_limited, provider_unavailable, auth_failed, context_overflow, "
                                         "content_filtered, invalid_output, tool_error, guardrail_blocked, "
                                         "budget_exceeded, cancelled or unknown.")
    category: str
    propagation_path: list[SpanRefOut] = Field(description="Root cause first, outermost failed span last.")
    outermost: SpanRefOut
    reached_top: bool = Field(description="The failure made a trace's top span fail.")
    ended_run: bool = Field(description="An agent failed and nothing above it went on after: the run "
                                        "failed with it, though the spans above ended OK.")
    recovered: bool = Field(description="A retry/fallback succeeded or a parent handled the failure; "
                                        "`burned` is what it cost anyway.")
    recovered_by: SpanRefOut | None
    recovery: str | None = Field(description="retry_of | fallback_of | handled | null")
    burned: BurnedOut
    blast_radius: BlastRadiusOut
    confidence: float = Field(ge=0, le=1, description="See docs/forensics.md, confidence table.")
    evidence: list[str] = Field(description="The attributes, events and structure that led to the verdict.")
    output_of: SpanRefOut | None = Field(description="For a failing guardrail/validation: the model call whose output it rejected.")
    failed_spans: list[SpanRefOut] = Field(description="Every failed span this root cause explains, itself included.")
    grouping: FailureGrouping


class JudgeViewOut(BaseModel):
    """The judge's verdict (judge-assisted attribution, docs/forensics.md): model output, not a
    structural finding."""

    source: str = Field("judge", description="Always `judge`: this is a model's opinion, not structural evidence.")
    method: str = Field(description="How the judge was asked (`all_at_once`, the Who&When method).")
    agent: str = Field(description="The agent the judge blamed.")
    step_index: int = Field(description="The step (0-based, the run's messages in start order) where it first erred.")
    span_id: str | None = Field(description="The span of that step.")
    reasoning: str | None = Field(description="The judge's reasoning (model output; masked for readers without "
                                              "`read_content`, as it may quote captured content).")
    model: str | None
    prompt_version: str | None
    judge_call_id: int | None = Field(description="The recorded call (judge_calls) that gave this verdict.")
    created_at: datetime


class AttributionOut(BaseModel):
    trace_id: str
    failed: bool = Field(description="A top span of this trace failed (the run failed).")
    root_missing: bool = Field(description="No top span of this trace was received (some SDKs do not send it "
                                           "when the run fails): `failed: false` then means unknown, not ok.")
    summary: str
    failures: list[FailureOut] = Field(description="Empty when no span of the trace or its linked traces failed.")
    span_count: int = Field(description="Spans considered, linked traces included.")
    failed_span_count: int
    traces: list[str] = Field(description="This trace first, then the linked traces that were included.")
    truncated: bool = Field(description="A depth, trace or span bound cut the linked traces.")
    lineage_url: str
    html_url: str
    judge: JudgeViewOut | None = Field(None, description="The judge's view of a failed run that no error span "
                                                         "explains, when judge-assisted attribution gave one.")


class LineageTrace(BaseModel):
    trace_id: str
    depth: int = Field(description="Hops from the requested trace over cross-trace links.")


class LineageNodeOut(BaseModel):
    trace_id: str
    span_id: str
    name: str | None = Field(description="Null when the span was never received (a dangling link).")
    category: str | None
    status: str | None
    error_class: str | None
    present: bool
    depth: int


class LineageEdgeOut(BaseModel):
    relation: str = Field(description="parent, retry_of, fallback_of, handoff_from, data_from, caused_by, follows or link.")
    trace_id: str
    span_id: str
    linked_trace_id: str
    linked_span_id: str
    cross_trace: bool


class LineageOut(BaseModel):
    trace_id: str
    max_depth: int
    traces: list[LineageTrace]
    nodes: list[LineageNodeOut]
    edges: list[LineageEdgeOut] = Field(description="span --relation--> linked span.")
    truncated: bool
    cyclic: bool = Field(description="The edges contain a cycle (reported, never followed twice).")
    cycle_edges: list[LineageEdgeOut]


class CostGroupOut(BaseModel):
    key: str
    calls: int
    priced_calls: int
    unpriced_calls: int
    tokens: TokensByKind
    cost_usd: str | None = Field(description="Priced calls only; null when none was priced.")
    duration_ms: float


class ModelCallOut(BaseModel):
    span: SpanRefOut
    step: str
    agent: str
    tool: str
    provider: str | None
    requested_model: str | None
    served_model: str | None
    model_differs: bool = Field(description="Requested and served model both known and different.")
    status: str
    tokens: TokensByKind
    cost_usd: str | None
    cost_source: str | None = Field(description="'genai-prices <version>', 'override:<id>', 'reported' or 'unpriced'.")


class TraceCostsOut(BaseModel):
    trace_id: str
    calls: int
    priced_calls: int
    unpriced_calls: int = Field(description="Never counted as $0 in cost_usd.")
    tokens: TokensByKind
    cost_usd: str
    failed_calls: int
    failed_cost_usd: str
    by_step: list[CostGroupOut] = Field(description="Nearest workflow/step ancestor; '(none)' outside steps.")
    by_agent: list[CostGroupOut]
    by_model: list[CostGroupOut] = Field(description="Served model, else requested.")
    by_tool: list[CostGroupOut] = Field(description="Nearest tool ancestor (model calls made inside a tool).")
    model_calls: list[ModelCallOut]


class FailureGroupOut(BaseModel):
    key: str | None = Field(description="The group value; null for root causes without one (e.g. no provider).")
    failures: int = Field(description="Distinct root causes.")
    recovered: int
    runs: int = Field(description="Runs holding one of these root causes.")
    failed_runs: int
    share_of_failed_runs: float | None = Field(description="failed_runs / failed runs in scope; null when none failed.")
    first_seen: datetime
    last_seen: datetime
    example_traces: list[str]
    tokens_burned: int
    cost_burned_usd: str = Field(description="What the failures burned (root causes and failed re-attempts).")
    cost_burned_recovered_usd: str = Field(description="Part of cost_burned_usd spent by failures that were recovered.")
    failed_runs_cost_usd: str = Field(description="Whole cost of the failed runs of this group.")
    failed_runs_tokens: int
    mean_confidence: float
    trend: list[int] = Field(description="Failures (distinct root causes) per slice of the window, oldest first; "
                                         "the slices start at FailuresOut.trend_starts.")


class FailureTotalsOut(BaseModel):
    runs: int = Field(description="Runs (traces) in scope.")
    runs_with_failures: int
    failed_runs: int = Field(description="Runs whose top span failed.")
    failures: int
    recovered: int
    tokens_burned: int
    cost_burned_usd: str
    cost_burned_recovered_usd: str
    failed_runs_cost_usd: str
    failed_runs_tokens: int
    pending_traces: int = Field(description="Runs whose attribution is not up to date yet (see attribution_delay_s).")


class FailuresOut(BaseModel):
    since: datetime
    until: datetime
    filters: dict[str, str]
    totals: FailureTotalsOut
    trend_starts: list[datetime] = Field(description="Start of each trend slice (the window cut in equal parts).")
    groups: dict[str, list[FailureGroupOut]] = Field(
        description="One section per grouping (error_class, provider, model, tool, agent, step), "
                    "or only the one asked for with group_by.")


# --- converters ---------------------------------------------------------------

def span_ref_out(item: SpanRef | None) -> SpanRefOut | None:
    if item is None:
        return None
    return SpanRefOut(trace_id=item.trace_id.hex(), span_id=item.span_id.hex(), name=item.name)


def _money0(value: Decimal | None) -> str:
    return money(value) or "0"


def _tokens(t) -> TokensByKind:
    return TokensByKind(input=t.input, output=t.output, cache_read=t.cache_read, cache_write=t.cache_write,
                        reasoning=t.reasoning)


def _burned(b: Burned) -> BurnedOut:
    return BurnedOut(tokens=_tokens(b), total_tokens=b.total_tokens, cost_usd=_money0(b.cost_usd),
                     unpriced_calls=b.unpriced_calls, duration_ns=b.duration_ns,
                     duration_ms=b.duration_ns / 1_000_000)


def _blast(b: BlastRadius) -> BlastRadiusOut:
    return BlastRadiusOut(
        data_consumers=[span_ref_out(s) for s in b.data_consumers],
        failed_ancestors=[span_ref_out(s) for s in b.failed_ancestors],
        skipped_steps=[SkippedStepOut(name=s.name, reason=s.reason, span=span_ref_out(s.span))
                       for s in b.skipped_steps],
        size=b.size,
    )


def failure_out(f: Failure) -> FailureOut:
    return FailureOut(
        root_cause=span_ref_out(f.root_cause), error_class=f.error_class, category=f.category,
        propagation_path=[span_ref_out(s) for s in f.propagation_path], outermost=span_ref_out(f.outermost),
        reached_top=f.reached_top, ended_run=f.ended_run, recovered=f.recovered, recovered_by=span_ref_out(f.recovered_by),
        recovery=f.recovery, burned=_burned(f.burned), blast_radius=_blast(f.blast_radius),
        confidence=f.confidence, evidence=list(f.evidence), output_of=span_ref_out(f.output_of),
        failed_spans=[span_ref_out(s) for s in f.failed_spans],
        grouping=FailureGrouping(service=f.service_name, agent=f.agent_name, tool=f.tool_name,
                                 provider=f.provider, request_model=f.request_model,
                                 response_model=f.response_model, step=f.step_name),
    )


def judge_view_out(row, *, content: bool) -> JudgeViewOut:
    """A judge_attributions verdict row as returned; its reasoning masked unless `content`."""
    return JudgeViewOut(method=METHOD, agent=row.agent, step_index=row.step_index,
                        span_id=row.span_id.hex() if row.span_id else None,
                        reasoning=row.reasoning if content else mask_text(row.reasoning), model=row.model,
                        prompt_version=row.prompt_version, judge_call_id=row.judge_call_id, created_at=row.created_at)


def attribution_out(a: TraceAttribution, truncated: bool, judge: JudgeViewOut | None = None) -> AttributionOut:
    hex_id = a.trace_id.hex()
    return AttributionOut(judge=judge,
        trace_id=hex_id, failed=a.failed, root_missing=a.root_missing, summary=a.summary, failures=[failure_out(f) for f in a.failures],
        span_count=a.span_count, failed_span_count=a.failed_span_count,
        traces=[t.hex() for t in a.trace_ids], truncated=truncated,
        lineage_url=f"/api/traces/{hex_id}/lineage", html_url=f"/traces/{hex_id}",
    )


def _edge(e) -> LineageEdgeOut:
    return LineageEdgeOut(relation=e.relation, trace_id=e.trace_id.hex(), span_id=e.span_id.hex(),
                          linked_trace_id=e.linked_trace_id.hex(), linked_span_id=e.linked_span_id.hex(),
                          cross_trace=e.cross_trace)


def lineage_out(g: Lineage) -> LineageOut:
    return LineageOut(
        trace_id=g.trace_id.hex(), max_depth=g.max_depth,
        traces=[LineageTrace(trace_id=t.hex(), depth=d) for t, d in g.trace_depths],
        nodes=[LineageNodeOut(trace_id=n.trace_id.hex(), span_id=n.span_id.hex(), name=n.name,
                              category=n.category, status=n.status, error_class=n.error_class,
                              present=n.present, depth=n.depth) for n in g.nodes],
        edges=[_edge(e) for e in g.edges], truncated=g.truncated, cyclic=g.cyclic,
        cycle_edges=[_edge(e) for e in g.cycle_edges],
    )


def _group(g: CostGroup) -> CostGroupOut:
    return CostGroupOut(key=g.key, calls=g.calls, priced_calls=g.priced_calls, unpriced_calls=g.unpriced_calls,
                        tokens=_tokens(g.tokens), cost_usd=money(g.cost_usd), duration_ms=g.duration_ns / 1_000_000)


def _call(c: ModelCallCost) -> ModelCallOut:
    return ModelCallOut(
        span=span_ref_out(c.span), step=c.step, agent=c.agent, tool=c.tool, provider=c.provider,
        requested_model=c.requested_model, served_model=c.served_model, model_differs=c.model_differs,
        status=c.status, tokens=_tokens(c.tokens), cost_usd=money(c.cost_usd), cost_source=c.cost_source,
    )


def trace_costs_out(c: TraceCosts) -> TraceCostsOut:
    return TraceCostsOut(
        trace_id=c.trace_id.hex(), calls=c.calls, priced_calls=c.priced_calls, unpriced_calls=c.unpriced_calls,
        tokens=_tokens(c.tokens), cost_usd=_money0(c.cost_usd), failed_calls=c.failed_calls,
        failed_cost_usd=_money0(c.failed_cost_usd),
        by_step=[_group(g) for g in c.by_step], by_agent=[_group(g) for g in c.by_agent],
        by_model=[_group(g) for g in c.by_model], by_tool=[_group(g) for g in c.by_tool],
        model_calls=[_call(m) for m in c.model_calls],
    )


def failure_group_out(g: FailureGroup) -> FailureGroupOut:
    return FailureGroupOut(
        key=g.key, failures=g.failures, recovered=g.recovered, runs=g.runs, failed_runs=g.failed_runs,
        share_of_failed_runs=g.share_of_failed_runs, first_seen=g.first_seen, last_seen=g.last_seen,
        example_traces=[t.hex() for t in g.example_traces], tokens_burned=g.tokens_burned,
        cost_burned_usd=_money0(g.cost_burned_usd), cost_burned_recovered_usd=_money0(g.cost_burned_recovered_usd),
        failed_runs_cost_usd=_money0(g.failed_runs_cost_usd), failed_runs_tokens=g.failed_runs_tokens,
        mean_confidence=g.mean_confidence, trend=g.trend,
    )


def failure_totals_out(t: FailureTotals) -> FailureTotalsOut:
    return FailureTotalsOut(
        runs=t.runs, runs_with_failures=t.runs_with_failures, failed_runs=t.failed_runs, failures=t.failures,
        recovered=t.recovered, tokens_burned=t.tokens_burned, cost_burned_usd=_money0(t.cost_burned_usd),
        cost_burned_recovered_usd=_money0(t.cost_burned_recovered_usd),
        failed_runs_cost_usd=_money0(t.failed_runs_cost_usd), failed_runs_tokens=t.failed_runs_tokens,
        pending_traces=t.pending_traces,
    )

