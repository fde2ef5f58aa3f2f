"""What a report covers, in a form a third party can check: a SHA-256 digest of every span
record it covers and their Merkle root.

A record's digest (the leaf) is computed by the database, next to the row, from a fixed list
of the span's stored fields in a canonical text form (db/queries/reports.py, leaf_digest): that
keeps a period report over a million spans from shipping every row to Python. This module
holds what is pure: the tree, streamed in one pass with O(log n) memory, and the checks.

The tree hashes leaves and nodes with distinct prefixes (as RFC 6962 does), so a leaf can
never pass for a node; an odd node is carried up unchanged. Entries are ordered by
(trace_id, span_id) as hex, so the root does not depend on query order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

LEAF, NODE = b"\x00", b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
ALGORITHM = "sha256-leaf00-node01-pg-record-v2"


class MerkleStream:
    """The Merkle root over leaves added one at a time, holding one node per level: after n
    leaves, the roots of the complete subtrees n's set bits stand for, largest first."""

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._count = 0

    def add(self, leaf: bytes) -> None:
        nodes, n, node = self._nodes, self._count, leaf
        while n & 1:  # each trailing 1-bit of the count is a complete subtree to join
            node = hashlib.sha256(NODE + nodes.pop() + node).digest()
            n >>= 1
        nodes.append(node)
        self._count += 1

    def root(self) -> str:
        if not self._nodes:
            return EMPTY_ROOT
        # The last subtree is the odd node each level carries up until it meets the one to its left.
        node = self._nodes[-1]
        for left in reversed(self._nodes[:-1]):
            node = hashlib.sha256(NODE + left + node).digest()
        return node.hex()


def merkle_root(digests: Iterable[str]) -> str:
    """The root over leaf digests (hex) in the given order; EMPTY_ROOT for none."""
    tree = MerkleStream()
    for d in digests:
        tree.add(bytes.fromhex(d))
    return tree.root()


class Entry(NamedTuple):  # a tuple: a million of them pass through a period report
    trace_id: str  # hex
    span_id: str  # hex
    digest: str  # hex SHA-256 of the leaf


@dataclass(frozen=True)
class Manifest:
    algorithm: str
    entries: Iterable[Entry]  # re-iterable: a tuple, or a spool on disk for a large report (reports/spool.py)
    root: str
    count: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", len(self.entries))  # type: ignore[arg-type]

    def first(self, n: int) -> tuple[Entry, ...]:
        return tuple(islice(self.entries, n))

    def header(self) -> dict:
        return {"algorithm": self.algorithm, "count": self.count, "merkle_root": self.root}

    def to_dict(self) -> dict:
        return {**self.header(), "spans": [[e.trace_id, e.span_id, e.digest] for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        entries = tuple(Entry(str(t), str(s), str(d)) for t, s, d in data["spans"])
        return cls(str(data["algorithm"]), entries, str(data["merkle_root"]), len(entries))


class ManifestBuilder:
    """Takes (trace_id, span_id, digest) in (trace_id, span_id) order, folds each into the root
    and hands its entry to `sink` (a list's append, or a spool's): one pass, nothing kept."""

    def __init__(self, sink: Callable[[Entry], None]) -> None:
        self._sink = sink
        self._tree = MerkleStream()
        self._last: tuple[str, str] | None = None
        self.count = 0

    def add(self, trace_id: str, span_id: str, digest: str) -> None:
        self.extend(((trace_id, span_id, digest),))

    def extend(self, rows: Iterable[Sequence[str]]) -> None:
        """Many (trace_id, span_id, digest) at once: the loop a million-span report runs."""
        sink, leaf, last, count, fromhex = self._sink, self._tree.add, self._last, self.count, bytes.fromhex
        try:
            for trace_id, span_id, digest in rows:
                key = (trace_id, span_id)
                if last is not None and key <= last:
                    raise ValueError("manifest records must come in strictly increasing (trace_id, span_id) order")
                last = key
                leaf(fromhex(digest))
                sink(Entry(trace_id, span_id, digest))
                count += 1
        finally:
            self._last, self.count = last, count

    def finish(self, entries: Iterable[Entry]) -> Manifest:
        """The manifest over everything added; `entries` is where the sink put them."""
        return Manifest(ALGORITHM, entries, self._tree.root(), self.count)


def build_manifest(digests: Iterable[tuple[str, str, str]]) -> Manifest:
    """A manifest held in memory (small reports), from (trace_id, span_id, digest) hex in any order."""
    entries: list[Entry] = []
    builder = ManifestBuilder(entries.append)
    for t, s, d in sorted(digests):
        builder.add(t, s, d)
    return builder.finish(tuple(entries))


@dataclass(frozen=True)
class SpanCheck:
    trace_id: str
    span_id: str
    outcome: str  # "ok" | "changed" | "missing"


def check_entries(entries: Iterable[Entry], current: Mapping[tuple[str, str], str]) -> Iterator[SpanCheck]:
    """Each entry against the digest of the record now stored under its (trace_id, span_id) (hex)."""
    for e in entries:
        digest = current.get((e.trace_id, e.span_id))
        yield SpanCheck(e.trace_id, e.span_id,
                        "missing" if digest is None else ("ok" if digest == e.digest else "changed"))


def check_records(manifest: Manifest, current: Mapping[tuple[str, str], str]) -> list[SpanCheck]:
    return list(check_entries(manifest.entries, current))


def batches(entries: Iterable[Entry], size: int) -> Iterator[Sequence[Entry]]:
    it = iter(entries)
    while batch := tuple(islice(it, size)):
        yield batch


def root_matches(manifest: Manifest) -> bool:
    """Whether the manifest's own root and count are those of its entries (a manifest edited by
    hand fails)."""
    tree, count = MerkleStream(), 0
    for e in manifest.entries:
        tree.add(bytes.fromhex(e.digest))
        count += 1
    return tree.root() == manifest.root and count == manifest.count
