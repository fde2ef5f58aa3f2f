"""The audit trail's hash chain: canonical form, hashing, verification. Pure.

Each event's hash is SHA-256 over its canonical form, which includes the previous event's
hash in the same chain (one chain per project; chain 0 holds events with no project, such
as failed logins). Altering, removing or reordering any stored event changes a hash that a
later event (or the chain's head, which reports carry) depends on, so `verify` finds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

GENESIS = bytes(32)  # the "previous hash" of a chain's first event


@dataclass(frozen=True)
class AuditRecord:
    chain: int
    seq: int  # 1, 2, 3 ... within the chain, without gaps
    at: datetime
    actor: str  # "user:<email>", "key:<prefix>", "cli:<os user>", "open", "anonymous"
    action: str  # e.g. "login", "key.create", "trace.view"
    target: str | None
    outcome: str  # "ok" or "denied"/"failed" with a reason in details
    client_addr: str | None
    details: dict[str, Any]
    prev_hash: bytes


def canonical(record: AuditRecord) -> bytes:
    """Deterministic bytes of the record: sorted keys, no whitespace, times in UTC to the µs."""
    body = {
        "chain": record.chain, "seq": record.seq,
        "at": record.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": record.actor, "action": record.action, "target": record.target, "outcome": record.outcome,
        "client_addr": record.client_addr, "details": record.details, "prev_hash": record.prev_hash.hex(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: AuditRecord) -> bytes:
    return hashlib.sha256(canonical(record)).digest()


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    seq: int
    event_id: int
    reason: str


def verify(rows: Iterable[tuple[int, AuditRecord, bytes]]) -> tuple[int, ChainBreak | None]:
    """Walk (event id, record, stored hash) in (chain, seq) order. Returns how many events were
    checked and the first break: a hash that does not match the record, a previous-hash that
    does not match the event before it, or a gap in the sequence."""
    checked = 0
    chain, prev, expected_seq = None, GENESIS, 1
    for event_id, record, stored in rows:
        if record.chain != chain:
            chain, prev, expected_seq = record.chain, GENESIS, 1
        if record.seq != expected_seq:
            return checked, ChainBreak(record.chain, record.seq, event_id,
                                       f"sequence jumps from {expected_seq - 1} to {record.seq} (events removed?)")
        if record.prev_hash != prev:
            return checked, ChainBreak(record.chain, record.seq, event_id,
                                       "its previous-hash does not match the event before it")
        if record_hash(record) != stored:
            return checked, ChainBreak(record.chain, record.seq, event_id,
                                       "its contents do not match its hash (the row was altered)")
        prev, expected_seq = stored, expected_seq + 1
        checked += 1
    return checked, None
