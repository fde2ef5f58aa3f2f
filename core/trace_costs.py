"""What one trace cost, broken down by step, agent, model and tool; tokens by kind;
requested versus served model for every model call. Pure, no I/O.

Attribution of a model call (any span with tokens or a cost, in practice llm and
embedding spans; agent/workflow spans carry no tokens after normalization):
- step: the nearest ancestor (or the span itself) of category `workflow`, by its
  step name (core.normalize.step_name: `gen_ai.workflow.name`, OpenLLMetry's workflow/task
  name, the AI SDK's functionId) or span name; "(none)" outside any step;
- agent: the span's own `agent_name`, else the nearest ancestor's; "(none)" otherwise;
- model: the served model (`response_model`), else the requested one; "(unknown)";
- tool: the nearest ancestor of category `tool` (a model call made inside a tool), by
  `tool_name` or span name; "(none)" otherwise.
Unpriced calls are counted separately and never add $0 to a cost: a group whose calls
are all unpriced has `cost_usd = None`. A model call recorded twice by stacked
instrumentations counts once: the span marked `duplicate_of` (core.model_call_dedup) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from core.forensics_view import Key, SpanRef, SpanView, ref
from core.normalize import step_name
from core.span import is_model_call

NONE_LABEL = "(none)"
UNKNOWN_MODEL = "(unknown)"
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


@dataclass(frozen=True, slots=True)
class TokenTotals:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass(frozen=True, slots=True)
class CostGroup:
    key: str
    calls: int
    priced_calls: int
    unpriced_calls: int
    tokens: TokenTotals
    cost_usd: Decimal | None  # sum over priced calls; None when none was priced
    duration_ns: int


@dataclass(frozen=True, slots=True)
class ModelCallCost:
    span: SpanRef
    step: str
    agent: str
    tool: str
    provider: str | None
    requested_model: str | None
    served_model: str | None
    model_differs: bool  # both known and different (routing, aliasing, a dated snapshot)
    status: str
    tokens: TokenTotals
    cost_usd: Decimal | None
    cost_source: str | None


@dataclass(frozen=True, slots=True)
class TraceCosts:
    trace_id: bytes
    calls: int
    priced_calls: int
    unpriced_calls: int
    tokens: TokenTotals
    cost_usd: Decimal          # priced calls only; see unpriced_calls
    failed_calls: int
    failed_cost_usd: Decimal   # spent on model calls that failed
    by_step: tuple[CostGroup, ...]
    by_agent: tuple[CostGroup, ...]
    by_model: tuple[CostGroup, ...]
    by_tool: tuple[CostGroup, ...]
    model_calls: tuple[ModelCallCost, ...]


def _costed(span: SpanView) -> bool:
    return is_model_call(span.category) or span.tokens.any or span.cost_usd is not None or span.unpriced


def _tokens(span: SpanView) -> TokenTotals:
    t = span.tokens
    return TokenTotals(t.input or 0, t.output or 0, t.cache_read or 0, t.cache_write or 0, t.reasoning or 0)


def _add(a: TokenTotals, b: TokenTotals) -> TokenTotals:
    return TokenTotals(*(getattr(a, k) + getattr(b, k) for k in TOKEN_KINDS))


def trace_costs(trace_id: bytes, spans: Sequence[SpanView]) -> TraceCosts:
    nodes: dict[Key, SpanView] = {}
    for span in spans:
        if span.trace_id == trace_id:
            nodes.setdefault(span.key, span)

    def ancestors(span: SpanView) -> Iterable[SpanView]:
        seen = {span.key}
        cur = span
        while cur.parent_span_id:
            key = (cur.trace_id, cur.parent_span_id)
            if key in seen or key not in nodes:
                return
            seen.add(key)
            cur = nodes[key]
            yield cur

    calls: list[ModelCallCost] = []
    for span in sorted(nodes.values(), key=lambda s: (s.start_ns, s.span_id)):
        if not _costed(span) or span.duplicate_of is not None:
            continue
        chain = [span, *ancestors(span)]
        step = next((_step_name(s) for s in chain if s.category == "workflow"), NONE_LABEL)
        agent = next((s.agent_name for s in chain if s.agent_name), NONE_LABEL)
        tool = next((s.tool_name or s.name for s in chain[1:] if s.category == "tool"), NONE_LABEL)
        requested, served = span.request_model, span.response_model
        calls.append(ModelCallCost(
            span=ref(span), step=step, agent=agent, tool=tool, provider=span.provider,
            requested_model=requested, served_model=served,
            model_differs=bool(requested and served and requested != served), status=span.status,
            tokens=_tokens(span), cost_usd=None if span.unpriced else span.cost_usd,
            cost_source=span.cost_source,
        ))
    durations = {c.span.key: nodes[c.span.key].duration_ns for c in calls}

    def group(label) -> tuple[CostGroup, ...]:
        buckets: dict[str, list[ModelCallCost]] = {}
        for call in calls:
            buckets.setdefault(label(call), []).append(call)
        groups = [_group(key, items, durations) for key, items in buckets.items()]
        return tuple(sorted(groups, key=lambda g: (-(g.cost_usd or 0), -g.calls, g.key)))

    total = _group("", calls, durations)
    failed = [c for c in calls if c.status == "error"]
    return TraceCosts(
        trace_id=trace_id, calls=total.calls, priced_calls=total.priced_calls,
        unpriced_calls=total.unpriced_calls, tokens=total.tokens, cost_usd=total.cost_usd or Decimal(0),
        failed_calls=len(failed), failed_cost_usd=sum((c.cost_usd or Decimal(0) for c in failed), Decimal(0)),
        by_step=group(lambda c: c.step), by_agent=group(lambda c: c.agent),
        by_model=group(lambda c: c.served_model or c.requested_model or UNKNOWN_MODEL),
        by_tool=group(lambda c: c.tool), model_calls=tuple(calls),
    )


def _step_name(span: SpanView) -> str:
    return step_name(span.attributes, span.name)


def _group(key: str, calls: list[ModelCallCost], durations: dict) -> CostGroup:
    tokens = TokenTotals()
    cost: Decimal | None = None
    priced = unpriced = 0
    for call in calls:
        tokens = _add(tokens, call.tokens)
        if call.cost_source == "unpriced":
            unpriced += 1
        elif call.cost_usd is not None:
            priced += 1
            cost = (cost or Decimal(0)) + call.cost_usd
    return CostGroup(key=key, calls=len(calls), priced_calls=priced, unpriced_calls=unpriced, tokens=tokens,
                     cost_usd=cost, duration_ns=sum(durations[c.span.key] for c in calls))
