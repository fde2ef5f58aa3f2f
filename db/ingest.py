"""The ingest write path: COPY into staging, insert what is new, roll up only what was inserted.

One transaction per batch:
  1. COPY of span rows and link edges into session-local staging tables, in PostgreSQL's text
     COPY format encoded ahead of time (db/ingest_rows.py's encode(), in the decoder worker
     processes: the collector's main process only forwards the bytes);
  2. one statement: INSERT ... ON CONFLICT DO NOTHING RETURNING, and from the returned
     rows (the ones really inserted) the trace rollups, the tool rollups (tool_rollups) and the
     parent edges — so a redelivered span is stored once and counted once; the inserted model
     calls are kept aside (stage_calls), the upserted traces too (stage_touched);
  3. de-duplication of model calls recorded twice by stacked instrumentations
     (db/ingest_dedup.py, core/model_call_dedup.py): which spans of the touched traces count;
  4. one statement: the spans whose marking changes are marked in span_duplicates (guarded by
     the stored value), the `traces` totals corrected by what those marks take away or give back, and the
     model-call rollups (usage_rollups, and provider_rollups: the same without service and agent)
     written from the kept-aside calls that count plus the same corrections — so tokens, cost and calls count each model call once;
  5. commit. The caller acknowledges the spans only after this returns.

This is the one place that speaks psycopg directly: SQLAlchemy has no COPY.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import psycopg

from core.latency import BOUNDS_NS, BUCKETS
from core.span import MODEL_CALL_CATEGORIES, PARENT

from db.ingest_dedup import FACTS_SQL, Changes, changes, sql_list
# The rows and their COPY encoding (pure, imported by the decoder workers), re-exported here.
from db.ingest_rows import Encoded, edge_rows, encode, retry_kind, span_row  # noqa: F401

STAGE_SPAN_COLUMNS = (
    ("project_id", "int8"), ("trace_id", "bytea"), ("span_id", "bytea"), ("parent_span_id", "bytea"),
    ("name", "text"), ("kind", "int2"), ("category", "text"), ("operation", "text"),
    ("start_ns", "int8"), ("end_ns", "int8"), ("status", "text"), ("status_message", "text"),
    ("error_type", "text"), ("error_class", "text"), ("service_name", "text"), ("agent_name", "text"),
    ("tool_name", "text"), ("provider", "text"), ("request_model", "text"), ("response_model", "text"),
    ("input_tokens", "int8"), ("output_tokens", "int8"), ("cache_read_tokens", "int8"),
    ("cache_write_tokens", "int8"), ("reasoning_tokens", "int8"),
    ("cost_usd", "numeric"), ("cost_source", "text"), ("reported_cost_usd", "numeric"),
    ("session_id", "text"), ("user_id", "text"), ("input", "text"), ("output", "text"),
    # JSON travels as text and is parsed once, by the INSERT.
    ("attributes", "text"), ("events", "text"), ("links", "text"), ("resource", "text"), ("scope", "text"),
    ("retry_kind", "text"), ("response_id", "text"),
)
STAGE_EDGE_COLUMNS = (
    ("project_id", "int8"), ("trace_id", "bytea"), ("span_id", "bytea"), ("relation", "text"),
    ("linked_trace_id", "bytea"), ("linked_span_id", "bytea"),
)

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_spans ({span_cols}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_edges ({edge_cols}) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_touched (project_id int8, trace_id bytea, start_time timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_calls (
    project_id int8, trace_id bytea, span_id bytea, hour timestamptz, service text, provider text,
    request_model text, response_model text, agent text, error_key text, status text, retry_kind text,
    duration_ns int8, b int4, input_tokens int8, output_tokens int8, cache_read_tokens int8,
    cache_write_tokens int8, reasoning_tokens int8, cost_usd numeric, cost_source text) ON COMMIT DELETE ROWS;
""".format(
    span_cols=", ".join(f"{name} {typ}" for name, typ in STAGE_SPAN_COLUMNS),
    edge_cols=", ".join(f"{name} {typ}" for name, typ in STAGE_EDGE_COLUMNS),
)

_TS = "(timestamptz 'epoch' + ({col} / 1000) * interval '1 microsecond')"
_MODEL = "COALESCE(response_model, request_model)"
_MODEL_CALL = f"category IN {sql_list(MODEL_CALL_CATEGORIES)}"
# Rollup key of the outcome: '' when the span did not fail.
_ERROR_KEY = "CASE WHEN status = 'error' THEN COALESCE(error_class, 'unknown') ELSE '' END"
# core.latency bucket of each duration: exact integer comparisons, same as bucket_index().
_BUCKET = f"width_bucket(duration_ns, '{{{','.join(map(str, BOUNDS_NS))}}}'::int8[])"
# A dense histogram of one group, and the element-wise sum used on conflict (1-based arrays).
_HISTOGRAM = "ARRAY[" + ", ".join(f"count(*) FILTER (WHERE b = {i})" for i in range(BUCKETS)) + "]::int8[]"


# Rollup sums saturate at the column's limit instead of failing the whole batch on overflow
# (hostile or garbage counts): computed in numeric, then capped.
_BIGINT_MAX = "9223372036854775807"
_INT_MAX = "2147483647"
_MONEY_MAX = "9999999999.9999999999"  # numeric(20,10)


def _sat_sum(column: str, cap: str = _BIGINT_MAX) -> str:
    return f"LEAST(COALESCE(sum({column}), 0), {cap})"


def _sat_add(table: str, column: str, cap: str = _BIGINT_MAX) -> str:
    return f"{column} = LEAST({table}.{column}::numeric + excluded.{column}, {cap})"


def _merge_histograms(table: str) -> str:
    return "ARRAY[" + ", ".join(
        f"{table}.latency_buckets[{i}] + excluded.latency_buckets[{i}]" for i in range(1, BUCKETS + 1)) + "]"


def _union(column: str) -> str:
    # Distinct union of two text arrays, bounded so a hostile trace cannot grow a row without limit.
    return (f"ARRAY(SELECT DISTINCT x FROM unnest(traces.{column} || excluded.{column}) AS x "
            f"WHERE x IS NOT NULL ORDER BY x LIMIT 64)")


_WRITE_SQL = f"""
WITH ins AS (
    INSERT INTO spans (
        project_id, trace_id, span_id, parent_span_id, name, kind, category, operation,
        start_time, end_time, start_ns, duration_ns, status, status_message, error_type, error_class,
        service_name, agent_name, tool_name, provider, request_model, response_model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, cost_source, reported_cost_usd, session_id, user_id, input, output,
        attributes, events, links, resource, scope, retry_kind, response_id)
    SELECT
        project_id, trace_id, span_id, parent_span_id, name, kind, category, operation,
        {_TS.format(col="start_ns")}, {_TS.format(col="end_ns")}, start_ns, end_ns - start_ns,
        status, status_message, error_type, error_class,
        service_name, agent_name, tool_name, provider, request_model, response_model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, cost_source, reported_cost_usd, session_id, user_id, input, output,
        attributes::jsonb, events::jsonb, links::jsonb, resource::jsonb, scope, retry_kind, response_id
    FROM stage_spans
    ON CONFLICT DO NOTHING
    RETURNING project_id, trace_id, span_id, parent_span_id, name, category, start_time, end_time,
        duration_ns, status, service_name, agent_name, provider, request_model, response_model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, cost_source, session_id, user_id, tool_name, error_class, retry_kind
),
calls AS (
    -- Model and tool calls only, with their rollup keys and latency bucket.
    SELECT project_id, trace_id, span_id, date_trunc('hour', start_time, 'UTC') AS hour, category,
        COALESCE(service_name, '') AS service, COALESCE(agent_name, '') AS agent, {_ERROR_KEY} AS error_key,
        status, retry_kind, duration_ns, {_BUCKET} AS b, provider, request_model, response_model, tool_name,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source
    FROM ins WHERE {_MODEL_CALL} OR category = 'tool'
),
per_trace AS (
    SELECT project_id, trace_id,
        (array_agg(span_id ORDER BY start_time) FILTER (WHERE parent_span_id IS NULL))[1] AS root_span_id,
        (array_agg(name ORDER BY start_time) FILTER (WHERE parent_span_id IS NULL))[1] AS root_name,
        COALESCE((array_agg(service_name ORDER BY start_time) FILTER (WHERE parent_span_id IS NULL))[1],
                 min(service_name)) AS service_name,
        min(start_time) AS start_time, max(end_time) AS end_time,
        count(*) AS span_count,
        count(*) FILTER (WHERE status = 'error') AS error_count,
        count(*) FILTER (WHERE {_MODEL_CALL}) AS llm_calls,
        count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_calls,
        {_sat_sum('input_tokens')} AS input_tokens,
        {_sat_sum('output_tokens')} AS output_tokens,
        {_sat_sum('cache_read_tokens')} AS cache_read_tokens,
        {_sat_sum('cache_write_tokens')} AS cache_write_tokens,
        {_sat_sum('reasoning_tokens')} AS reasoning_tokens,
        {_sat_sum('cost_usd', _MONEY_MAX)} AS cost_usd,
        COALESCE(array_agg(DISTINCT agent_name) FILTER (WHERE agent_name IS NOT NULL), '{{}}') AS agents,
        COALESCE(array_agg(DISTINCT {_MODEL}) FILTER (WHERE {_MODEL} IS NOT NULL), '{{}}') AS models,
        COALESCE(array_agg(DISTINCT service_name) FILTER (WHERE service_name IS NOT NULL), '{{}}') AS services,
        min(session_id) AS session_id, min(user_id) AS user_id
    FROM ins GROUP BY project_id, trace_id
),
up_traces AS (
    INSERT INTO traces (
        project_id, trace_id, root_span_id, root_name, service_name, start_time, end_time,
        span_count, error_count, llm_calls, unpriced_calls, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, agents, models, services,
        session_id, user_id, updated_at)
    SELECT project_id, trace_id, root_span_id, root_name, service_name, start_time, end_time,
        span_count, error_count, llm_calls, unpriced_calls, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
        agents[1:64], models[1:64], services[1:64], session_id, user_id,
        -- Read here, not in DO UPDATE SET: Citus runs only IMMUTABLE functions there.
        clock_timestamp()
    FROM per_trace ORDER BY project_id, trace_id
    ON CONFLICT (project_id, trace_id) DO UPDATE SET
        -- The first root to arrive names the trace; until then the trace has no root.
        service_name = CASE WHEN traces.root_span_id IS NULL AND excluded.root_span_id IS NOT NULL
                            THEN excluded.service_name ELSE COALESCE(traces.service_name, excluded.service_name) END,
        root_span_id = COALESCE(traces.root_span_id, excluded.root_span_id),
        root_name = COALESCE(traces.root_name, excluded.root_name),
        start_time = LEAST(traces.start_time, excluded.start_time),
        end_time = GREATEST(traces.end_time, excluded.end_time),
        {_sat_add('traces', 'span_count', _INT_MAX)},
        {_sat_add('traces', 'error_count', _INT_MAX)},
        {_sat_add('traces', 'llm_calls', _INT_MAX)},
        {_sat_add('traces', 'unpriced_calls', _INT_MAX)},
        {_sat_add('traces', 'input_tokens')},
        {_sat_add('traces', 'output_tokens')},
        {_sat_add('traces', 'cache_read_tokens')},
        {_sat_add('traces', 'cache_write_tokens')},
        {_sat_add('traces', 'reasoning_tokens')},
        {_sat_add('traces', 'cost_usd', _MONEY_MAX)},
        agents = {_union("agents")},
        models = {_union("models")},
        services = {_union("services")},
        session_id = COALESCE(traces.session_id, excluded.session_id),
        user_id = COALESCE(traces.user_id, excluded.user_id),
        -- Strictly increasing per trace, even across writers whose transactions started out of
        -- order: the attributor compares it with attributed_at to know what changed. (The
        -- microsecond is added in UTC: timestamptz + interval is only STABLE, and Citus runs no
        -- such function in DO UPDATE SET.)
        updated_at = GREATEST(excluded.updated_at,
                              ((traces.updated_at AT TIME ZONE 'UTC') + interval '1 microsecond') AT TIME ZONE 'UTC')
    RETURNING project_id, trace_id, start_time
),
touched AS (
    -- With the trace's start after this batch: the de-dup read reads no older partition (ingest_dedup.py).
    INSERT INTO stage_touched SELECT project_id, trace_id, start_time FROM up_traces RETURNING 1
),
kept_calls AS (
    INSERT INTO stage_calls
    SELECT project_id, trace_id, span_id, hour, service, COALESCE(provider, ''), COALESCE(request_model, ''),
        COALESCE(response_model, ''), agent, error_key, status, retry_kind, duration_ns, b, input_tokens,
        output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source
    FROM calls WHERE category <> 'tool'
    RETURNING 1
),
up_tools AS (
    INSERT INTO tool_rollups (
        project_id, hour, service, agent, tool, error_class, calls, errors, retries, duration_ns, latency_buckets)
    SELECT project_id, hour, service, agent, COALESCE(tool_name, ''), error_key,
        count(*), count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE retry_kind IS NOT NULL),
        {_sat_sum('duration_ns')}, {_HISTOGRAM}
    FROM calls WHERE category = 'tool'
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (project_id, hour, service, agent, tool, error_class) DO UPDATE SET
        calls = tool_rollups.calls + excluded.calls,
        errors = tool_rollups.errors + excluded.errors,
        retries = tool_rollups.retries + excluded.retries,
        {_sat_add('tool_rollups', 'duration_ns')},
        latency_buckets = {_merge_histograms("tool_rollups")}
    RETURNING 1
),
parent_edges AS (
    INSERT INTO span_edges (project_id, trace_id, span_id, relation, linked_trace_id, linked_span_id)
    SELECT project_id, trace_id, span_id, '{PARENT}', trace_id, parent_span_id
    FROM ins WHERE parent_span_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM touched), (SELECT count(*) FROM kept_calls),
    (SELECT count(*) FROM up_tools)
"""

# A span's share of the model-call rollups, signed: +1 counts it, -1 takes it back out.
def _signed_sum(column: str, cap: str = _BIGINT_MAX) -> str:
    return f"LEAST(COALESCE(sum(sign * {column}), 0), {cap})"


def _signed_count(condition: str = "true") -> str:
    return f"COALESCE(sum(sign) FILTER (WHERE {condition}), 0)"


_SIGNED_HISTOGRAM = "ARRAY[" + ", ".join(_signed_count(f"b = {i}") for i in range(BUCKETS)) + "]::int8[]"
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def _fix(column: str, cap: str = _BIGINT_MAX) -> str:
    return f"{column} = LEAST(t.{column}::numeric + f.{column}, {cap})"


def _call_rollup_update(table: str) -> str:
    """DO UPDATE SET of a model-call rollup (usage_rollups, provider_rollups): every measure added."""
    return ",\n        ".join([
        *(f"{c} = {table}.{c} + excluded.{c}" for c in ("calls", "errors", "retries", "fallbacks", "unpriced_calls")),
        *(_sat_add(table, c) for c in _TOKENS), _sat_add(table, "cost_usd", _MONEY_MAX), _sat_add(table, "duration_ns"),
        f"latency_buckets = {_merge_histograms(table)}"])


# Implied by each join below, and said again for Citus: so that it sends these statements only to
# the shards that hold the changed traces (none when nothing changed), not to every shard.
_ONLY_CHANGED = " AND {t}.trace_id = ANY(%(chg_trace)s::bytea[])"


# Step 4 (see the module docstring); the changes come from db.ingest_dedup.changes().
_USAGE_SQL = f"""
WITH chg AS (
    SELECT * FROM unnest(%(chg_project)s::int8[], %(chg_trace)s::bytea[], %(chg_span)s::bytea[],
        %(chg_old)s::bytea[], %(chg_new)s::bytea[], %(chg_reason)s::text[])
        AS c(project_id, trace_id, span_id, old_of, new_of, reason)
),
-- Each change is guarded by the stored value it was decided from: a mark changes once, and only
-- what these statements really changed (their RETURNING) corrects the totals.
added AS (  -- counted until now: taken out (-1)
    INSERT INTO span_duplicates (project_id, trace_id, span_id, duplicate_of, reason)
    SELECT project_id, trace_id, span_id, new_of, reason FROM chg WHERE old_of IS NULL ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING project_id, trace_id, span_id, -1 AS sign
),
moved AS (  -- counted in another span of its group: no change to any total
    UPDATE span_duplicates d SET duplicate_of = c.new_of, reason = c.reason FROM chg c
    WHERE d.project_id = c.project_id AND d.trace_id = c.trace_id AND d.span_id = c.span_id
        AND c.new_of IS NOT NULL AND d.duplicate_of = c.old_of{_ONLY_CHANGED.format(t="d")}
    RETURNING 1
),
cleared AS (  -- counts again: put back (+1)
    DELETE FROM span_duplicates d USING chg c
    WHERE d.project_id = c.project_id AND d.trace_id = c.trace_id AND d.span_id = c.span_id
        AND c.new_of IS NULL AND d.duplicate_of = c.old_of{_ONLY_CHANGED.format(t="d")}
    RETURNING d.project_id, d.trace_id, d.span_id, 1 AS sign
),
fixes AS (
    SELECT s.project_id, s.trace_id, s.span_id, s.start_time, s.service_name, s.provider, s.request_model,
        s.response_model, s.agent_name, s.status, s.error_class, s.retry_kind, s.duration_ns,
        s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens,
        s.cost_usd, s.cost_source, m.sign
    FROM (SELECT * FROM added UNION ALL SELECT * FROM cleared) m
    JOIN spans s ON s.project_id = m.project_id AND s.trace_id = m.trace_id AND s.span_id = m.span_id
        {_ONLY_CHANGED.format(t="s")}
),
fix_traces AS (
    UPDATE traces t SET llm_calls = t.llm_calls + f.calls, unpriced_calls = t.unpriced_calls + f.unpriced,
        {", ".join(_fix(c) for c in _TOKENS)}, {_fix("cost_usd", _MONEY_MAX)}
    FROM (SELECT project_id, trace_id, sum(sign) AS calls, {_signed_count("cost_source = 'unpriced'")} AS unpriced,
              {", ".join(f"{_signed_sum(c)} AS {c}" for c in _TOKENS)},
              {_signed_sum("cost_usd", _MONEY_MAX)} AS cost_usd
          FROM fixes GROUP BY 1, 2 ORDER BY 1, 2) f
    WHERE t.project_id = f.project_id AND t.trace_id = f.trace_id{_ONLY_CHANGED.format(t="t")}
    RETURNING 1
),
counted AS (
    -- This batch's model calls that still count, and the corrections of spans stored before it
    -- (a call of this batch that does not count is simply left out).
    SELECT project_id, hour, service, provider, request_model, response_model, agent, error_key, status,
        retry_kind, duration_ns, b, {", ".join(_TOKENS)}, cost_usd, cost_source, 1 AS sign
    FROM stage_calls k
    WHERE NOT EXISTS (SELECT 1 FROM fixes f WHERE f.project_id = k.project_id AND f.trace_id = k.trace_id
                      AND f.span_id = k.span_id)
    UNION ALL
    SELECT project_id, date_trunc('hour', start_time, 'UTC'), COALESCE(service_name, ''), COALESCE(provider, ''),
        COALESCE(request_model, ''), COALESCE(response_model, ''), COALESCE(agent_name, ''), {_ERROR_KEY}, status,
        retry_kind, duration_ns, {_BUCKET}, {", ".join(_TOKENS)}, cost_usd, cost_source, sign
    FROM fixes f
    WHERE NOT EXISTS (SELECT 1 FROM stage_calls k WHERE k.project_id = f.project_id AND k.trace_id = f.trace_id
                      AND k.span_id = f.span_id)
),
up_usage AS (
    INSERT INTO usage_rollups (
        project_id, hour, service, provider, request_model, response_model, agent, error_class,
        calls, errors, retries, fallbacks, unpriced_calls,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, duration_ns, latency_buckets)
    SELECT project_id, hour, service, provider, request_model, response_model, agent, error_key,
        sum(sign), {_signed_count("status = 'error'")}, {_signed_count("retry_kind = 'retry'")},
        {_signed_count("retry_kind = 'fallback'")}, {_signed_count("cost_source = 'unpriced'")},
        {", ".join(_signed_sum(c) for c in _TOKENS)}, {_signed_sum('cost_usd', _MONEY_MAX)},
        {_signed_sum('duration_ns')}, {_SIGNED_HISTOGRAM}
    FROM counted
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (project_id, hour, service, provider, request_model, response_model, agent, error_class)
    DO UPDATE SET
        {_call_rollup_update("usage_rollups")}
    RETURNING 1
),
up_provider AS (
    -- The same counted calls and corrections without service and agent (provider_rollups).
    INSERT INTO provider_rollups (
        project_id, hour, provider, request_model, response_model, error_class,
        calls, errors, retries, fallbacks, unpriced_calls,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, duration_ns, latency_buckets)
    SELECT project_id, hour, provider, request_model, response_model, error_key,
        sum(sign), {_signed_count("status = 'error'")}, {_signed_count("retry_kind = 'retry'")},
        {_signed_count("retry_kind = 'fallback'")}, {_signed_count("cost_source = 'unpriced'")},
        {", ".join(_signed_sum(c) for c in _TOKENS)}, {_signed_sum('cost_usd', _MONEY_MAX)},
        {_signed_sum('duration_ns')}, {_SIGNED_HISTOGRAM}
    FROM counted
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (project_id, hour, provider, request_model, response_model, error_class)
    DO UPDATE SET
        {_call_rollup_update("provider_rollups")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM moved) + (SELECT count(*) FROM cleared),
    (SELECT count(*) FROM fix_traces), (SELECT count(*) FROM up_usage), (SELECT count(*) FROM up_provider)
"""

_EDGE_SQL = """
INSERT INTO span_edges (project_id, trace_id, span_id, relation, linked_trace_id, linked_span_id)
SELECT DISTINCT project_id, trace_id, span_id, relation, linked_trace_id, linked_span_id FROM stage_edges
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class WriteResult:
    received: int
    inserted: int
    traces_touched: int


_CITUS = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"
_DISTRIBUTED = "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'traces'::regclass)"
_ON_CITUS: weakref.WeakKeyDictionary[psycopg.Connection, bool] = weakref.WeakKeyDictionary()


def prepare_connection(conn: psycopg.Connection) -> None:
    """Once per writer connection: staging tables and a UTC session."""
    conn.execute("SET TIME ZONE 'UTC'")
    # The batch statements are big (high estimated cost) but cheap to run: JIT compiling them, where
    # the server has JIT, took ~300 ms per batch against ~10 ms of execution.
    conn.execute("SET jit = off")
    # The distributed layout (causeline migrate --citus), not only the extension.
    _ON_CITUS[conn] = bool(conn.execute(_CITUS).fetchone()[0] and conn.execute(_DISTRIBUTED).fetchone()[0])
    if not _ON_CITUS[conn]:
        # The one statement with parameters (the rollups', _USAGE_SQL) was planned again on every
        # batch (4.6 ms of 9 for a small request); its generic plan is as good. Not on Citus, which
        # prunes shards from the parameters' values.
        conn.execute("SET plan_cache_mode = force_generic_plan")
    if _ON_CITUS[conn]:
        # Citus: each shard's rows of a batch in shard order over one connection per worker, so
        # concurrent writers take their locks in the same order (in parallel they deadlock
        # across workers, which Citus only detects after seconds).
        conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
    conn.execute(_STAGE_DDL)
    conn.commit()
    if _ON_CITUS[conn]:
        from db.ingest_citus import install  # the write path's functions on the workers

        install(conn)


def replan(conn: psycopg.Connection) -> None:
    """Drops the connection's cached plans: its prepared statements are planned again on their next
    use, for the tables as they are now. A plan cached while a partition was empty or never analyzed
    can read every span after a trace's start instead of the trace's own (the de-duplication read
    on (project_id, start_time) rather than the primary key); no analyze ever arrives to correct it
    when the partition fills faster than autovacuum looks (see collector/writer.py)."""
    conn.execute("DISCARD PLANS")
    conn.commit()


def write_batch(conn: psycopg.Connection, span_rows: Sequence[tuple], edges: Sequence[tuple]) -> WriteResult:
    """Write and commit rows (see write_encoded)."""
    return write_encoded(conn, [encode(span_rows, edges)])


def write_encoded(conn: psycopg.Connection, batch: Sequence[Encoded]) -> WriteResult:
    """Write and commit one batch. On any error the transaction is rolled back and the error raised:
    nothing of the batch is acknowledged, and a redelivery is safe."""
    try:
        with conn.cursor() as cur:
            _copy(cur, _COPY_SPANS, [item.spans for item in batch])
            has_edges = any(item.edges for item in batch)
            if has_edges:
                _copy(cur, _COPY_EDGES, [item.edges for item in batch])
            if _ON_CITUS.get(conn):
                from db.ingest_citus import write_staged  # the same statements, cut per shard

                inserted, traces_touched = write_staged(cur)
                conn.commit()
                return WriteResult(sum(item.count for item in batch), inserted, traces_touched)
            cur.execute(_WRITE_SQL)
            inserted, traces_touched, calls_kept, _ = cur.fetchone()
            marks = Changes()
            if traces_touched:
                cur.execute(FACTS_SQL)
                marks = changes(cur.fetchall())
            if calls_kept or len(marks):
                cur.execute(_USAGE_SQL, marks.params())
            if has_edges:
                cur.execute(_EDGE_SQL)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return WriteResult(sum(item.count for item in batch), inserted, traces_touched)


def _copy_statement(table: str, columns) -> str:
    return f"COPY {table} ({', '.join(name for name, _ in columns)}) FROM STDIN"


_COPY_SPANS = _copy_statement("stage_spans", STAGE_SPAN_COLUMNS)
_COPY_EDGES = _copy_statement("stage_edges", STAGE_EDGE_COLUMNS)


def _copy(cur: psycopg.Cursor, statement: str, chunks: Iterable[bytes]) -> None:
    with cur.copy(statement) as copy:
        for chunk in chunks:
            if chunk:
                copy.write(chunk)
