"""core/audit_chain.py: every kind of tampering is found, and where."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from core.audit_chain import GENESIS, AuditRecord, canonical, record_hash, verify

T = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def chain(n: int, chain_id: int = 1) -> list[tuple[int, AuditRecord, bytes]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        record = AuditRecord(chain_id, seq, T, "user:a@x", "trace.view", f"t{seq}", "ok", "127.0.0.1",
                             {"n": seq, "ü": "ß"}, prev)
        prev = record_hash(record)
        rows.append((seq, record, prev))
    return rows


def test_an_intact_chain_verifies():
    assert verify(chain(5) + chain(3, chain_id=2)) == (8, None)


def test_canonical_form_is_stable_across_key_order_and_time_zone():
    a = AuditRecord(1, 1, T, "x", "y", None, "ok", None, {"b": 1, "a": 2}, GENESIS)
    b = dataclasses.replace(a, at=T.astimezone(timezone.utc).replace(tzinfo=timezone.utc), details={"a": 2, "b": 1})
    assert canonical(a) == canonical(b)


@pytest.mark.parametrize("tamper, reason", [
    (lambda rows: rows.__setitem__(2, (3, dataclasses.replace(rows[2][1], actor="user:mallory"), rows[2][2])),
     "contents do not match"),
    (lambda rows: rows.__setitem__(2, (3, dataclasses.replace(rows[2][1], details={"n": 99}), rows[2][2])),
     "contents do not match"),
    (lambda rows: rows.pop(2), "sequence jumps from 2 to 4"),
    (lambda rows: rows.__setitem__(2, (3, dataclasses.replace(rows[2][1], prev_hash=bytes(32)), rows[2][2])),
     "previous-hash does not match"),
])
def test_tampering_is_named_at_the_first_broken_event(tamper, reason):
    rows = chain(5)
    tamper(rows)
    checked, broken = verify(rows)
    assert checked == 2 and broken is not None and reason in broken.reason and broken.seq in (3, 4)


def test_details_are_flattened_to_what_jsonb_gives_back():
    from db.queries.audit import _cap

    assert _cap(1e20) == "1e+20" and _cap(-0.0) == "-0.0" and _cap(True) is True and _cap(None) is None
    assert _cap("a\x00b") == "a\ufffdb" and _cap("\ud800") == "?"
    assert _cap({"nested": 1}) == "{'nested': 1}"
