"""The Citus write path takes db/ingest.py's statements apart by CTE name (db/ingest_citus.py):
the reader of WITH statements, and the shard markers put where the co-located tables are named."""

from __future__ import annotations

import pytest

from db import ingest
from db.ingest_citus import _on_shard, ctes


@pytest.mark.parametrize("statement, parts, final", [
    ("WITH a AS (SELECT 1) SELECT * FROM a", {"a": "SELECT 1"}, "SELECT * FROM a"),
    ("WITH a AS (SELECT f(x, (1)) FROM t), b AS (SELECT * FROM a) SELECT 2",
     {"a": "SELECT f(x, (1)) FROM t", "b": "SELECT * FROM a"}, "SELECT 2"),
    # Parentheses in literals, quoted identifiers and comments do not count.
    ("WITH a AS (SELECT ')' AS \")x(\", 'it''s (' -- a comment ) (\n FROM t) SELECT 1",
     {"a": "SELECT ')' AS \")x(\", 'it''s (' -- a comment ) (\n FROM t"}, "SELECT 1"),
    # Comments between CTEs, MATERIALIZED, lower case, newlines.
    ("\nwith a as materialized (\n  SELECT 1\n),\n-- why (b)\nb AS (DELETE FROM t RETURNING 1)\nSELECT 3\n",
     {"a": "\n  SELECT 1\n", "b": "DELETE FROM t RETURNING 1"}, "SELECT 3"),
])
def test_ctes(statement, parts, final):
    assert ctes(statement) == (parts, final)


@pytest.mark.parametrize("statement", ["SELECT 1", "WITH a AS (SELECT 1 SELECT 2", "WITH a (SELECT 1) SELECT 2"])
def test_ctes_refuses(statement):
    with pytest.raises(ValueError):
        ctes(statement)


def test_the_ingest_statements_read_back_whole():
    for statement in (ingest._WRITE_SQL, ingest._USAGE_SQL):
        parts, final = ctes(statement)
        rebuilt = "WITH " + ", ".join(f"{name} AS ({body})" for name, body in parts.items()) + " " + final
        assert _code(rebuilt) == _code(statement)


def _code(sql: str) -> str:
    """Without comments, whitespace and commas (the separators the reader drops and puts back)."""
    return "".join("".join(line.split("--")[0] for line in sql.splitlines()).split()).replace(",", "")


@pytest.mark.parametrize("statement, marked", [
    ("INSERT INTO spans (a) SELECT traces.a FROM stage_spans s JOIN span_edges e ON true",
     "INSERT INTO @@spans@@ (a) SELECT @@traces@@.a FROM stage_spans s JOIN @@span_edges@@ e ON true"),
    ("SELECT traces_count, x.spans, span_duplicates.d FROM span_duplicates",
     "SELECT traces_count, x.spans, @@span_duplicates@@.d FROM @@span_duplicates@@"),
    ("UPDATE traces t SET n = 1", "UPDATE @@traces@@ t SET n = 1"),
])
def test_shard_markers(statement, marked):
    assert _on_shard(statement) == marked


def test_every_rollup_the_usage_statement_writes_is_written_on_citus_too():
    from db import ingest_citus

    written = {name for name in ctes(ingest._USAGE_SQL)[0] if name.startswith("up_")}
    assert written == {"up_usage", "up_provider"}
    assert all(any(f"{name} AS (" in sql for sql in ingest_citus._ROLLUP_SQLS) for name in written)
