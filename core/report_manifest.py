"""What a report covers, in a form a third party can check: a SHA-256 digest of every span
record it covers and their Merkle root.

A record's digest (the leaf) is computed by the database, next to the row, from a fixed list
of the span's stored fields in a canonical form (db/queries/reports.py, leaf_digest): that
keeps a period report over a million spans from shipping every row to Python. Two canonical
forms exist: v3 (PostgreSQL's binary encoding of the record, what reports are made with) and
v2 (its text form, slower to produce; reports made with it still verify). This module holds
what is pure: the tree, streamed in one pass with O(log n) memory, the packed form of the
entries (56 bytes each) and the checks.

The tree hashes leaves and nodes with distinct prefixes (as RFC 6962 does), so a leaf can
never pass for a node; an odd node is carried up unchanged. Entries are ordered by
(trace_id, span_id) as hex, so the root does not depend on query order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from itertools import islice
from operator import lt
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

LEAF, NODE = b"\x00", b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
ALGORITHM = "sha256-leaf00-node01-pg-record-send-v3"
ALGORITHM_V2 = "sha256-leaf00-node01-pg-record-v2"
ALGORITHMS = (ALGORITHM, ALGORITHM_V2)  # what `reports verify` can check

# A packed entry: trace id, span id (OTLP's sizes; ingest refuses others) and the leaf digest.
TRACE_BYTES, SPAN_BYTES, DIGEST_BYTES = 16, 8, 32
PACKED = TRACE_BYTES + SPAN_BYTES + DIGEST_BYTES
FOLD = 1 << 12  # leaves folded into one complete subtree at a time (MerkleStream.extend)
UNPACK_CHUNK = PACKED * 8192  # packed bytes turned into hex at a time


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

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Adds many leaves: the same tree as add() one by one, but complete subtrees are folded
        a level at a time in a comprehension, several times faster for a million leaves."""
        sha, i, n = hashlib.sha256, 0, len(leaves)
        while i < n:
            # The largest complete subtree that may start at this count: a power of two that
            # divides the count (any, at zero), at most FOLD, and no more than what is left.
            size = min(self._count & -self._count or FOLD, FOLD)
            while size > n - i:
                size >>= 1
            if size == 1:
                self.add(leaves[i])
                i += 1
                continue
            level, height = leaves[i:i + size], 0
            while len(level) > 1:
                level = [sha(NODE + a + b).digest() for a, b in zip(level[::2], level[1::2])]
                height += 1
            self._push(level[0], height)
            i += size

    def _push(self, node: bytes, height: int) -> None:
        """A complete subtree of 2**height leaves; the count is a multiple of its size."""
        nodes, n = self._nodes, self._count >> height
        while n & 1:
            node = hashlib.sha256(NODE + nodes.pop() + node).digest()
            n >>= 1
        nodes.append(node)
        self._count += 1 << height

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


class PackedManifestBuilder:
    """ManifestBuilder for packed entries (trace id, span id, digest: PACKED bytes each), in
    order, a chunk at a time, passed on to `write` (a spool's) as they are. What a period
    report over millions of spans runs: no per-entry objects but the digests' slices."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._tree = MerkleStream()
        self._last = b""
        self.count = 0

    def extend(self, packed: bytes) -> None:
        if not packed:
            return
        if len(packed) % PACKED:
            raise ValueError("packed manifest entries must be whole records")
        keys = key_slices(packed)  # fixed sizes: bytes order is (trace, span) order
        if keys[0] <= self._last or not all(map(lt, keys, islice(keys, 1, None))):
            raise ValueError("manifest records must come in strictly increasing (trace_id, span_id) order")
        self._last = keys[-1]
        self._tree.extend(digest_slices(packed))
        self._write(packed)
        self.count += len(keys)

    def finish(self, entries: Iterable[Entry]) -> Manifest:
        return Manifest(ALGORITHM, entries, self._tree.root(), self.count)


KEY_BYTES = TRACE_BYTES + SPAN_BYTES


def key_slices(packed: bytes) -> list[bytes]:
    """The (trace id, span id) of each packed entry, as one bytes value each."""
    return [packed[i:i + KEY_BYTES] for i in range(0, len(packed) - PACKED + 1, PACKED)]


def digest_slices(packed: bytes) -> list[bytes]:
    """The leaf digest of each packed entry."""
    return [packed[i:i + DIGEST_BYTES] for i in range(KEY_BYTES, len(packed) - DIGEST_BYTES + 1, PACKED)]


def pack(entries: Iterable[Entry]) -> bytes:
    """Hex entries in their packed form (ValueError for an id or digest that is not hex or
    not of its size)."""
    entries = list(entries)
    if not all(len(e.trace_id) == 2 * TRACE_BYTES and len(e.span_id) == 2 * SPAN_BYTES
               and len(e.digest) == 2 * DIGEST_BYTES for e in entries):
        raise ValueError("a manifest entry's id or digest is not of its size")
    return bytes.fromhex("".join(e.trace_id + e.span_id + e.digest for e in entries))


def unpack(data: bytes) -> Iterator[Entry]:
    """Entries (hex) from packed bytes, a chunk at a time (hex of a chunk, then string slices:
    several times faster than hex per field). A trailing partial record is left out; the count
    check (root_matches) catches it."""
    t, s, step = 2 * TRACE_BYTES, 2 * (TRACE_BYTES + SPAN_BYTES), 2 * PACKED
    for start in range(0, len(data) - PACKED + 1, UNPACK_CHUNK):
        text = data[start:start + UNPACK_CHUNK].hex()
        for i in range(0, len(text) - step + 1, step):
            yield Entry(text[i:i + t], text[i + t:i + s], text[i + s:i + step])


class PackedEntries:
    """Re-iterable entries over packed bytes (a PDF's manifest.bin): 56 bytes an entry in
    memory, not a million Python objects."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[Entry]:
        return unpack(self._data)

    def __len__(self) -> int:
        return len(self._data) // PACKED

    def complete(self) -> bool:
        return len(self._data) % PACKED == 0

    def chunks(self, size: int) -> Iterator[bytes]:
        """The packed bytes, `size` whole entries at a time (a trailing partial entry left out)."""
        data, step = memoryview(self._data), size * PACKED
        end = len(data) // PACKED * PACKED
        for start in range(0, end, step):
            yield data[start:min(start + step, end)]


def build_manifest(digests: Iterable[tuple[str, str, str]], algorithm: str = ALGORITHM) -> Manifest:
    """A manifest held in memory (small reports), from (trace_id, span_id, digest) hex in any order."""
    entries: list[Entry] = []
    builder = ManifestBuilder(entries.append)
    for t, s, d in sorted(digests):
        builder.add(t, s, d)
    return replace(builder.finish(tuple(entries)), algorithm=algorithm)


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
    complete = getattr(manifest.entries, "complete", None)  # packed entries, in memory or spooled
    if complete is not None and not complete():
        return False
    for chunk in packed_chunks(manifest.entries):
        tree.extend(digest_slices(bytes(chunk)))
        count += len(chunk) // PACKED
    return tree.root() == manifest.root and count == manifest.count


MERGE_RUN = 1024  # entries compared as one byte range while both sides agree


class _Packed:
    """A stream of packed entries read from chunks (a trailing partial entry is dropped)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk, self._at = b"", 0

    def left(self) -> int:
        """Bytes left in the current chunk, after reading the next one if this one is done."""
        while len(self._chunk) - self._at < PACKED:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._at = bytes(chunk), 0
        return (len(self._chunk) - self._at) // PACKED * PACKED

    def peek(self, n: int) -> bytes:
        return self._chunk[self._at:self._at + n]

    def skip(self, n: int) -> None:
        self._at += n


def merge_packed(manifest: Iterable[bytes], stored: Iterable[bytes]) -> Iterator[tuple[str, Any]]:
    """Walks a manifest's packed entries beside the packed entries of the records stored now,
    both in manifest order. Yields ("ok", n) for n entries stored unchanged, ("changed", entry)
    for an entry whose key is stored with another digest, ("unmatched", entry) for one whose key
    the stored side lacks (it may be stored outside what was read, or the manifest out of order:
    the caller looks it up by key) and ("extra", key) for a stored record the manifest lacks.
    While the sides agree they are compared MERGE_RUN entries at a time as byte ranges, halved
    down to the entry where they differ: one compare per run, not one per entry."""
    m, s = _Packed(manifest), _Packed(stored)
    while True:
        m_left, s_left = m.left(), s.left()
        if not m_left or not s_left:
            break
        n = min(m_left, s_left, MERGE_RUN * PACKED)
        while n > PACKED and m.peek(n) != s.peek(n):
            n = n // PACKED // 2 * PACKED
        a, b = m.peek(n), s.peek(n)
        if a == b:
            yield "ok", n // PACKED
            m.skip(n)
            s.skip(n)
        elif a[:KEY_BYTES] == b[:KEY_BYTES]:
            yield "changed", a
            m.skip(PACKED)
            s.skip(PACKED)
        elif a[:KEY_BYTES] < b[:KEY_BYTES]:
            yield "unmatched", a
            m.skip(PACKED)
        else:
            yield "extra", b[:KEY_BYTES]
            s.skip(PACKED)
    while m.left():
        yield "unmatched", m.peek(PACKED)
        m.skip(PACKED)
    while s.left():
        yield "extra", s.peek(KEY_BYTES)
        s.skip(PACKED)


def packed_chunks(entries: Iterable[Entry], size: int = FOLD * 2) -> Iterator[bytes]:
    """The entries packed, `size` at a time: a packed manifest's own bytes as they are (anything
    with PackedEntries' chunks(), such as a spool on disk), hex entries packed (ValueError for
    one that is not hex of its size)."""
    chunks = getattr(entries, "chunks", None)
    if chunks is not None:
        yield from chunks(size)
        return
    for batch in batches(entries, size):
        yield pack(batch)
