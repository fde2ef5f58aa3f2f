"""Which failed span explains which (rules 2 and 3 of core.attribution), in O(n log n).

The explanations of a failed span are kept explicitly when they come from its children,
its own links or handoffs into it (bounded by the span's children and its links, at most
128 per span). The one open-ended relation — a `cancelled` span is explained by every
failed, not-cancelled sibling that ended no later than 50 ms after it — is kept implicit:
those siblings are a prefix of the parent's failed children sorted by end, so membership
is a position test and the choice among them a segment-tree query, never a list per span.

Wrappers (category `workflow`: OpenInference CHAIN, Traceloop workflow/task, invoke_workflow)
only group work. One that did not fail is transparent: a failed span under it explains the
nearest ancestor above the wrappers when that ancestor failed (an agent, the run), so an
OK wrapper never hides a failure the agent or run reported. No I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Callable

from core.forensics_view import Key
from core.span_graph import SpanGraph
from core.span_tree import FirstAbove

RETRY_OF, FALLBACK_OF, DATA_FROM, CAUSED_BY, HANDOFF_FROM = (
    "retry_of", "fallback_of", "data_from", "caused_by", "handoff_from",
)
# How one failed span explains another (also the words used in evidence).
BY_CHILD, BY_WRAPPED, BY_DATA, BY_CAUSE, BY_RETRY, BY_HANDOFF, BY_CANCEL = (
    "child", "wrapped", "data_from", "caused_by", "retry_of", "handoff", "cancelled_sibling",
)
CHAIN_REASONS = frozenset({BY_DATA, BY_CAUSE, BY_RETRY})
CANCEL_SLACK_NS = 50_000_000  # a cancelled sibling may end up to 50 ms after the failure that cancelled it
WRAPPER_CATEGORY = "workflow"
_INF = float("inf")


class Stopped(Exception):
    """Attribution was asked to stop (a time budget ran out, or nobody waits for the answer)."""


def stop_check(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    def check() -> None:
        if should_stop is not None and should_stop():
            raise Stopped()
    return check


class Explanations:
    """Explanations of every failed span; `primary` (one per span, cycles cut) after `choose()`."""

    def __init__(self, g: SpanGraph, failed: set[Key], check: Callable[[], None]) -> None:
        self.g, self.failed, self._check = g, failed, check
        nodes = g.nodes
        self.cancelled = {k for k in failed if nodes[k].error_class == "cancelled"}
        # Failed spans that are not-cancelled children of a failed parent: the cancel groups.
        self.group: dict[Key, list[Key]] = {}
        for k in failed:
            parent = g.parent.get(k)
            if parent in failed and k not in self.cancelled:
                self.group.setdefault(parent, []).append(k)
        self.pos: dict[Key, int] = {}
        self._ends: dict[Key, list[int]] = {}
        for parent, members in self.group.items():
            members.sort(key=g.order)
            for i, k in enumerate(members):
                self.pos[k] = i
            self._ends[parent] = [nodes[k].end_ns for k in members]
        # A cancelled failed span under a failed parent: its group and the last position of S(k).
        self.cancel_parent: dict[Key, Key] = {}
        self.limit: dict[Key, int] = {}
        for k in self.cancelled:
            parent = g.parent.get(k)
            if parent in failed:
                self.cancel_parent[k] = parent
                ends = self._ends.get(parent, [])
                self.limit[k] = bisect_right(ends, nodes[k].end_ns + CANCEL_SLACK_NS) - 1

        wrapped = self._wrapped_children()
        self.reasons: dict[Key, dict[Key, str]] = {}
        self.chain: dict[Key, list[Key]] = {}  # c -> the t it explains through a retry or data chain
        for n, k in enumerate(sorted(failed)):
            if n % 1024 == 0:
                check()
            self.reasons[k] = found = self._explicit(k, wrapped.get(k, ()))
            targets = [t for t, why in found.items() if why in CHAIN_REASONS]
            if targets:
                self.chain[k] = targets
        # dom[t][P]: the first position in group P of a span explaining t through a chain.
        self.dom: dict[Key, dict[Key, int]] = {}
        for c, targets in self.chain.items():
            if c in self.pos:
                parent = g.parent[c]
                for t in targets:
                    by_group = self.dom.setdefault(t, {})
                    if self.pos[c] < by_group.get(parent, len(self.group[parent])):
                        by_group[parent] = self.pos[c]
        self._first_above: dict[Key, FirstAbove] = {}
        self.primary: dict[Key, Key | None] = {}
        self.ties: set[Key] = set()
        self.cut: set[Key] = set()

    # --- rule 2: candidates ----------------------------------------------------------

    def _wrapped_children(self) -> dict[Key, list[Key]]:
        """Failed spans under wrappers that did not fail, by the failed span above the wrappers."""
        g, failed = self.g, self.failed

        def ok_wrapper(k: Key) -> bool:
            return g.nodes[k].category == WRAPPER_CATEGORY and k not in failed

        if not any(g.parent.get(k) is not None and ok_wrapper(g.parent[k]) for k in failed):
            self.lift: dict[Key, Key | None] = {}
            return {}
        self.lift = g.tree.nearest(lambda k: not ok_wrapper(k))
        out: dict[Key, list[Key]] = {}
        for k in failed:
            parent = g.parent.get(k)
            if parent is not None and ok_wrapper(parent):
                above = self.lift.get(parent)
                if above in failed and above != k:
                    out.setdefault(above, []).append(k)
        return out

    def lifted(self, key: Key) -> Key | None:
        """`key`, or the nearest ancestor above it when it is a wrapper that did not fail."""
        if key in self.lift:
            return self.lift[key]
        return key

    def in_cancel_set(self, k: Key, t: Key) -> bool:
        """Is t a failed, not-cancelled sibling that ended in time to have cancelled k?"""
        parent = self.cancel_parent.get(k)
        return parent is not None and t in self.pos and self.g.parent.get(t) == parent and self.pos[t] <= self.limit[k]

    def _explicit(self, k: Key, wrapped) -> dict[Key, str]:
        g, failed = self.g, self.failed
        found: dict[Key, str] = {}
        failed_children = [(c, BY_CHILD) for c in g.children.get(k, ()) if c in failed]
        failed_children += [(c, BY_WRAPPED) for c in wrapped]
        if failed_children:
            final = [(c, why) for c, why in failed_children if not self._superseded(c)]
            for child, why in final or failed_children:
                found[child] = why
        span = g.nodes[k]
        for relation, target in g.out_links.get(k, ()):
            if target not in failed or target == k:
                continue
            if self.in_cancel_set(k, target):
                found.setdefault(target, BY_CANCEL)
            elif relation == DATA_FROM:
                found.setdefault(target, BY_DATA)
            elif relation == CAUSED_BY:
                found.setdefault(target, BY_CAUSE)
            elif relation == RETRY_OF and g.nodes[target].error_class == span.error_class:
                found.setdefault(target, BY_RETRY)
        for relation, source in g.in_links.get(k, ()):
            if relation == HANDOFF_FROM and source in failed and source != k:
                found.setdefault(source, BY_CANCEL if self.in_cancel_set(k, source) else BY_HANDOFF)
        return found

    def _superseded(self, key: Key) -> bool:
        return any(rel in (RETRY_OF, FALLBACK_OF) for rel, _ in self.g.in_links.get(key, ()))

    def why(self, k: Key, t: Key) -> str | None:
        """How t explains k, if it does."""
        found = self.reasons.get(k, {}).get(t)
        if found is None and self.in_cancel_set(k, t):
            return BY_CANCEL
        return found

    def explains_by_retry(self, k: Key) -> bool:
        return BY_RETRY in self.reasons.get(k, {}).values()

    # --- rule 3: one explanation each -------------------------------------------------

    def choose(self) -> None:
        for n, k in enumerate(sorted(self.failed)):
            if n % 1024 == 0:
                self._check()
            self._choose_one(k)
        self._break_cycles()

    def _choose_one(self, k: Key) -> None:
        g = self.g
        explicit = self.reasons[k]
        parent = self.cancel_parent.get(k)
        m = self.limit.get(k, -1)
        if not explicit and m < 0:
            self.primary[k] = None
            return

        def candidate(t: Key) -> bool:
            return t in explicit or self.in_cancel_set(k, t)

        # A candidate that explains another through a link chain makes it yield (the retry
        # that failed last, the step that consumed the bad output).
        dominated: set[Key] = set()
        for c in explicit:
            for t in self.chain.get(c, ()):
                if t != c and candidate(t):
                    dominated.add(t)
        if parent is not None:
            for t in explicit:
                if self.dom.get(t, {}).get(parent, len(self.group.get(parent, ()))) <= m:
                    dominated.add(t)
        # A cancelled candidate yields to the sibling failure that cancelled it.
        first_in_group: dict[Key, int] = {}
        for t in explicit:
            if t in self.pos:
                p = g.parent[t]
                first_in_group[p] = min(first_in_group.get(p, self.pos[t]), self.pos[t])
        rest = []
        for c in explicit:
            if c in dominated:
                continue
            cp = self.cancel_parent.get(c)
            if cp is not None and (first_in_group.get(cp, len(self.group.get(cp, ()))) <= self.limit[c]
                                   or (cp == parent and min(m, self.limit[c]) >= 0)):
                continue
            rest.append(c)
        if m >= 0:
            members = self.group[parent]
            finder = self._first_above.get(parent)
            if finder is None:
                doms = self.dom
                finder = self._first_above[parent] = FirstAbove(
                    [doms.get(t, {}).get(parent, _INF) for t in members])
            found = 0
            i = finder.find(0, m)
            while i is not None and i <= m and found < 2:
                t = members[i]
                if t not in dominated and t not in explicit:
                    rest.append(t)
                    found += 1
                i = finder.find(i + 1, m)
        if rest:
            if len(rest) > 1:
                self.ties.add(k)
            self.primary[k] = min(rest, key=g.order)
            return
        # Everything yielded to something: fall back to all candidates.
        overlap = sum(1 for t in explicit if self.in_cancel_set(k, t))
        pool = list(explicit) + ([self.group[parent][0]] if m >= 0 else [])
        if len(explicit) + (m + 1) - overlap > 1:
            self.ties.add(k)
        self.primary[k] = min(pool, key=g.order)

    def _break_cycles(self) -> None:
        """Make the explanation graph a forest: each cycle is cut at its earliest-ending span."""
        primary, g = self.primary, self.g
        state: dict[Key, int] = {}  # 1 on the current walk, 2 done
        for start in sorted(self.failed):
            walk: list[Key] = []
            position: dict[Key, int] = {}
            cur: Key | None = start
            while cur is not None and cur not in state:
                state[cur] = 1
                position[cur] = len(walk)
                walk.append(cur)
                cur = primary.get(cur)
            if cur is not None and state.get(cur) == 1:
                head = min(walk[position[cur]:], key=g.order)
                primary[head] = None
                self.cut.add(head)
            for key in walk:
                state[key] = 2
