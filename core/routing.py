"""Routing evidence: per workflow step (or agent, or task), every model that served it, and the
routing decisions recorded by routers with how the chosen model then fared. Pure, no I/O.

The facts come from db/queries/routing.py, one per model call (a call recorded twice by stacked
instrumentations counts once). A model is the requested model (the served one when no request
model was recorded): what a router chooses, whichever dated snapshot answered.

- failure: the call's span ended in error; by error class (core.errors), "(unclassified)" without one;
- latency p50/p95: from the same log-scale histogram the rollups keep (core.latency), so the
  numbers agree with the Providers page;
- cost per successful call: everything spent on the model in that group (failed calls included,
  they cost too) divided by its successful calls; None when no call was priced or none succeeded;
- fallbacks: a call that replaced a failed attempt (`fallback_of`) counts from the failed attempt's
  model to its own;
- scores: the mean of numeric and boolean scores (booleans as 0/1) on the group's calls, per name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Sequence

from core.latency import histogram, quantile_ms
from core.normalize import step_name

GROUPS = ("step", "agent", "task")
NONE_LABEL = "(none)"
UNCLASSIFIED = "(unclassified)"


@dataclass(frozen=True, slots=True)
class Ancestor:
    """A span above a model call, nearest first (only what grouping needs)."""
    span_id: bytes
    category: str
    name: str
    attributes: dict
    agent_name: str | None = None


@dataclass(frozen=True, slots=True)
class CallFact:
    trace_id: bytes
    span_id: bytes
    model: str
    failed: bool
    error_class: str | None
    duration_ns: int
    cost_usd: Decimal | None  # None: unpriced
    agent: str | None
    task: str | None  # the run's root span name
    ancestors: tuple[Ancestor, ...] = ()
    fallback_from: str | None = None  # the model of the failed attempt this call replaced


def step_of(call: CallFact) -> str:
    """The nearest workflow step around the call (core.normalize.step_name), else "(none)"."""
    return next((step_name(a.attributes, a.name) for a in call.ancestors if a.category == "workflow"), NONE_LABEL)


def decision_of(call: CallFact) -> bytes | None:
    """The routing decision the call was made under: its nearest routing ancestor before any step."""
    for a in call.ancestors:
        if a.category == "routing":
            return a.span_id
        if a.category == "workflow":
            return None
    return None


def group_of(call: CallFact, by: str) -> str:
    if by == "step":
        return step_of(call)
    if by == "agent":
        return call.agent or next((a.agent_name for a in call.ancestors if a.agent_name), None) or NONE_LABEL
    if by == "task":
        return call.task or NONE_LABEL
    raise ValueError(f"group by must be one of {', '.join(GROUPS)}")


@dataclass(frozen=True, slots=True)
class ScoreMean:
    count: int
    mean: float


@dataclass(frozen=True, slots=True)
class ModelFigures:
    model: str
    calls: int
    failures: int
    failures_by_class: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    cost_usd: Decimal | None  # everything priced; None when nothing was
    unpriced_calls: int
    cost_per_success: Decimal | None
    scores: dict[str, ScoreMean]
    fallbacks_from: dict[str, int]  # this model took over from these models, how often
    fallbacks_to: dict[str, int]  # these models took over from this one

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def successes(self) -> int:
        return self.calls - self.failures


@dataclass(frozen=True, slots=True)
class GroupFigures:
    group: str
    calls: int
    models: tuple[ModelFigures, ...]  # most calls first


@dataclass(slots=True)
class _Acc:
    calls: int = 0
    failures: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    durations: list[int] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    priced: int = 0
    unpriced: int = 0
    scores: dict[str, list[float]] = field(default_factory=dict)
    fb_from: dict[str, int] = field(default_factory=dict)
    fb_to: dict[str, int] = field(default_factory=dict)


def _bump(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def summarize(calls: Iterable[CallFact], by: str,
              scores: Sequence[tuple[bytes, bytes, str, float]] = ()) -> list[GroupFigures]:
    """Per group, every model that served it. `scores`: (trace_id, span_id, name, value) of numeric
    and boolean scores on model calls. Groups with the most calls first."""
    accs: dict[str, dict[str, _Acc]] = {}
    where: dict[tuple[bytes, bytes], _Acc] = {}
    fallbacks: list[tuple[str, str, str]] = []
    for c in calls:
        group = group_of(c, by)
        acc = accs.setdefault(group, {}).setdefault(c.model, _Acc())
        where[(c.trace_id, c.span_id)] = acc
        acc.calls += 1
        acc.durations.append(c.duration_ns)
        if c.failed:
            acc.failures += 1
            _bump(acc.by_class, c.error_class or UNCLASSIFIED)
        if c.cost_usd is None:
            acc.unpriced += 1
        else:
            acc.priced += 1
            acc.cost += c.cost_usd
        if c.fallback_from is not None:
            fallbacks.append((group, c.fallback_from, c.model))
    for group, source, target in fallbacks:
        models = accs[group]
        _bump(models[target].fb_from, source)
        if source in models:
            _bump(models[source].fb_to, target)
    for trace_id, span_id, name, value in scores:
        acc = where.get((trace_id, span_id))
        if acc is not None and value is not None:
            acc.scores.setdefault(name, []).append(float(value))
    out = []
    for group, models in accs.items():
        figures = tuple(sorted((_figures(model, a) for model, a in models.items()), key=lambda m: (-m.calls, m.model)))
        out.append(GroupFigures(group, sum(m.calls for m in figures), figures))
    return sorted(out, key=lambda g: (-g.calls, g.group))


def _figures(model: str, a: _Acc) -> ModelFigures:
    counts = histogram(a.durations)
    cost = a.cost if a.priced else None
    successes = a.calls - a.failures
    per_success = (cost / successes).quantize(Decimal("0.00000001")) if cost is not None and successes else None
    return ModelFigures(
        model=model, calls=a.calls, failures=a.failures,
        failures_by_class=dict(sorted(a.by_class.items(), key=lambda kv: (-kv[1], kv[0]))),
        p50_ms=quantile_ms(counts, 0.5), p95_ms=quantile_ms(counts, 0.95), cost_usd=cost,
        unpriced_calls=a.unpriced, cost_per_success=per_success,
        scores={n: ScoreMean(len(v), sum(v) / len(v)) for n, v in sorted(a.scores.items())},
        fallbacks_from=dict(sorted(a.fb_from.items())), fallbacks_to=dict(sorted(a.fb_to.items())))


# --- routing decisions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision span (`causeline.route.*`)."""
    trace_id: bytes
    span_id: bytes
    router: str
    candidates: tuple[str, ...]
    chosen: str | None
    reason: str | None
    policy: str | None


def decision_from(trace_id: bytes, span_id: bytes, name: str, attributes: dict) -> Decision:
    def text(key: str) -> str | None:
        value = attributes.get(key)
        return value if isinstance(value, str) and value else None
    raw = attributes.get("causeline.route.candidates")
    candidates = tuple(str(c) for c in raw) if isinstance(raw, (list, tuple)) else ((raw,) if isinstance(raw, str) else ())
    return Decision(trace_id, span_id, text("causeline.route.router") or name, candidates,
                    text("causeline.route.chosen"), text("causeline.route.reason"), text("causeline.route.policy"))


@dataclass(frozen=True, slots=True)
class DecisionFigures:
    router: str
    group: str
    chosen: str
    reason: str
    candidates: tuple[str, ...]
    decisions: int
    chosen_failed: int  # a call of the chosen model under the decision failed (a retry may have recovered)
    gave_up: int  # no call under the decision succeeded
    example_trace: str  # hex, the latest decision's run

    @property
    def failed_rate(self) -> float:
        return self.chosen_failed / self.decisions if self.decisions else 0.0


def decision_figures(decisions: Iterable[Decision], calls: Iterable[CallFact], by: str) -> list[DecisionFigures]:
    """Routing decisions per (router, group, chosen model, reason), with how often a call of the
    chosen model under the decision then failed, and how often none under it succeeded."""
    under: dict[bytes, list[CallFact]] = {}
    group_for: dict[bytes, str] = {}
    for c in calls:
        d = decision_of(c)
        if d is not None:
            under.setdefault(c.trace_id + d, []).append(c)
            group_for.setdefault(c.trace_id + d, group_of(c, by))
    acc: dict[tuple, list] = {}
    for d in decisions:
        key = d.trace_id + d.span_id
        its = under.get(key, [])
        chosen = d.chosen or (its[0].model if its else "(none)")
        row = acc.setdefault((d.router, group_for.get(key, NONE_LABEL), chosen, d.reason or ""),
                             [0, 0, 0, d.candidates, d.trace_id])
        row[0] += 1
        row[1] += any(c.failed and c.model == chosen for c in its)
        row[2] += bool(its) and all(c.failed for c in its)
        row[3] = tuple(dict.fromkeys(row[3] + d.candidates))
        row[4] = d.trace_id
    out = [DecisionFigures(router, group, chosen, reason, cands, n, failed, gave_up, trace.hex())
           for (router, group, chosen, reason), (n, failed, gave_up, cands, trace) in acc.items()]
    return sorted(out, key=lambda f: (f.group, f.router, -f.decisions, f.chosen, f.reason))
