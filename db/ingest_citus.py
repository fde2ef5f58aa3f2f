"""The ingest write path on a Citus cluster (db/citus.py): the same statements as db/ingest.py, cut
where Citus needs them cut, so that a batch costs a few round trips per shard instead of a chain of
distributed subplans.

Planned on the coordinator, the write statement of db/ingest.py (a chain of data-modifying CTEs
over a session's temporary table) becomes a dozen distributed subplans, each shipping intermediate
results to every shard, with one connection and one prepared transaction per shard: ~3.5 s for
512 spans on 32 shards. Here a batch is written in four steps, in one transaction:

  1. COPY into the same temporary staging tables (coordinator, local);
  2. one local query groups the staged rows by the shard of their trace (Citus's own
     get_shard_id_for_distribution_column) into one JSON document per shard;
  3. per shard, in shard order, one call of a function delegated to the worker holding it
     (create_distributed_function ... force_delegation): there it runs the CTEs of db/ingest.py's
     write statement that touch the trace's co-located tables (insert spans ON CONFLICT DO NOTHING,
     traces upsert, parent edges), then the link edges, then counts what the de-duplication has to
     read; it returns the model and tool calls it really inserted. Where the de-duplication rule
     (core/model_call_dedup.py) has something to read, the coordinator reads it with a router
     query, and a second delegated function marks the spans whose state changes (the marking CTEs
     of db/ingest.py's rollup statement) and returns the corrections;
  4. on the coordinator, the CTEs of db/ingest.py that keep the model calls aside (a local
     statement), write tool_rollups, then usage_rollups and provider_rollups, over the returned
     calls and corrections: the rollups' statements each write the project's one shard.

Inside the functions the statements name the shard tables themselves (planned by Citus on the
worker they would again become subplans); the shard's metadata lock guards them against a
concurrent shard move (_GUARD).

One connection per worker and one two-phase commit for the batch. Every guarantee is kept: the
transaction is atomic across the workers (Citus's 2PC), a redelivered span conflicts with itself on
its shard and is neither stored nor counted again, the rollups are computed from the rows really
inserted, and the de-duplication reads a trace only while holding its `traces` row (the upsert
comes first, in an earlier statement). Shards are visited in ascending order and the rollups last,
so two writers take their locks in the same order.

The statements are not restated: the CTE bodies are taken by name from db/ingest.py's statements
(`ctes()`); the functions are named after a hash of their text, so a changed statement installs a
new pair of functions (install(), also run by `causeline migrate --citus`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

import psycopg

from db import ingest
from db.citus import BY_TRACE
from db.ingest_dedup import FACTS_BY_KEYS_SQL, Changes, changes


# -- taking statements apart ------------------------------------------------------------------------

def ctes(statement: str) -> tuple[dict[str, str], str]:
    """`WITH a AS (...), b AS (...) SELECT ...` -> ({'a': body, 'b': body}, 'SELECT ...').
    Parentheses inside string literals, quoted identifiers and comments do not count."""
    text = statement.strip()
    if not text[:4].upper() == "WITH":
        raise ValueError("not a WITH statement")
    pos, out = 4, {}
    while True:
        match = _CTE_HEAD.match(text, _skip(text, pos))
        if not match:
            raise ValueError(f"cannot read a CTE at: {text[pos:pos + 40]!r}")
        end = _closing(text, match.end())
        out[match.group(1)] = text[match.end():end]
        pos = _skip(text, end + 1)
        if not text.startswith(",", pos):
            return out, text[pos:].strip()
        pos += 1


_CTE_HEAD = re.compile(r"(\w+)\s+AS\s+(?:MATERIALIZED\s+)?\(", re.I)


def _skip(text: str, pos: int) -> int:
    """Past whitespace and -- comments."""
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith("--", pos):
            return pos
        end = text.find("\n", pos)
        pos = len(text) if end < 0 else end


def _closing(text: str, pos: int) -> int:
    """Index of the parenthesis closing the one opened just before pos."""
    depth = 1
    while pos < len(text):
        ch = text[pos]
        if ch == "'" or ch == '"':
            pos = text.index(ch, pos + 1)
            while text.startswith(ch, pos + 1):  # '' or "" inside the literal
                pos = text.index(ch, pos + 2)
        elif text.startswith("--", pos):
            pos = text.find("\n", pos)
            if pos < 0:
                break
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    raise ValueError("unbalanced parentheses")


def _with(parts: Sequence[tuple[str, str]], final: str) -> str:
    return "WITH " + ",\n".join(f"{name} AS ({body})" for name, body in parts) + "\n" + final


_WRITE, _ = ctes(ingest._WRITE_SQL)
_USAGE, _ = ctes(ingest._USAGE_SQL)
_EDGES = ingest._EDGE_SQL.strip()

# Composite types of the staged rows, so that the workers can read them from JSON (the
# temporary staging tables exist only on the coordinator).
SPAN_TYPE, EDGE_TYPE = "causeline_stage_span", "causeline_stage_edge"


def _type_ddl(name: str, columns) -> str:
    return f"CREATE TYPE {name} AS ({', '.join(f'{c} {t}' for c, t in columns)})"


_TYPES = ((SPAN_TYPE, _type_ddl(SPAN_TYPE, ingest.STAGE_SPAN_COLUMNS)),
          (EDGE_TYPE, _type_ddl(EDGE_TYPE, ingest.STAGE_EDGE_COLUMNS)))

# -- on the worker ---------------------------------------------------------------------------------
# Planned by Citus on the worker, a chain of data-modifying CTEs over the distributed tables is
# again cut into subplans whose intermediate results are broadcast to every node (measured: ~50-100
# ms and two new connections per call). Inside the delegated function the statements therefore
# name the shards themselves (shard_name() of the shard holding p_key, for each co-located table):
# one plain PostgreSQL statement on local tables. The coordinator routed the call to this shard
# and grouped the rows by it, so every row of the call belongs here.

_BY_TRACE = re.compile(r"(?<![\w.\"])(" + "|".join(sorted(BY_TRACE, key=len, reverse=True)) + r")(?![\w\"])")


def _on_shard(statement: str) -> str:
    """The statement with each co-located table as a marker that the function replaces by its shard."""
    return _BY_TRACE.sub(r"@@\1@@", statement)


def _dynamic(statement: str) -> str:
    """A plpgsql expression: the statement's text with this call's shard names."""
    text = "$q$" + _on_shard(statement) + "$q$"
    for table in BY_TRACE:
        if f"@@{table}@@" in _on_shard(statement):
            text = f"replace({text}, '@@{table}@@', shard_name('{table}'::regclass, "\
                   f"get_shard_id_for_distribution_column('{table}', p_key)))"
    return text


# Writing to the shard tables bypasses Citus's own guard against a concurrent shard move (a
# rebalance): so, as Citus's writers do, hold the shard's metadata lock (ShareLock, mode 5; the
# move's last step takes it exclusively on every node, lock_shard_metadata being the function
# Citus itself calls there), then check that the shard is still on this node. A call that waited
# for a move to finish finds it gone and fails with a serialization failure: the writer rolls
# the batch back and runs it again, routed to the shard's new node.
_GUARD = """
    v_shard := get_shard_id_for_distribution_column('traces', p_key);
    PERFORM lock_shard_metadata(5, ARRAY[v_shard]);
    IF NOT EXISTS (SELECT 1 FROM pg_dist_placement WHERE shardid = v_shard
                   AND groupid = (SELECT groupid FROM pg_dist_local_group)) THEN
        RAISE EXCEPTION 'shard % moved to another node', v_shard USING ERRCODE = 'serialization_failure';
    END IF;"""

# The write statement's CTEs that touch only the trace's co-located tables; `stage_spans` (a
# temporary table on the coordinator) is the function's argument ($1) here.
_SHARD_WRITE = _with(
    [("stage_spans", f"SELECT * FROM jsonb_populate_recordset(NULL::{SPAN_TYPE}, $1)")]
    + [(name, _WRITE[name]) for name in ("ins", "calls", "per_trace", "up_traces", "parent_edges")],
    "SELECT (SELECT count(*) FROM ins), (SELECT array_agg(project_id) FROM up_traces),\n"
    "    (SELECT array_agg(trace_id) FROM up_traces), (SELECT COALESCE(jsonb_agg(c), '[]') FROM calls c)")
_SHARD_EDGES = _with([("stage_edges", f"SELECT * FROM jsonb_populate_recordset(NULL::{EDGE_TYPE}, $1)")], _EDGES)
# A later statement (a later snapshot, the traces' rows held): how many rows the de-duplication reads.
_SHARD_FACTS = ("SELECT count(*) FROM (" + FACTS_BY_KEYS_SQL % {"touched_project": "$1", "touched_trace": "$2"}
                + ") f")

_WRITE_BODY = f"""
DECLARE
    v_shard int8;
    v_projects int8[];
    v_traces bytea[];
BEGIN{_GUARD}
    EXECUTE {_dynamic(_SHARD_WRITE)}
        INTO o_inserted, v_projects, v_traces, o_calls USING p_spans;
    IF p_edges IS NOT NULL THEN
        EXECUTE {_dynamic(_SHARD_EDGES)} USING p_edges;
    END IF;
    o_touched := COALESCE(cardinality(v_traces), 0);
    o_facts := 0;
    IF o_touched > 0 THEN
        EXECUTE {_dynamic(_SHARD_FACTS)} INTO o_facts USING v_projects, v_traces;
    END IF;
    IF o_facts > 0 THEN  -- the coordinator reads them (a router query)
        o_projects := v_projects;
        o_traces := v_traces;
    END IF;
    RETURN NEXT;
END
"""

# The rollup statement's marking CTEs: the changed marks of one shard, and the corrections they
# make (returned to the coordinator, which writes the usage rollups).
_CHG = ("chg_project", "chg_trace", "chg_span", "chg_old", "chg_new", "chg_reason")
_SHARD_MARK = _with(
    [(name, _USAGE[name] % {chg: f"${i}" for i, chg in enumerate(_CHG, 1)})
     for name in ("chg", "added", "moved", "cleared", "fixes", "fix_traces")],
    "SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM moved) + (SELECT count(*) FROM cleared),\n"
    "    (SELECT COALESCE(jsonb_agg(f), '[]') FROM fixes f)")
_MARK_BODY = f"""
DECLARE
    v_shard int8;
BEGIN{_GUARD}
    EXECUTE {_dynamic(_SHARD_MARK)} INTO o_marked, o_fixes
        USING {", ".join(f"p_{chg}" for chg in _CHG)};
    RETURN NEXT;
END
"""

_VERSION = hashlib.sha256("\n".join([_WRITE_BODY, _MARK_BODY, *(ddl for _, ddl in _TYPES)]).encode()).hexdigest()[:10]
WRITE_FUNCTION = f"causeline_write_shard_{_VERSION}"
MARK_FUNCTION = f"causeline_mark_shard_{_VERSION}"

_FUNCTIONS = (
    (WRITE_FUNCTION, "p_key bytea, p_spans jsonb, p_edges jsonb",
     "o_inserted int8, o_touched int8, o_facts int8, o_calls jsonb, o_projects int8[], o_traces bytea[]", _WRITE_BODY),
    (MARK_FUNCTION, "p_key bytea, p_chg_project int8[], p_chg_trace bytea[], p_chg_span bytea[], "
                    "p_chg_old bytea[], p_chg_new bytea[], p_chg_reason text[]",
     "o_marked int8, o_fixes jsonb", _MARK_BODY),
)

# -- on the coordinator ---------------------------------------------------------------------------------

# The batch's rows, one JSON document per shard of their traces, in shard order.
_GROUP_SQL = """
WITH s AS (
    SELECT get_shard_id_for_distribution_column('traces', trace_id) AS shard, (array_agg(trace_id))[1] AS key,
        jsonb_agg(r)::text AS rows
    FROM stage_spans r GROUP BY 1
), e AS (
    SELECT get_shard_id_for_distribution_column('traces', trace_id) AS shard, (array_agg(trace_id))[1] AS key,
        jsonb_agg(r)::text AS rows
    FROM stage_edges r GROUP BY 1
)
SELECT COALESCE(s.shard, e.shard), COALESCE(s.key, e.key), COALESCE(s.rows, '[]'), e.rows
FROM s FULL JOIN e ON e.shard = s.shard ORDER BY 1
"""

# The calls the workers inserted -> stage_calls (model calls) and tool_rollups: the write
# statement's own CTEs, over the calls returned by the workers.
# (JSON passed through as text, never parsed in Python: numeric costs stay exact.)
# (The record in FROM: `(jsonb_populate_record(...)).*` would call it once per column.)
_CALLS = ("SELECT r.*, c->>'category' AS category, c->>'tool_name' AS tool_name "
          "FROM unnest(%(calls)s::jsonb[]) g, jsonb_array_elements(g) c, jsonb_populate_record(NULL::stage_calls, c) r")
# Two statements: in one, Citus would ship `calls` (used twice) to every worker as an
# intermediate result; alone, the first is local and the second writes the project's one shard.
_KEPT_SQL = _with([("calls", _CALLS), ("kept_calls", _WRITE["kept_calls"])], "SELECT count(*) FROM kept_calls")
_TOOLS_SQL = _with([("calls", _CALLS), ("up_tools", _WRITE["up_tools"])], "SELECT count(*) FROM up_tools")
# The usage rollups: the rollup statement's own CTEs, over stage_calls and the corrections returned
# by the workers (`fixes`: spans columns and a sign).
_FIXES = ("SELECT r.*, (f->>'sign')::int AS sign "
          "FROM unnest(%(fixes)s::jsonb[]) g, jsonb_array_elements(g) f, jsonb_populate_record(NULL::spans, f) r")
# One statement a rollup table (usage_rollups, provider_rollups), as for the calls above.
_ROLLUP_SQLS = tuple(
    _with([("fixes", _FIXES), ("counted", _USAGE["counted"]), (name, _USAGE[name])], f"SELECT count(*) FROM {name}")
    for name in ("up_usage", "up_provider"))


def install(conn: psycopg.Connection) -> bool:
    """Create this version's types and delegated functions where missing; True when it created
    them. Serialized between processes by an advisory lock; commits."""
    if _installed(conn):
        return False
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('causeline.ingest_citus'))")
    if _installed(conn):
        conn.commit()
        return False
    for name, ddl in _TYPES:
        if conn.execute("SELECT to_regtype(%s) IS NULL", (name,)).fetchone()[0]:
            conn.execute(ddl)
    for name, args, returns, body in _FUNCTIONS:
        conn.execute(f"CREATE OR REPLACE FUNCTION {name}({args}) RETURNS TABLE ({returns}) "
                     f"LANGUAGE plpgsql VOLATILE AS $fn${body}$fn$")
        signature = conn.execute("SELECT %s::regproc::oid::regprocedure::text", (name,)).fetchone()[0]
        conn.execute("SELECT create_distributed_function(%s, 'p_key', colocate_with => 'traces', "
                     "force_delegation => true)", (signature,))
    conn.commit()
    return True


def _installed(conn: psycopg.Connection) -> bool:
    return bool(conn.execute(
        "SELECT count(*) = 2 FROM pg_dist_object o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass "
        "AND o.objid = p.oid WHERE p.proname IN (%s, %s) AND o.distribution_argument_index IS NOT NULL",
        (WRITE_FUNCTION, MARK_FUNCTION)).fetchone()[0])


@dataclass
class _Shard:
    key: bytes
    projects: list[int]
    traces: list[bytes]


def write_staged(cur: psycopg.Cursor) -> tuple[int, int]:
    """Steps 2-4 (see the module docstring) over what is staged; returns (inserted, traces touched).
    The caller commits."""
    groups = cur.execute(_GROUP_SQL).fetchall()
    inserted = touched = 0
    calls: list[str] = []  # JSON arrays, one per shard
    shards: list[_Shard] = []
    for _, key, span_rows, edge_rows in groups:
        got, got_touched, facts, got_calls, projects, traces = cur.execute(
            f"SELECT o_inserted, o_touched, o_facts, o_calls::text, o_projects, o_traces "
            f"FROM {WRITE_FUNCTION}(%s, %s::jsonb, %s::jsonb)", (key, span_rows, edge_rows)).fetchone()
        inserted += got
        touched += got_touched
        if got_calls != "[]":
            calls.append(got_calls)
        if facts:
            shards.append(_Shard(key, projects, traces))
    fixes: list[str] = []
    for shard in shards:
        marks = _marks(cur, shard)
        if len(marks):
            (got_fixes,) = cur.execute(
                f"SELECT o_fixes::text FROM {MARK_FUNCTION}(%(key)s, %(chg_project)s, %(chg_trace)s, %(chg_span)s, "
                f"%(chg_old)s, %(chg_new)s, %(chg_reason)s)", {"key": shard.key, **marks.params()}).fetchone()
            fixes.append(got_fixes)
    if calls:
        cur.execute(_KEPT_SQL, {"calls": calls})
        cur.execute(_TOOLS_SQL, {"calls": calls})
    if calls or fixes:
        for statement in _ROLLUP_SQLS:
            cur.execute(statement, {"fixes": fixes})
    return inserted, touched


def _marks(cur: psycopg.Cursor, shard: _Shard) -> Changes:
    """The de-duplication's verdict on one shard's touched traces. Its facts are read by a router
    query (the shard's traces as filter) after the write function: a later snapshot, with the
    traces' rows held by this transaction."""
    cur.execute(FACTS_BY_KEYS_SQL, {"touched_project": shard.projects, "touched_trace": shard.traces})
    return changes(cur.fetchall())
