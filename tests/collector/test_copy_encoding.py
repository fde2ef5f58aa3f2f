"""The COPY data the decoder workers encode (db.ingest.encode, PostgreSQL's text COPY format) reads
back from PostgreSQL exactly as the values went in."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from db.engine import libpq_url
from db.ingest import encode

CASES = [
    ("plain", b"\x01\x02", 1, Decimal("0.0001234")),
    ("tab\there, newline\nthere, return\rhere", b"\x00", -(2**63), Decimal("1.5E-7")),
    ("back\\slash \\N \\t \\\\x00", b"\\x", 2**63 - 1, Decimal("12345678901.1234567890")),
    ("\\N", b"", 0, Decimal("0")),
    (None, None, None, None),
    ("", b"\xff" * 40, 7, Decimal("-3")),
    ("ünïcødé 💥 \u2028 {\"json\": \"a\\\"b\"}", b"\t\n\r", 42, Decimal("1E+3")),
]


@pytest.fixture
def conn(database_url):
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("CREATE TEMP TABLE copied (n serial, s text, b bytea, i int8, d numeric)")
        conn.commit()
        yield conn


def copy_in(conn, data: bytes) -> None:
    with conn.cursor() as cur, cur.copy("COPY copied (s, b, i, d) FROM STDIN") as copy:
        copy.write(data)


def test_values_round_trip(conn):
    encoded = encode(CASES)
    assert encoded.count == len(CASES) and encoded.edges == b""
    copy_in(conn, encoded.spans)
    assert conn.execute("SELECT s, b, i, d FROM copied ORDER BY n").fetchall() == CASES


def test_a_value_postgresql_cannot_store_is_refused_by_it():
    # Out of int8's range, and a lone surrogate: encoded anyway, so PostgreSQL's refusal (a data
    # error: HTTP 400 for that request only) decides, as it did for rows dumped by psycopg.
    assert b"9223372036854775808" in encode([("x", b"", 2**63, None)]).spans
    assert encode([("\ud800", b"", 1, None)]).spans.startswith(b"\xed\xa0\x80\t")


def test_refusals_are_data_errors(conn):
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        copy_in(conn, encode([("x", b"", 2**63, None)]).spans)
    conn.rollback()
    with pytest.raises(psycopg.errors.CharacterNotInRepertoire):
        copy_in(conn, encode([("\ud800", b"", 1, None)]).spans)
