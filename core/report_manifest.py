"""What a report covers, in a form a third party can check: a SHA-256 digest of every span
record it covers and their Merkle root.

A span record is the span row's stored fields, serialized canonically (sorted keys, no
whitespace, bytes as hex, times as UTC ISO-8601, decimals without trailing zeros), so the
same stored row always gives the same digest and any change to any field gives another.
The tree hashes leaves and nodes with distinct prefixes (as RFC 6962 does), so a leaf can
never pass for a node; an odd node is carried up unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

LEAF, NODE = b"\x00", b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("span times must carry a time zone")
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def canonical(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one record (its stored fields by name)."""
    return json.dumps(_plain(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def record_digest(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(LEAF + canonical(record)).hexdigest()


def merkle_root(digests: Sequence[str]) -> str:
    """The root over leaf digests (hex) in the given order; EMPTY_ROOT for none."""
    level = [bytes.fromhex(d) for d in digests]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [hashlib.sha256(NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


@dataclass(frozen=True)
class Entry:
    trace_id: str  # hex
    span_id: str  # hex
    digest: str  # hex SHA-256 of the leaf


@dataclass(frozen=True)
class Manifest:
    algorithm: str
    entries: tuple[Entry, ...]
    root: str

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "count": len(self.entries), "merkle_root": self.root,
                "spans": [[e.trace_id, e.span_id, e.digest] for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        entries = tuple(Entry(str(t), str(s), str(d)) for t, s, d in data["spans"])
        return cls(str(data["algorithm"]), entries, str(data["merkle_root"]))


ALGORITHM = "sha256-leaf00-node01-canonical-json-v1"


def build_manifest(records: Iterable[Mapping[str, Any]]) -> Manifest:
    """Entries ordered by (trace_id, span_id), so the root does not depend on query order."""
    entries = sorted((Entry(_plain(r["trace_id"]), _plain(r["span_id"]), record_digest(r)) for r in records),
                     key=lambda e: (e.trace_id, e.span_id))
    return Manifest(ALGORITHM, tuple(entries), merkle_root([e.digest for e in entries]))


@dataclass(frozen=True)
class SpanCheck:
    trace_id: str
    span_id: str
    outcome: str  # "ok" | "changed" | "missing"


def check_records(manifest: Manifest, current: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[SpanCheck]:
    """Each manifest entry against the record now stored under its (trace_id, span_id) (hex)."""
    checks = []
    for e in manifest.entries:
        record = current.get((e.trace_id, e.span_id))
        outcome = "missing" if record is None else ("ok" if record_digest(record) == e.digest else "changed")
        checks.append(SpanCheck(e.trace_id, e.span_id, outcome))
    return checks


def root_matches(manifest: Manifest) -> bool:
    """Whether the manifest's own root is the root of its entries (a manifest edited by hand fails)."""
    return merkle_root([e.digest for e in manifest.entries]) == manifest.root
