"""A preorder index over the parent forest of untrusted spans, so that subtree and
nearest-ancestor questions cost O(1) or O(log n) instead of a walk per question.

Parent ids are untrusted: they may form cycles. In a parent map (one parent per span)
every span either reaches a top span or a cycle going up. A span on a cycle has the
whole component (the cycle and everything hanging off it) as its subtree, and its
ancestors run around the cycle; both are answered exactly. Everything is iterative:
a 100,000-deep chain never meets the recursion limit. No I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)


class TreeIndex:
    """Preorder positions (`pre`, `last`: a subtree is the range pre[x]..last[x] of `seq`)."""

    def __init__(self, keys: Sequence[K], parent: Mapping[K, K], children: Mapping[K, list[K]]) -> None:
        self._parent = parent
        self.cycles: list[list[K]] = []  # each in parent order: cycle[i + 1] is the parent of cycle[i]
        self.cycle_rep: dict[K, K] = {}  # span on a cycle -> the cycle member its subtree is indexed under
        state: dict[K, int] = {}  # 1 on the current walk, 2 done
        for start in keys:
            walk: list[K] = []
            cur: K | None = start
            while cur is not None and cur not in state:
                state[cur] = 1
                walk.append(cur)
                cur = parent.get(cur)
            if cur is not None and state[cur] == 1:
                cycle = walk[walk.index(cur):]
                self.cycles.append(cycle)
                rep = min(cycle)
                for key in cycle:
                    self.cycle_rep[key] = rep
            for key in walk:
                state[key] = 2

        self.seq: list[K] = []
        self.pre: dict[K, int] = {}
        self.tree_parent: dict[K, K] = {}  # the parent, except for cycle representatives (tour roots)
        roots = [k for k in keys if k not in parent] + sorted({r for r in self.cycle_rep.values()})
        for root in roots:
            stack: list[tuple[K, K | None]] = [(root, None)]
            while stack:
                key, up = stack.pop()
                if key in self.pre:
                    continue
                self.pre[key] = len(self.seq)
                self.seq.append(key)
                if up is not None:
                    self.tree_parent[key] = up
                for child in reversed(children.get(key, ())):
                    if child not in self.pre:
                        stack.append((child, key))
        size = {k: 1 for k in self.seq}
        for key in reversed(self.seq):
            up = self.tree_parent.get(key)
            if up is not None:
                size[up] += size[key]
        self.last = {k: self.pre[k] + size[k] - 1 for k in self.seq}
        self._names: dict[str, list[int]] | None = None

    def span_range(self, key: K) -> tuple[int, int]:
        """Positions in `seq` of the subtree of `key` (the whole component for a span on a cycle)."""
        key = self.cycle_rep.get(key, key)
        return self.pre[key], self.last[key]

    def ranges(self, keys: Iterable[K]) -> list[tuple[int, int]]:
        """Disjoint ranges covering the union of the subtrees of `keys` (nested ones merged)."""
        out: list[tuple[int, int]] = []
        for lo, hi in sorted({self.span_range(k) for k in keys}, key=lambda r: (r[0], -r[1])):
            if out and lo <= out[-1][1]:
                continue  # inside the previous subtree
            out.append((lo, hi))
        return out

    def nearest(self, pred: Callable[[K], bool]) -> dict[K, K | None]:
        """For each span: itself or its nearest ancestor for which `pred` holds (None if none)."""
        out: dict[K, K | None] = {}
        for cycle in self.cycles:
            n = len(cycle)
            found: K | None = None
            for i in range(2 * n - 1, -1, -1):  # twice around: every start sees the whole cycle above it
                key = cycle[i % n]
                if pred(key):
                    found = key
                if i < n:
                    out[key] = found
        for key in self.seq:  # preorder: a parent is settled before its children
            if key not in out:
                out[key] = key if pred(key) else out.get(self.tree_parent.get(key))  # type: ignore[arg-type]
        return out

    def subtree_has_name(self, key: K, name: str, names_of: Callable[[K], Iterable[str]]) -> bool:
        """Does a span in the subtree of `key` carry `name` (as given by `names_of`)?"""
        if self._names is None:
            index: dict[str, list[int]] = {}
            for position, k in enumerate(self.seq):
                for n in set(names_of(k)):
                    index.setdefault(n, []).append(position)
            self._names = index
        positions = self._names.get(name)
        if not positions:
            return False
        lo, hi = self.span_range(key)
        i = bisect_left(positions, lo)
        return i < len(positions) and positions[i] <= hi


class PrefixSums:
    """Sums of per-span values over subtree ranges of a TreeIndex (tokens, cost, counts)."""

    def __init__(self, index: TreeIndex, values: Callable[[K], Sequence]) -> None:
        rows = [values(k) for k in index.seq]
        width = len(rows[0]) if rows else 0
        self._index = index
        self._width = width
        self._prefix: list[list] = []
        for column in range(width):
            total = rows[0][column] * 0 if rows else 0  # 0 of the column's own type (int or Decimal)
            acc = [total]
            for row in rows:
                total = total + row[column]
                acc.append(total)
            self._prefix.append(acc)

    def over(self, keys: Iterable[K]) -> list:
        """Column sums over the union of the subtrees of `keys` (each span counted once)."""
        out = [column[0] for column in self._prefix]
        for lo, hi in self._index.ranges(keys):
            for c, column in enumerate(self._prefix):
                out[c] = out[c] + column[hi + 1] - column[lo]
        return out


class FirstAbove:
    """Over a fixed list of numbers: the first index >= lo whose value exceeds x (segment tree)."""

    def __init__(self, values: Sequence[float]) -> None:
        size = 1
        while size < max(1, len(values)):
            size *= 2
        tree = [-1.0] * (2 * size)
        tree[size:size + len(values)] = values
        for i in range(size - 1, 0, -1):
            tree[i] = max(tree[2 * i], tree[2 * i + 1])
        self._size, self._tree, self._n = size, tree, len(values)

    def find(self, lo: int, x: float) -> int | None:
        if lo >= self._n:
            return None
        tree, size = self._tree, self._size
        i = lo + size
        while True:
            if tree[i] > x:
                while i < size:
                    i = 2 * i if tree[2 * i] > x else 2 * i + 1
                return i - size
            while i & 1:  # a right child: the next subtree starts above it
                if i == 1:
                    return None
                i >>= 1
            i += 1
