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
     ended no later than S (the sibling failed, the task group cancelled the rest).
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
   did not fail (the parent handled or swallowed it).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Mapping, Sequence

from core.attribution_model import BlastRadius, Burned, Failure, SkippedStep, TraceAttribution
from core.coerce import as_lower_tuple, as_str, first_count
from core.errors import classify_error
from core.failure import guardrail_blocked
from core.forensics_view import EdgeView, Key, SpanRef, SpanView, ref
from core.handoffs import derived_handoff_edges
from core.normalize import step_name
from core.span_graph import SpanGraph

RETRY_OF, FALLBACK_OF, DATA_FROM, CAUSED_BY, HANDOFF_FROM = (
    "retry_of", "fallback_of", "data_from", "caused_by", "handoff_from",
)
# How one failed span explains another (also the words used in evidence).
BY_CHILD, BY_DATA, BY_CAUSE, BY_RETRY, BY_HANDOFF, BY_CANCEL = (
    "child", "data_from", "caused_by", "retry_of", "handoff", "cancelled_sibling",
)
_CHAIN_REASONS = frozenset({BY_DATA, BY_CAUSE, BY_RETRY})
CANCEL_SLACK_NS = 50_000_000  # a cancelled sibling may end up to 50 ms after the failure that cancelled it
PLAN_STEPS_ATTRIBUTE = "causeline.plan.steps"
MAX_BLAST = 1000  # consumers listed per failure (a hostile link fan-out stays bounded)

_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
_FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason")
_STRUCTURED_EVIDENCE = (
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
    trace_id: bytes, spans: Sequence[SpanView], edges: Sequence[EdgeView] = (),
) -> TraceAttribution:
    """Attribute every failure among `spans` (the trace and the linked traces loaded with it)."""
    # Third-party handoffs are linked here, over the whole trace (core.handoffs).
    g = SpanGraph(spans, [*edges, *derived_handoff_edges(spans, edges)])
    failed = {k for k, s in g.nodes.items() if s.failed}
    explainers = {k: _explainers(g, k, failed) for k in sorted(failed)}
    primary, ties = _choose(g, explainers)
    cut = _break_cycles(g, primary, failed)
    kids: dict[Key, list[Key]] = {}
    for key, chosen in primary.items():
        if chosen is not None:
            kids.setdefault(chosen, []).append(key)
    roots = sorted((k for k in failed if primary.get(k) is None), key=g.order)
    failures = tuple(
        _failure(g, root, kids, explainers, primary, failed, ties, root in cut) for root in roots
    )
    trace_ids = [trace_id] + sorted({k[0] for k in g.nodes} - {trace_id})
    top_failed = any(k[0] == trace_id and g.is_top(k) for k in failed)
    return TraceAttribution(
        trace_id=trace_id, failed=top_failed, failures=failures, span_count=len(g.nodes),
        failed_span_count=len(failed), trace_ids=tuple(trace_ids),
    )


def _explainers(g: SpanGraph, key: Key, failed: set[Key]) -> dict[Key, str]:
    span = g.nodes[key]
    found: dict[Key, str] = {}
    failed_children = [c for c in g.children.get(key, ()) if c in failed]
    if failed_children:
        final = [c for c in failed_children if not _superseded(g, c)]
        for child in final or failed_children:
            found[child] = BY_CHILD
    parent = g.parent.get(key)
    if span.error_class == "cancelled" and parent in failed:
        for sibling in g.children.get(parent, ()):
            other = g.nodes[sibling]
            if (sibling != key and sibling in failed and other.error_class != "cancelled"
                    and other.end_ns <= span.end_ns + CANCEL_SLACK_NS):
                found.setdefault(sibling, BY_CANCEL)
    for relation, target in g.out_links.get(key, ()):
        if target not in failed or target == key:
            continue
        if relation == DATA_FROM:
            found.setdefault(target, BY_DATA)
        elif relation == CAUSED_BY:
            found.setdefault(target, BY_CAUSE)
        elif relation == RETRY_OF and g.nodes[target].error_class == span.error_class:
            found.setdefault(target, BY_RETRY)
    for relation, source in g.in_links.get(key, ()):
        if relation == HANDOFF_FROM and source in failed and source != key:
            found.setdefault(source, BY_HANDOFF)
    return found


def _superseded(g: SpanGraph, key: Key) -> bool:
    return any(rel in (RETRY_OF, FALLBACK_OF) for rel, _ in g.in_links.get(key, ()))


def _choose(g: SpanGraph, explainers: dict[Key, dict[Key, str]]) -> tuple[dict[Key, Key | None], set[Key]]:
    """One explanation per failed span; also the spans where independent candidates tied."""
    primary: dict[Key, Key | None] = {}
    ties: set[Key] = set()
    for key, found in explainers.items():
        if not found:
            primary[key] = None
            continue
        candidates = set(found)
        # A candidate that explains another candidate through a link chain yields to it:
        # the retry that failed last, the step that consumed the bad output.
        dominated = {
            t for c in candidates for t, why in explainers.get(c, {}).items()
            if why in _CHAIN_REASONS and t in candidates and t != c
        }
        # A cancelled candidate yields to the sibling failure that cancelled it.
        yielded = {
            c for c in candidates
            if any(why == BY_CANCEL and t in candidates for t, why in explainers.get(c, {}).items())
        }
        rest = (candidates - dominated - yielded) or candidates
        if len(rest) > 1:
            ties.add(key)
        primary[key] = min(rest, key=g.order)
    return primary, ties


def _break_cycles(g: SpanGraph, primary: dict[Key, Key | None], failed: set[Key]) -> set[Key]:
    """Make the explanation graph a forest: each cycle is cut at its earliest-ending span."""
    state: dict[Key, int] = {}  # 1 on the current walk, 2 done
    cut: set[Key] = set()
    for start in sorted(failed):
        walk: list[Key] = []
        position: dict[Key, int] = {}
        cur: Key | None = start
        while cur is not None and cur not in state:
            state[cur] = 1
            position[cur] = len(walk)
            walk.append(cur)
            cur = primary.get(cur)
        if cur is not None and state.get(cur) == 1:
            cycle = walk[position[cur]:]
            head = min(cycle, key=g.order)
            primary[head] = None
            cut.add(head)
        for key in walk:
            state[key] = 2
    return cut


def _failure(
    g: SpanGraph, root: Key, kids: dict[Key, list[Key]], explainers: dict[Key, dict[Key, str]],
    primary: dict[Key, Key | None], failed: set[Key], ties: set[Key], cycle_cut: bool,
) -> Failure:
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
    path = _path(g, root, kids, explainers, members)
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
                    "source explains it" if not cycle_cut else
                    f"root cause: '{span.name}' ended first in a cycle of failed spans explaining each other")
    for before, after in zip(path, path[1:]):
        why = explainers.get(after.key, {}).get(before.key, BY_CHILD)
        evidence.append(f"propagated to '{after.name}' ({_WORDS[why]})")

    # Where the tree ends: the top of a trace, a missing parent, another failure, or a handler.
    reached_top = missing = shadowed = False
    handlers: list[Key] = []
    for key in members:
        parent = g.parent.get(key)
        if parent in member_set:
            continue
        if g.is_top(key):
            reached_top = True
        elif parent is None:
            missing = True
        elif parent in failed:
            shadowed = True
        else:
            handlers.append(parent)
    if reached_top:
        evidence.append(f"reached the top span '{path[-1].name}': the run failed")
    if missing:
        evidence.append("a failed span's parent was not received; the failure may have travelled further")

    recovered_by, recovery = None, None
    # A retry of the model call whose output a check rejected also recovers the check's failure.
    retried = _recovery(g, member_set | ({output_of} if output_of is not None else set()), failed)
    if retried is not None:  # the work went on, even when the failed attempt was a top span
        recovered_by, recovery = retried
        evidence.append(f"recovered: '{g.nodes[recovered_by].name}' ({recovery}) did not fail")
    elif not reached_top:
        if handlers and not missing and not shadowed:
            outer_parent = g.parent.get(path[-1].key)
            recovered_by = outer_parent if outer_parent in handlers else min(handlers, key=g.order)
            recovery = "handled"
            evidence.append(f"handled: parent '{g.nodes[recovered_by].name}' ended "
                            f"{g.nodes[recovered_by].status} despite the failure")
    if shadowed and recovery is None:
        evidence.append("its parent failed too, attributed to an earlier-ending failure")

    confidence = _confidence(class_evidence, error_class)
    if output_of is not None and error_class == "invalid_output":
        confidence += BONUS_OUTPUT_CHECK
    if member_set & ties:
        confidence -= PENALTY_TIE
        evidence.append("several independent failures could explain a failed parent; the earliest end was chosen")
    if cycle_cut:
        confidence -= PENALTY_CYCLE
    if missing:
        confidence -= PENALTY_INCOMPLETE

    grouping = _grouping(g, root, output_of)
    return Failure(
        root_cause=ref(span), error_class=error_class, category=span.category,
        propagation_path=tuple(path), reached_top=reached_top, recovered=recovery is not None,
        recovered_by=ref(g.nodes[recovered_by]) if recovered_by is not None else None, recovery=recovery,
        burned=_burned(g, root, member_set, explainers, output_of), blast_radius=_blast(g, root, member_set, failed),
        confidence=round(min(0.99, max(0.05, confidence)), 2), evidence=tuple(evidence),
        output_of=ref(g.nodes[output_of]) if output_of is not None else None,
        failed_spans=tuple(ref(g.nodes[k]) for k in sorted(member_set, key=g.order)),
        **grouping,
    )


_WORDS = {
    BY_CHILD: "its child failed", BY_DATA: "it consumed the failed output (data_from)",
    BY_CAUSE: "caused_by link", BY_RETRY: "the retry failed the same way (retry_of)",
    BY_HANDOFF: "the agent it handed off to failed (handoff_from)",
    BY_CANCEL: "cancelled after its sibling failed",
}


def _path(g, root, kids, explainers, members: list[Key]) -> list[SpanRef]:
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
            why = explainers.get(k, {}).get(cur)
            return (best[k], k == parent, why == BY_RETRY, tuple(-x if isinstance(x, int) else x
                                                                 for x in g.order(k)[:2]))
        cur = max(options, key=rank)
        seen.add(cur)
        path.append(ref(g.nodes[cur]))



def _recovery(g: SpanGraph, members: set[Key], failed: set[Key]) -> tuple[Key, str] | None:
    """The earliest-ending retry/fallback (of a member, or of a failed re-attempt of one) that did not fail."""
    found: list[tuple[Key, str]] = []
    queue = list(members)
    seen = set(members)
    while queue:
        cur = queue.pop()
        for relation, source in g.in_links.get(cur, ()):
            if relation in (RETRY_OF, FALLBACK_OF) and source not in seen:
                seen.add(source)
                if source in failed:
                    queue.append(source)
                else:
                    found.append((source, relation))
    return min(found, key=lambda item: g.order(item[0])) if found else None


def _burned(g: SpanGraph, root: Key, members: set[Key], explainers, output_of: Key | None) -> Burned:
    attempts = [root] + [k for k in members if k != root and BY_RETRY in explainers.get(k, {}).values()]
    if output_of is not None:  # the model call whose output was rejected: its work was wasted
        attempts.append(output_of)
    spans = g.subtree(attempts)
    totals = [0, 0, 0, 0, 0]
    cost = Decimal(0)
    unpriced = 0
    for key in spans:
        span = g.nodes[key]
        t = span.tokens
        for i, value in enumerate((t.input, t.output, t.cache_read, t.cache_write, t.reasoning)):
            if value:
                totals[i] += value
        if span.unpriced:
            unpriced += 1
        elif span.cost_usd is not None:
            cost += span.cost_usd
    return Burned(*totals, cost_usd=cost, unpriced_calls=unpriced,
                  duration_ns=sum(g.nodes[k].duration_ns for k in attempts))


def _blast(g: SpanGraph, root: Key, members: set[Key], failed: set[Key]) -> BlastRadius:
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
    ancestors = []
    for key in g.ancestors(root):
        if key not in members:
            break
        ancestors.append(key)
    skipped = [SkippedStep(g.nodes[k].name, "cancelled", ref(g.nodes[k]))
               for k in sorted(members, key=g.order) if k != root and g.nodes[k].error_class == "cancelled"]
    for key in [root, *ancestors]:
        planned = g.nodes[key].attributes.get(PLAN_STEPS_ATTRIBUTE)
        if isinstance(planned, (list, tuple)) and planned:
            ran = {g.nodes[k].name for k in g.subtree([key])}
            ran |= {step_name(g.nodes[k].attributes, g.nodes[k].name) for k in g.subtree([key])}
            for name in planned:
                if isinstance(name, str) and name not in ran and not any(
                        name == s.name and s.reason == "planned" for s in skipped):
                    skipped.append(SkippedStep(name, "planned", None))
    return BlastRadius(
        data_consumers=tuple(ref(g.nodes[k]) for k in sorted(consumers, key=g.order)),
        failed_ancestors=tuple(ref(g.nodes[k]) for k in ancestors),
        skipped_steps=tuple(skipped),
    )


def _checked_output(g: SpanGraph, root: Key, failed: set[Key]) -> Key | None:
    """For a failing guardrail/validation span: the model call whose output it checked."""
    span = g.nodes[root]
    if span.category != "guardrail":
        return None
    sources = [t for rel, t in g.out_links.get(root, ()) if rel == DATA_FROM and t in g.nodes
               and g.nodes[t].category in ("llm", "embedding") and t not in failed]
    return min(sources, key=g.order) if sources else None


def _grouping(g: SpanGraph, root: Key, output_of: Key | None) -> dict[str, Any]:
    span = g.nodes[root]
    chain = [root, *g.ancestors(root)]
    agent = next((g.nodes[k].agent_name for k in chain if g.nodes[k].agent_name), None)
    tool = next((g.nodes[k].tool_name for k in chain if g.nodes[k].tool_name), None)
    step = next((g.nodes[k].name for k in chain if g.nodes[k].category == "workflow"), span.name)
    model_span = span if (span.provider or span.request_model or output_of is None) else g.nodes[output_of]
    return dict(
        service_name=span.service_name, agent_name=agent, tool_name=tool,
        provider=model_span.provider, request_model=model_span.request_model,
        response_model=model_span.response_model, step_name=step,
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
    if any(item.startswith(_STRUCTURED_EVIDENCE) for item in class_evidence):
        return CONFIDENCE_STRUCTURED
    return CONFIDENCE_TEXT
