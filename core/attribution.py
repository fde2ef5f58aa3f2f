"""Failure attribution (ARCHITECTURE.md section 5): which span caused each failure of a run,
how it travelled, whether the run recovered, what it burned and what else it hit.

Pure and total: the input is untrusted telemetry (spans and typed edges of a trace and
its linked traces), so every walk is iterative and guarded by a visited set — cycles
in parent ids or links never hang or crash it. No I/O.

Rules (docs/forensics.md explains them with examples):

1. A failed span is one with status "error" (normalization already raised the status
   for exception events, error.type, HTTP >= 400 on model calls, guardrail blocks,
   validation failures and the finish reason "error").
2. A failed span S is *explained* by:
   - a failed child (if some failed children were retried or fell back — a retry_of/
     fallback_of link points at them — only the others, the attempts that were final);
   - a failed span S consumed (S --data_from--> T) or was caused by (S --caused_by--> T);
   - the failed attempt it retried (S --retry_of--> T) when both failed the same way;
   - a failed agent that took over from S (T --handoff_from--> S);
   - for a `cancelled` S under a failed parent: a failed, not-cancelled sibling that
     ended no later than S (the sibling failed, the task group cancelled the rest);
   - a failed span under wrappers (category `workflow`: chains, tasks) that did not fail,
     right below S: an OK wrapper never hides a failure from the agent or run above it.
3. Each explained span keeps one explanation: a candidate that itself explains another
   candidate through a link (retry or data chain) yields to it; among the rest the
   earliest end wins (ties → earliest end, then ids). A cycle of explanations (only
   possible with cyclic links or parent ids) is cut at its earliest-ending span.
4. Root causes are the failed spans with no explanation. Every other failed span sits
   in exactly one root cause's propagation tree; the propagation path follows it from
   the root cause to the outermost failed span (preferring the branch that reached the
   top of the trace, then the parent chain, then retries).
5. Recovered: when a retry_of/fallback_of span pointing at a failed span of the tree
   (or at a failed re-attempt of one, transitively; or at the model call whose output
   a failing check rejected) did not fail; otherwise, unless the failure reached a
   trace's top span, when every failed span at the edge of the tree has a parent that
   did not fail (the parent handled or swallowed it); OK wrappers are looked through.
   A failed *agent* is not handled by OK spans above it that did no work after it ended
   (no span under them started later): they only record that the run ended, as the
   OpenAI Agents SDK's trace spans do when `Runner.run` raises. The failure then ends the
   run, as if it had reached the top.
6. The run failed when a top span of the requested trace failed, or a failure of the
   requested trace ended the run (5); with no top span received, `root_missing` says its
   outcome is unknown.

Cost: O(n log n) — see core.attribution_explain and core.span_tree for how.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from core.attribution_explain import (
    BY_CANCEL, BY_CAUSE, BY_CHILD, BY_DATA, BY_HANDOFF, BY_RETRY, BY_WRAPPED, CANCEL_SLACK_NS, DATA_FROM,
    FALLBACK_OF, RETRY_OF, WRAPPER_CATEGORY, Explanations, Stopped, stop_check,
)
from core.attribution_model import BlastRadius, Burned, Failure, SkippedStep, TraceAttribution
from core.coerce import as_lower_tuple, as_str, first_count
from core.errors import classify_error
from core.failure import guardrail_blocked
from core.forensics_view import EdgeView, Key, SpanRef, SpanView, ref
from core.handoffs import derived_handoff_edges
from core.normalize import step_name
from core.span import MODEL_CALL_CATEGORIES
from core.span_graph import SpanGraph
from core.span_tree import PrefixSums

__all__ = ["attribute", "Stopped", "TraceAttribution", "CANCEL_SLACK_NS"]

PLAN_STEPS_ATTRIBUTE = "causeline.plan.steps"
MAX_BLAST = 1000  # consumers listed per failure (a hostile link fan-out stays bounded)

_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
_FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason")
STRUCTURED_EVIDENCE = (
    "causeline.guardrail=", "error.type=", "exception.type=", "http.response.status_code=",
    "gen_ai.response.finish_reasons=",
)

# Confidence: base by the strongest signal that named the class, then adjustments.
CONFIDENCE_STRUCTURED = 0.9   # error.type, exception.type, HTTP status, guardrail flag, finish reason
CONFIDENCE_TEXT = 0.75        # only an exception/status message named the class
CONFIDENCE_UNKNOWN = 0.5      # status error and nothing more specific
PENALTY_TIE = 0.1             # a failed span of the tree had several independent causes; earliest end chosen
PENALTY_CYCLE = 0.2           # the explanation ran in a cycle (cyclic links) and was cut here
PENALTY_INCOMPLETE = 0.1      # a failed span's parent never arrived: the story may go on
BONUS_OUTPUT_CHECK = 0.05     # a guardrail named the model call whose output it rejected


def attribute(
    trace_id: bytes, spans: Sequence[SpanView], edges: Sequence[EdgeView] = (), *,
    should_stop: Callable[[], bool] | None = None,
) -> TraceAttribution:
    """Attribute every failure among `spans` (the trace and the linked traces loaded with it).

    `should_stop` is polled as the work goes on; when it answers True, Stopped is raised
    (a time budget ran out, or the client that asked has gone)."""
    check = stop_check(should_stop)
    # Third-party handoffs are linked here, over the whole trace (core.handoffs).
    g = SpanGraph(spans, [*edges, *derived_handoff_edges(spans, edges)])
    failed = {k for k, s in g.nodes.items() if s.failed}
    own = [k for k in g.nodes if k[0] == trace_id]
    root_missing = bool(own) and not any(g.is_top(k) for k in own)
    top_failed = any(k[0] == trace_id and g.is_top(k) for k in failed)
    trace_ids = [trace_id] + sorted({k[0] for k in g.nodes} - {trace_id})
    if not failed:
        return TraceAttribution(trace_id=trace_id, failed=False, failures=(), span_count=len(g.nodes),
                                failed_span_count=0, trace_ids=tuple(trace_ids), root_missing=root_missing)
    ex = Explanations(g, failed, check)
    ex.choose()
    kids: dict[Key, list[Key]] = {}
    for key, chosen in ex.primary.items():
        if chosen is not None:
            kids.setdefault(chosen, []).append(key)
    roots = sorted((k for k in failed if ex.primary.get(k) is None), key=g.order)
    ctx = _Context(g, ex, kids)
    failures = []
    for root in roots:
        check()
        failures.append(_failure(ctx, root))
    ended_run = any(f.ended_run and f.outermost.trace_id == trace_id for f in failures)
    return TraceAttribution(
        trace_id=trace_id, failed=top_failed or ended_run, failures=tuple(failures), span_count=len(g.nodes),
        failed_span_count=len(failed), trace_ids=tuple(trace_ids), root_missing=root_missing,
    )


class _Context:
    """What every failure of one trace reads, computed once for all of them (never per failure:
    per-failure walks up the ancestors or down a subtree made attribution quadratic)."""

    def __init__(self, g: SpanGraph, ex: Explanations, kids: dict[Key, list[Key]]) -> None:
        self.g, self.ex, self.kids, self.failed = g, ex, kids, ex.failed
        nodes = g.nodes
        tree = g.tree
        self.agent = tree.nearest(lambda k: bool(nodes[k].agent_name))
        self.tool = tree.nearest(lambda k: bool(nodes[k].tool_name))
        self.step = tree.nearest(lambda k: nodes[k].category == WRAPPER_CATEGORY)
        self.top = tree.nearest(g.is_top)
        self._sums: PrefixSums | None = None
        self._latest: dict[Key, int] | None = None
        self.retried = _recoveries(g, self.failed)

    def went_on(self, key: Key, after_ns: int) -> bool:
        """Did a span under `key` (the subtree, `key` itself included) start at or after `after_ns`?"""
        if self._latest is None:
            tree, nodes = self.g.tree, self.g.nodes
            latest = {k: nodes[k].start_ns for k in tree.seq}
            for k in reversed(tree.seq):  # reverse preorder: children before their parent
                up = tree.tree_parent.get(k)
                if up is not None and latest[k] > latest[up]:
                    latest[up] = latest[k]
            self._latest = latest
        return self._latest.get(self.g.tree.cycle_rep.get(key, key), 0) >= after_ns

    def lifted(self, key: Key) -> Key | None:
        return self.ex.lifted(key)

    @property
    def sums(self) -> PrefixSums:
        if self._sums is None:
            nodes = self.g.nodes

            def values(k: Key) -> tuple:
                span = nodes[k]
                if span.duplicate_of is not None:  # counted in the span it duplicates
                    return (0, 0, 0, 0, 0, Decimal(0), 0)
                t = span.tokens
                priced = span.cost_usd if (span.cost_usd is not None and not span.unpriced) else Decimal(0)
                return (t.input or 0, t.output or 0, t.cache_read or 0, t.cache_write or 0, t.reasoning or 0,
                        priced, 1 if span.unpriced else 0)

            self._sums = PrefixSums(self.g.tree, values)
        return self._sums


def _failure(ctx: _Context, root: Key) -> Failure:
    g, ex, kids, failed = ctx.g, ctx.ex, ctx.kids, ctx.failed
    span = g.nodes[root]
    # The propagation tree: every failed span explained (transitively) by this root.
    members: list[Key] = []
    queue = deque([root])
    seen = {root}
    while queue:
        cur = queue.popleft()
        members.append(cur)
        for nxt in kids.get(cur, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    member_set = set(members)
    path = _path(g, ex, root, kids, members)
    evidence: list[str] = []

    # Class, with the signals that led to it.
    error_class, class_evidence = _classify(span)
    output_of = _checked_output(g, root, failed)
    if output_of is not None and error_class == "guardrail_blocked":
        error_class = "invalid_output"
        evidence.append(f"guardrail '{span.name}' rejected the output of "
                        f"'{g.nodes[output_of].name}' (data_from)")
    evidence.extend(class_evidence)
    evidence.append(f"root cause: '{span.name}' failed and no failed child, data_from or caused_by "
                    "source explains it" if root not in ex.cut else
                    f"root cause: '{span.name}' ended first in a cycle of failed spans explaining each other")
    for before, after in zip(path, path[1:]):
        why = ex.why(after.key, before.key) or BY_CHILD
        evidence.append(f"propagated to '{after.name}' ({_WORDS[why]})")

    # Where the tree ends: the top of a trace, a missing parent, another failure, or a handler.
    # Wrappers that did not fail are looked through: the span above them decides.
    reached_top = missing = shadowed = ended_run = False
    handlers: list[Key] = []
    for key in members:
        parent = g.parent.get(key)
        if parent in member_set:
            continue
        if g.is_top(key):
            reached_top = True
            continue
        if parent is None:
            missing = True
            continue
        above = ctx.lifted(parent)
        if above in member_set:
            continue
        if above is None:  # only wrappers that did not fail above it: up to the top, or to a gap
            top = ctx.top.get(parent)
            if top is None:
                missing = True
            else:
                handlers.append(top)
        elif above in failed:
            shadowed = True
        else:
            handlers.append(above)
    if reached_top:
        evidence.append(f"reached the top span '{path[-1].name}': the run failed")
    if missing:
        evidence.append("a failed span's parent was not received; the failure may have travelled further")

    recovered_by, recovery = None, None
    # A retry of the model call whose output a check rejected also recovers the check's failure.
    retried = _recovery(ctx, members + ([output_of] if output_of is not None else []))
    if retried is not None:  # the work went on, even when the failed attempt was a top span
        recovered_by, recovery = retried
        evidence.append(f"recovered: '{g.nodes[recovered_by].name}' ({recovery}) did not fail")
    elif not reached_top:
        outermost = g.nodes[path[-1].key]
        if (handlers and not missing and not shadowed and outermost.category == "agent"
                and not any(ctx.went_on(h, outermost.end_ns) for h in handlers)):
            ended_run = True  # nothing above the failed agent went on: the run ended with it
            evidence.append(f"agent '{outermost.name}' failed and nothing above it did any work after it "
                            f"ended: the run failed (the spans above only recorded its end)")
        elif handlers and not missing and not shadowed:
            outer = g.parent.get(path[-1].key)
            outer = ctx.lifted(outer) if outer is not None else None
            recovered_by = outer if outer in handlers else min(handlers, key=g.order)
            recovery = "handled"
            evidence.append(f"handled: parent '{g.nodes[recovered_by].name}' ended "
                            f"{g.nodes[recovered_by].status} despite the failure")
    if shadowed and recovery is None:
        evidence.append("its parent failed too, attributed to an earlier-ending failure")

    confidence = _confidence(class_evidence, error_class)
    if output_of is not None and error_class == "invalid_output":
        confidence += BONUS_OUTPUT_CHECK
    if not ex.ties.isdisjoint(member_set):
        confidence -= PENALTY_TIE
        evidence.append("several independent failures could explain a failed parent; the earliest end was chosen")
    if root in ex.cut:
        confidence -= PENALTY_CYCLE
    if missing:
        confidence -= PENALTY_INCOMPLETE

    grouping = _grouping(ctx, root, output_of)
    return Failure(
        root_cause=ref(span), error_class=error_class, category=span.category,
        propagation_path=tuple(path), reached_top=reached_top, recovered=recovery is not None,
        recovered_by=ref(g.nodes[recovered_by]) if recovered_by is not None else None, recovery=recovery,
        burned=_burned(ctx, root, members, output_of), blast_radius=_blast(ctx, root, member_set),
        confidence=round(min(0.99, max(0.05, confidence)), 2), evidence=tuple(evidence),
        output_of=ref(g.nodes[output_of]) if output_of is not None else None,
        failed_spans=tuple(ref(g.nodes[k]) for k in sorted(member_set, key=g.order)),
        ended_run=ended_run, **grouping,
    )


_WORDS = {
    BY_CHILD: "its child failed", BY_DATA: "it consumed the failed output (data_from)",
    BY_CAUSE: "caused_by link", BY_RETRY: "the retry failed the same way (retry_of)",
    BY_HANDOFF: "the agent it handed off to failed (handoff_from)",
    BY_CANCEL: "cancelled after its sibling failed",
    BY_WRAPPED: "it failed inside a wrapper step that did not fail itself",
}


def _path(g: SpanGraph, ex: Explanations, root, kids, members: list[Key]) -> list[SpanRef]:
    # Score each member by the best branch below it: reaches a top span, then length.
    # `members` is in breadth-first order from the root, so reversed it is bottom-up.
    best: dict[Key, tuple[int, int]] = {}
    for key in reversed(members):
        below = [best[k] for k in kids.get(key, ()) if k in best]
        top = 1 if g.is_top(key) else 0
        if below:
            b = max(below)
            best[key] = (max(top, b[0]), b[1] + 1)
        else:
            best[key] = (top, 1)
    path = [ref(g.nodes[root])]
    cur, seen = root, {root}
    while True:
        options = [k for k in kids.get(cur, ()) if k not in seen]
        if not options:
            return path
        parent = g.parent.get(cur)

        def rank(k, cur=cur, parent=parent):
            return (best[k], k == parent, ex.why(k, cur) == BY_RETRY,
                    tuple(-x if isinstance(x, int) else x for x in g.order(k)[:2]))
        cur = max(options, key=rank)
        seen.add(cur)
        path.append(ref(g.nodes[cur]))


def _recoveries(g: SpanGraph, failed: set[Key]) -> dict[Key, tuple[Key, str]]:
    """For every span: the earliest-ending retry/fallback of it (or of a failed re-attempt of
    it, transitively) that did not fail. One backward sweep from the successful attempts in
    order of end, so each span is settled once, however long the retry chains."""
    sources = sorted(
        (k for k, links in g.out_links.items() if k not in failed
         and any(rel in (RETRY_OF, FALLBACK_OF) for rel, _ in links)), key=g.order)
    best: dict[Key, tuple[Key, str]] = {}
    for source in sources:
        stack = []
        for rel, target in g.out_links[source]:
            if rel in (RETRY_OF, FALLBACK_OF) and target in g.nodes and target != source and target not in best:
                best[target] = (source, rel)
                stack.append(target)
        while stack:
            cur = stack.pop()
            if cur not in failed:
                continue  # only failed re-attempts pass the recovery on to what they retried
            for rel, target in g.out_links.get(cur, ()):
                if rel in (RETRY_OF, FALLBACK_OF) and target in g.nodes and target not in best:
                    best[target] = best[cur]
                    stack.append(target)
    return best


def _recovery(ctx: _Context, starts: list[Key]) -> tuple[Key, str] | None:
    """The earliest-ending retry/fallback (of a member, or of a failed re-attempt of one) that did not fail."""
    start_set = set(starts)
    found = [ctx.retried[k] for k in starts if k in ctx.retried and ctx.retried[k][0] not in start_set]
    return min(found, key=lambda item: ctx.g.order(item[0])) if found else None


def _burned(ctx: _Context, root: Key, members: list[Key], output_of: Key | None) -> Burned:
    g = ctx.g
    attempts = [root] + [k for k in members if k != root and ctx.ex.explains_by_retry(k)]
    if output_of is not None:  # the model call whose output was rejected: its work was wasted
        attempts.append(output_of)
    *tokens, cost, unpriced = ctx.sums.over(attempts)
    return Burned(*tokens, cost_usd=cost, unpriced_calls=unpriced,
                  duration_ns=sum(g.nodes[k].duration_ns for k in attempts))


def _blast(ctx: _Context, root: Key, members: set[Key]) -> BlastRadius:
    g = ctx.g
    consumers: list[Key] = []
    seen = set()
    queue = deque(sorted(members, key=g.order))
    visited = set(members)
    while queue and len(consumers) < MAX_BLAST:
        cur = queue.popleft()
        for relation, source in g.in_links.get(cur, ()):
            if relation == DATA_FROM and source not in seen and source != root:
                seen.add(source)
                consumers.append(source)
                if source not in visited:
                    visited.add(source)
                    queue.append(source)
    # The ancestors that failed because of it (wrappers that did not fail are looked through).
    ancestors: list[Key] = []
    cur, passed = root, {root}
    while True:
        parent = g.parent.get(cur)
        above = ctx.lifted(parent) if parent is not None else None
        if above is None or above not in members or above in passed:
            break
        ancestors.append(above)
        passed.add(above)
        cur = above
    skipped = [SkippedStep(g.nodes[k].name, "cancelled", ref(g.nodes[k]))
               for k in sorted(members, key=g.order) if k != root and g.nodes[k].error_class == "cancelled"]
    listed: set[str] = set()
    for key in [root, *ancestors]:
        planned = g.nodes[key].attributes.get(PLAN_STEPS_ATTRIBUTE)
        if isinstance(planned, (list, tuple)) and planned:
            for name in planned:
                if isinstance(name, str) and name not in listed and not g.tree.subtree_has_name(
                        key, name, _names_of(g)):
                    listed.add(name)
                    skipped.append(SkippedStep(name, "planned", None))
    return BlastRadius(
        data_consumers=tuple(ref(g.nodes[k]) for k in sorted(consumers, key=g.order)),
        failed_ancestors=tuple(ref(g.nodes[k]) for k in ancestors),
        skipped_steps=tuple(skipped),
    )


def _names_of(g: SpanGraph):
    # A planned step ran if a span carries its name, or its step name (core.normalize.step_name).
    return lambda k: (g.nodes[k].name, step_name(g.nodes[k].attributes, g.nodes[k].name))


def _checked_output(g: SpanGraph, root: Key, failed: set[Key]) -> Key | None:
    """For a failing guardrail/validation span: the model call whose output it checked."""
    span = g.nodes[root]
    if span.category != "guardrail":
        return None
    sources = [t for rel, t in g.out_links.get(root, ()) if rel == DATA_FROM and t in g.nodes
               and g.nodes[t].category in MODEL_CALL_CATEGORIES and t not in failed]
    return min(sources, key=g.order) if sources else None


def _grouping(ctx: _Context, root: Key, output_of: Key | None) -> dict[str, Any]:
    g = ctx.g
    span = g.nodes[root]
    agent, tool, step = ctx.agent.get(root), ctx.tool.get(root), ctx.step.get(root)
    model_span = span if (span.provider or span.request_model or output_of is None) else g.nodes[output_of]
    return dict(
        service_name=span.service_name, agent_name=g.nodes[agent].agent_name if agent else None,
        tool_name=g.nodes[tool].tool_name if tool else None,
        provider=model_span.provider, request_model=model_span.request_model,
        response_model=model_span.response_model, step_name=g.nodes[step].name if step else span.name,
    )


def _classify(span: SpanView) -> tuple[str, tuple[str, ...]]:
    attributes = span.attributes if isinstance(span.attributes, Mapping) else {}
    exception_type, exception_message = _last_exception(span.events)
    reasons: tuple[str, ...] = ()
    for key in _FINISH_REASON_KEYS:
        if key in attributes:
            reasons = as_lower_tuple(attributes[key])
            if reasons:
                break
    verdict = classify_error(
        error_type=as_str(attributes.get("error.type")), exception_type=exception_type,
        exception_message=exception_message, status_message=span.status_message,
        http_status=first_count(attributes, _HTTP_STATUS_KEYS), finish_reasons=reasons,
        category=span.category, guardrail_blocked=guardrail_blocked(attributes, span.category), failed=True,
    )
    stored = span.error_class
    if verdict is None:
        return stored or "unknown", ("status=error",)
    if stored and stored != verdict.error_class:
        # The stored class wins (it is what every other view shows); say where it came from.
        return stored, (f"error_class={stored} (stored)", *verdict.evidence)
    return verdict.error_class, verdict.evidence


def _last_exception(events: Sequence[Any]) -> tuple[str | None, str | None]:
    for event in reversed(tuple(events or ())):
        if isinstance(event, Mapping):
            name, attrs = event.get("name"), event.get("attributes")
        else:
            name, attrs = getattr(event, "name", None), getattr(event, "attributes", None)
        if name == "exception":
            if not isinstance(attrs, Mapping):
                return None, None
            return as_str(attrs.get("exception.type")), as_str(attrs.get("exception.message"))
    return None, None


def _confidence(class_evidence: tuple[str, ...], error_class: str) -> float:
    if error_class == "unknown":
        return CONFIDENCE_UNKNOWN
    if any(item.startswith(STRUCTURED_EVIDENCE) for item in class_evidence):
        return CONFIDENCE_STRUCTURED
    return CONFIDENCE_TEXT
