"""The window's packed entries as the database groups them (a row a run): the same entries, in
manifest order, in chunks of COPY_ROWS, and an id the packed form cannot hold refused."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text

import db.queries.reports as queries
from core.report_manifest import PACKED, key_slices
from db.queries.reports import span_digests_by_key, window_packed_entries

SINCE, UNTIL = datetime(2026, 11, 19, tzinfo=timezone.utc), datetime(2026, 11, 22, tzinfo=timezone.utc)


@pytest.mark.parametrize("rows", [1, 3, 5, 8192])
def test_the_entries_of_every_span_in_order_in_whole_chunks(session, seeded, monkeypatch, rows):
    project, trace = seeded
    monkeypatch.setattr(queries, "COPY_ROWS", rows)
    chunks = list(window_packed_entries(session, project.id, SINCE, UNTIL, stored=True))
    assert all(len(c) == rows * PACKED for c in chunks[:-1]) and 0 < len(chunks[-1]) <= rows * PACKED
    packed = b"".join(chunks)
    keys = key_slices(packed)
    assert len(keys) == 13 and keys == sorted(keys)
    # Each entry's digest is its record's (recomputed by key, as verify does).
    current = span_digests_by_key(session, project.id, [(k[:16], k[16:]) for k in keys])
    assert {(k[:16].hex(), k[16:].hex()): packed[i * PACKED + 24:(i + 1) * PACKED].hex()
            for i, k in enumerate(keys)} == current
    # Verify reads the same entries, recomputing the leaves.
    assert b"".join(window_packed_entries(session, project.id, SINCE, UNTIL)) == packed


@pytest.mark.parametrize("stored", [True, False])  # creating (a row a run), verifying (a row a span)
def test_an_id_the_packed_form_cannot_hold_is_refused(session, seeded, stored):
    project, trace = seeded
    session.execute(text("UPDATE spans SET span_id = '\\x010203'::bytea WHERE span_id = :s"), {"s": trace.spans["llm"]})
    with pytest.raises(ValueError, match="size OTLP does not allow"):
        list(window_packed_entries(session, project.id, SINCE, UNTIL, stored=stored))
