"""spans.digest (schema 0023): PostgreSQL stores each record's v3 leaf when it writes the row;
creating a report reads it, verifying recomputes it from the row."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from db.models import SpanRow
from db.queries.reports import leaf_digest


def _disagreeing(session) -> int:
    return session.scalar(select(func.count()).select_from(SpanRow).where(SpanRow.digest != leaf_digest()))


def test_the_stored_digest_is_the_v3_leaf_of_the_row(session, seeded):
    assert session.scalar(select(func.count()).select_from(SpanRow)) > 10
    assert session.scalar(select(func.count()).select_from(SpanRow).where(SpanRow.digest.is_(None))) == 0
    assert _disagreeing(session) == 0


def test_a_write_from_any_session_stores_the_same_digest(session, seeded):
    """The function is declared IMMUTABLE: a row written under other TimeZone, DateStyle,
    bytea_output and client_encoding settings gets the digest a default session computes."""
    project, trace = seeded
    for setting in ("TimeZone = 'Pacific/Chatham'", "DateStyle = 'SQL, DMY'", "bytea_output = 'escape'",
                    "extra_float_digits = 0", "client_encoding = 'LATIN1'"):
        session.execute(text(f"SET LOCAL {setting}"))
    # Text no LATIN1 can hold: converting it to the client's encoding would fail or change it.
    # (Spelled in ASCII escapes: the client now speaks LATIN1.)
    session.execute(text("UPDATE spans SET input = U&'\\65E5\\672C\\8A9E \\2713', cost_usd = 0.1234567891, "
                         "attributes = attributes || '{\"n\": 1.50, \"s\": \"\\u00e9\\u2713\"}' "
                         "WHERE project_id = :p"),
                    {"p": project.id})
    session.execute(text("SET LOCAL client_encoding = 'UTF8'"))
    for setting in ("TimeZone", "DateStyle", "bytea_output", "extra_float_digits"):
        session.execute(text(f"RESET {setting}"))
    assert _disagreeing(session) == 0


def test_the_digest_cannot_be_written(session, seeded):
    project, _ = seeded
    session.execute(text("SAVEPOINT s"))
    with pytest.raises(DBAPIError, match="generated column"):
        session.execute(text("UPDATE spans SET digest = '\\x00' WHERE project_id = :p"), {"p": project.id})
    session.execute(text("ROLLBACK TO SAVEPOINT s"))


def test_an_update_recomputes_the_digest(session, seeded):
    """Erasure rewrites spans in place: the stored digest follows the row."""
    from db.queries.erasure import erase_subject

    project, trace = seeded
    before = dict(session.execute(select(SpanRow.span_id, SpanRow.digest).where(SpanRow.trace_id == trace.trace_id)).all())
    users = session.scalars(select(SpanRow.user_id).where(SpanRow.user_id.is_not(None)).distinct()).all()
    assert users, "the seed has no user ids to erase"
    erase_subject(session, user_id=users[0])
    after = dict(session.execute(select(SpanRow.span_id, SpanRow.digest).where(SpanRow.trace_id == trace.trace_id)).all())
    assert after != before
    assert _disagreeing(session) == 0


def test_verify_recomputes_and_never_reads_the_stored_digest(session, seeded, tmp_path, capsys):
    """A stored digest made to lie (the generation dropped, the column overwritten) does not
    change what verify finds: the records are unchanged, so the report verifies."""
    from tests.reports.test_reports import _cli

    settings = SimpleNamespace(report_signing_key=None, init_project="acme")
    for kind, args in (("period", ["--since", "2026-11-19T00:00", "--until", "2026-11-22T00:00"]),
                       ("incident", ["--trace", seeded[1].hex])):
        out = tmp_path / f"{kind}.json"
        assert _cli(session, settings, "create", "--kind", kind, *args, "--format", "json", "-o", str(out)) == 0
        session.commit()
    session.execute(text("ALTER TABLE spans ALTER COLUMN digest DROP EXPRESSION"))
    session.execute(text("UPDATE spans SET digest = '\\x00'"))
    session.commit()
    capsys.readouterr()
    for kind in ("period", "incident"):
        assert _cli(session, settings, "verify", str(tmp_path / f"{kind}.json")) == 0, kind
        assert "unchanged" in capsys.readouterr().out
