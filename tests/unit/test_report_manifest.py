import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.report_manifest import (
    EMPTY_ROOT, Manifest, build_manifest, canonical, check_records, merkle_root, record_digest, root_matches,
)

T = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
REC = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "name": "chat", "start_time": T,
       "cost_usd": Decimal("0.0081000000"), "attributes": {"b": 1, "a": [1, "x"]}, "input": None}


def h(*parts: bytes) -> str:
    return hashlib.sha256(b"".join(parts)).hexdigest()


@pytest.mark.parametrize("a, b", [
    # Equal stored values give equal bytes, whatever their Python spelling.
    ({"x": Decimal("0.0081000000")}, {"x": Decimal("0.0081")}),
    ({"x": Decimal("0E-10")}, {"x": Decimal("0")}),
    ({"t": T}, {"t": T.astimezone(timezone(timedelta(hours=2)))}),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ({"id": b"\xab"}, {"id": bytearray(b"\xab")}),
])
def test_canonical_is_stable(a, b):
    assert canonical(a) == canonical(b)


@pytest.mark.parametrize("field, value", [
    ("name", "chat!"), ("start_time", T + timedelta(microseconds=1)), ("cost_usd", Decimal("0.0082")),
    ("attributes", {"b": 1, "a": [1, "y"]}), ("input", ""), ("span_id", b"\x03" * 8),
])
def test_any_changed_field_changes_the_digest(field, value):
    assert record_digest({**REC, field: value}) != record_digest(REC)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        canonical({"t": datetime(2026, 1, 1)})


a, b, c = (h(bytes([i])) for i in range(3))
A, B, C = (bytes.fromhex(x) for x in (a, b, c))


@pytest.mark.parametrize("leaves, root", [
    ([], EMPTY_ROOT),
    ([a], a),
    ([a, b], h(b"\x01", A, B)),
    ([a, b, c], h(b"\x01", bytes.fromhex(h(b"\x01", A, B)), C)),  # the odd leaf is carried up
])
def test_merkle_root(leaves, root):
    assert merkle_root(leaves) == root


def test_order_matters_for_the_root_but_not_for_the_manifest():
    assert merkle_root([a, b]) != merkle_root([b, a])
    r1, r2 = {**REC}, {**REC, "span_id": b"\x00" * 8}
    assert build_manifest([r1, r2]).root == build_manifest([r2, r1]).root


def test_check_records_and_roundtrip():
    r2 = {**REC, "span_id": b"\x00" * 8}
    m = Manifest.from_dict(build_manifest([REC, r2]).to_dict())
    assert root_matches(m)
    key = lambda r: (r["trace_id"].hex(), r["span_id"].hex())  # noqa: E731
    now = {key(REC): {**REC, "name": "tampered"}}
    assert [c.outcome for c in check_records(m, now)] == ["missing", "changed"]
    assert [c.outcome for c in check_records(m, {key(REC): REC, key(r2): r2})] == ["ok", "ok"]
    forged = Manifest(m.algorithm, m.entries[:1], m.root)
    assert not root_matches(forged)
