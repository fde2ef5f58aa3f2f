"""Indexes over one trace's untrusted spans and typed edges (and its linked traces'):
parents, children, links both ways, and (built on first use) a preorder index of the
parent forest for subtree and nearest-ancestor questions. Every lookup tolerates missing
spans and cycles."""

from __future__ import annotations

from typing import Iterable

from core.forensics_view import EdgeView, Key, SpanView
from core.span import PARENT
from core.span_tree import TreeIndex


class SpanGraph:
    """Indexes over untrusted spans and edges; every lookup tolerates missing spans."""

    def __init__(self, spans: Iterable[SpanView], edges: Iterable[EdgeView]) -> None:
        nodes: dict[Key, SpanView] = {}
        for span in spans:
            nodes.setdefault(span.key, span)
        self.nodes = nodes
        self.parent: dict[Key, Key] = {}
        self.children: dict[Key, list[Key]] = {}
        for key, span in nodes.items():
            if span.parent_span_id:
                pkey = (span.trace_id, span.parent_span_id)
                if pkey != key and pkey in nodes:
                    self.parent[key] = pkey
                    self.children.setdefault(pkey, []).append(key)
        self.out_links: dict[Key, list[tuple[str, Key]]] = {}
        self.in_links: dict[Key, list[tuple[str, Key]]] = {}
        seen: set[tuple[Key, str, Key]] = set()
        for edge in edges:
            if edge.relation == PARENT:
                continue  # parent ids are read from the spans themselves
            src, dst = edge.source, edge.target
            if src == dst or src not in nodes or (src, edge.relation, dst) in seen:
                continue
            seen.add((src, edge.relation, dst))
            self.out_links.setdefault(src, []).append((edge.relation, dst))
            if dst in nodes:
                self.in_links.setdefault(dst, []).append((edge.relation, src))

        self._tree: TreeIndex | None = None

    def order(self, key: Key) -> tuple:
        span = self.nodes[key]
        return (span.end_ns, span.start_ns, key)

    @property
    def tree(self) -> TreeIndex:
        if self._tree is None:
            self._tree = TreeIndex(list(self.nodes), self.parent, self.children)
        return self._tree

    def ancestors(self, key: Key) -> Iterable[Key]:
        seen = {key}
        cur = self.parent.get(key)
        while cur is not None and cur not in seen:
            seen.add(cur)
            yield cur
            cur = self.parent.get(cur)

    def subtree(self, roots: Iterable[Key]) -> set[Key]:
        out: set[Key] = set()
        stack = list(roots)
        while stack:
            cur = stack.pop()
            if cur in out:
                continue
            out.add(cur)
            stack.extend(self.children.get(cur, ()))
        return out

    def is_top(self, key: Key) -> bool:
        return not self.nodes[key].parent_span_id
