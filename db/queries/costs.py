"""Costs across traces, grouped, from the rollups (and spans for the window's partial hours).

- model, provider, agent, service, day, hour: `usage_rollups` (model calls; `provider_rollups`,
  the same without service and agent, where neither groups nor filters need them). `model` is
  the requested model (the served model when no request model was recorded): a call that
  failed before any model answered and one served by a dated version of the same request
  are one row; the served models are listed inside it (`served`).
- tool: `tool_rollups`. Tool spans carry no model cost (core.pricing prices model calls
  only), so a tool group reports calls and errors with tokens and cost null; model calls
  made while a tool ran count under their model, agent and service.
- session, user: the `traces` rollup (one row per trace holds its session, user, tokens
  and cost); a trace counts entirely in the hour it started.

Windows are exact: the whole hours inside [since, until) come from the hourly rollups, the
partial hours at either edge from the same calls in `spans` (index on project, start time;
at most two hours of spans), summed the same way the batch writer sums them: a model call
recorded twice by stacked instrumentations (marked in span_duplicates) counts once.

Unpriced model calls are counted in `unpriced_calls` and excluded from `cost_usd`; a group
whose every call is unpriced has cost null, never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.span import MODEL_CALL_CATEGORIES
from core.window import split_hours
from db.queries.fleet import Filters

_MODEL_CALL = "category IN (" + ", ".join(f"'{c}'" for c in MODEL_CALL_CATEGORIES) + ")"
GROUPS = ("model", "provider", "agent", "tool", "service", "session", "user", "day", "hour")
MAX_GROUPS = 1000

_USAGE_KEYS = {
    "model": "COALESCE(NULLIF(request_model, ''), response_model)",
    "provider": "provider",
    "agent": "agent",
    "service": "service",
    "day": "date_trunc('day', hour, 'UTC')",
    "hour": "hour",
}
_TIME_GROUPS = ("day", "hour")


@dataclass
class CostGroup:
    key: str | datetime | None
    calls: int
    errors: int
    unpriced_calls: int
    retries: int | None
    fallbacks: int | None
    traces: int | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: Decimal | None  # None: nothing priced (all unpriced, or tool calls)
    served: dict[str, int] | None = None  # group_by=model: served model -> calls


@dataclass
class CostReport:
    group_by: str
    groups: list[CostGroup]
    groups_total: int
    total: CostGroup
    source: str  # the table that answered the whole hours


def _cost(cost: Decimal, calls: int, unpriced: int) -> Decimal | None:
    return None if calls > 0 and unpriced >= calls else cost


def costs(session: Session, filters: Filters, group_by: str, *, limit: int = 100) -> CostReport:
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    if group_by in ("session", "user"):
        groups, groups_total, total = _trace_rows(session, filters, group_by, limit)
        return CostReport(group_by, groups, groups_total, total, "traces")
    if group_by == "tool":
        table = "tool_rollups"
        rows = _tool_rows(session, filters)
    else:
        table = _usage_table(filters, group_by)
        rows = _usage_rows(session, filters, group_by, table)
    total = _total(rows, group_by)
    if group_by in _TIME_GROUPS:
        ordered = sorted(rows, key=lambda g: g.key)
    else:  # the most expensive first; unpriced/cost-less groups by their call count
        ordered = sorted(rows, key=lambda g: (-(g.cost_usd or 0), -g.calls, str(g.key)))
    return CostReport(group_by, ordered[:limit], len(rows), total, table)


# The rollups' columns, and the same sums per span for the partial hours (ingest's `calls`).
_USAGE_SUMS = ("calls", "errors", "retries", "fallbacks", "unpriced_calls", "input_tokens", "output_tokens",
               "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd")
_USAGE_FROM_SPANS = f"""
    SELECT date_trunc('hour', start_time, 'UTC') AS hour, COALESCE(service_name, '') AS service,
        COALESCE(provider, '') AS provider, COALESCE(request_model, '') AS request_model,
        COALESCE(response_model, '') AS response_model, COALESCE(agent_name, '') AS agent,
        1 AS calls, (status = 'error')::int AS errors, (COALESCE(retry_kind, '') = 'retry')::int AS retries,
        (COALESCE(retry_kind, '') = 'fallback')::int AS fallbacks,
        (COALESCE(cost_source, '') = 'unpriced')::int AS unpriced_calls,
        COALESCE(input_tokens, 0) AS input_tokens, COALESCE(output_tokens, 0) AS output_tokens,
        COALESCE(cache_read_tokens, 0) AS cache_read_tokens, COALESCE(cache_write_tokens, 0) AS cache_write_tokens,
        COALESCE(reasoning_tokens, 0) AS reasoning_tokens, COALESCE(cost_usd, 0) AS cost_usd
    FROM spans s WHERE project_id = :project_id AND {_MODEL_CALL} AND ({{edges}}) AND NOT EXISTS (
        SELECT 1 FROM span_duplicates d
        WHERE d.project_id = s.project_id AND d.trace_id = s.trace_id AND d.span_id = s.span_id)"""
_TOOL_FROM_SPANS = """
    SELECT date_trunc('hour', start_time, 'UTC') AS hour, COALESCE(service_name, '') AS service,
        COALESCE(agent_name, '') AS agent, COALESCE(tool_name, '') AS tool, 1 AS calls,
        (status = 'error')::int AS errors, (retry_kind IS NOT NULL)::int AS retries
    FROM spans WHERE project_id = :project_id AND category = 'tool' AND ({edges})"""


def _source(filters: Filters, table: str, columns: str, from_spans: str) -> tuple[str, dict]:
    """The window's rows: whole hours from `table`, partial edge hours from spans (same columns),
    narrowed by the dimension filters."""
    whole, edges = split_hours(filters.since, filters.until)
    params: dict = {"project_id": filters.project_id}
    parts = []
    if whole:
        params.update(h0=whole[0], h1=whole[1])
        parts.append(f"SELECT {columns} FROM {table} WHERE project_id = :project_id AND hour >= :h0 AND hour < :h1")
    if edges:
        ranges = []
        for i, (start, end) in enumerate(edges):
            params.update({f"e{i}s": start, f"e{i}u": end})
            ranges.append(f"(start_time >= :e{i}s AND start_time < :e{i}u)")
        parts.append(f"SELECT {columns} FROM ({from_spans.format(edges=' OR '.join(ranges))}) s")
    clauses, dim_params = filters.dimension_where()
    where = " AND ".join(clauses) or "true"
    return f"(SELECT * FROM ({' UNION ALL '.join(parts)}) w WHERE {where}) src", {**params, **dim_params}


def _usage_table(filters: Filters, group_by: str) -> str:
    # The narrower rollup when neither the grouping nor a filter needs service or agent.
    return "usage_rollups" if group_by in ("service", "agent") else filters.usage_table()


def _usage_rows(session: Session, filters: Filters, group_by: str, table: str) -> list[CostGroup]:
    dimensions = ("hour, service, provider, request_model, response_model, agent, " if table == "usage_rollups"
                  else "hour, provider, request_model, response_model, ")
    source, params = _source(filters, table, dimensions + ", ".join(_USAGE_SUMS), _USAGE_FROM_SPANS)
    key = _USAGE_KEYS[group_by]
    # group_by=model: one row per (requested, served) pair, merged below into one group per
    # requested model that lists what served it.
    served = "response_model" if group_by == "model" else "''"
    result = session.execute(text(f"""
        SELECT {key} AS key, {served} AS served, {", ".join(f"sum({c})" for c in _USAGE_SUMS)}
        FROM {source} GROUP BY 1, 2"""), params)
    groups: dict = {}
    for (key_value, served_model, calls, errors, retries, fallbacks, unpriced, t_in, t_out, t_cr, t_cw, t_r,
         cost) in result:
        g = groups.get(key_value)
        if g is None:
            g = groups[key_value] = CostGroup(key_value, 0, 0, 0, 0, 0, None, 0, 0, 0, 0, 0, Decimal(0),
                                              {} if group_by == "model" else None)
        g.calls += int(calls)
        g.errors += int(errors)
        g.unpriced_calls += int(unpriced)
        g.retries += int(retries)
        g.fallbacks += int(fallbacks)
        g.input_tokens += int(t_in)
        g.output_tokens += int(t_out)
        g.cache_read_tokens += int(t_cr)
        g.cache_write_tokens += int(t_cw)
        g.reasoning_tokens += int(t_r)
        g.cost_usd += cost
        if g.served is not None and served_model:
            g.served[served_model] = g.served.get(served_model, 0) + int(calls)
    for g in groups.values():
        g.cost_usd = _cost(g.cost_usd, g.calls, g.unpriced_calls)
    return list(groups.values())


def _tool_rows(session: Session, filters: Filters) -> list[CostGroup]:
    filters.tool_where()  # refuses the model and provider filters
    source, params = _source(filters, "tool_rollups", "hour, service, agent, tool, calls, errors, retries",
                             _TOOL_FROM_SPANS)
    result = session.execute(text(f"SELECT tool, sum(calls), sum(errors), sum(retries) FROM {source} GROUP BY 1"),
                             params)
    return [CostGroup(tool, int(calls), int(errors), 0, int(retries), None, None,
                      None, None, None, None, None, None) for tool, calls, errors, retries in result]


def _trace_rows(session: Session, filters: Filters, group_by: str, limit: int) -> tuple[list[CostGroup], int, CostGroup]:
    """Sessions/users can number in the tens of thousands: sorted and cut in SQL; totals separately."""
    where, params = filters.traces_where()
    column = "session_id" if group_by == "session" else "user_id"
    sums = ("count(*), sum(llm_calls), sum(error_count), sum(unpriced_calls), sum(input_tokens), sum(output_tokens), "
            "sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(cost_usd)")
    result = session.execute(text(f"""
        SELECT {column}, {sums}, count(*) OVER ()
        FROM traces WHERE {where} GROUP BY 1
        ORDER BY sum(cost_usd) DESC, sum(llm_calls) DESC, 1 LIMIT :limit"""), {**params, "limit": limit})
    groups, groups_total = [], 0
    for key_value, *values, groups_total in result:
        groups.append(_trace_group(key_value, values))
    total = _trace_group(None, session.execute(text(f"SELECT {sums} FROM traces WHERE {where}"), params).one())
    return groups, groups_total, total


def _trace_group(key_value, values) -> CostGroup:
    traces, calls, errors, unpriced, t_in, t_out, t_cr, t_cw, t_r, cost = (v if v is not None else 0 for v in values)
    return CostGroup(key_value, int(calls), int(errors), int(unpriced), None, None, int(traces),
                     int(t_in), int(t_out), int(t_cr), int(t_cw), int(t_r), _cost(Decimal(cost), calls, unpriced))


def _total(rows: list[CostGroup], group_by: str) -> CostGroup:
    def add(attr: str) -> int | None:
        values = [getattr(g, attr) for g in rows]
        if not values:
            return None if group_by == "tool" and attr.endswith("tokens") else 0
        return None if any(v is None for v in values) else sum(values)

    calls = sum(g.calls for g in rows)
    unpriced = sum(g.unpriced_calls for g in rows)
    priced = [g.cost_usd for g in rows if g.cost_usd is not None]
    if group_by == "tool":
        cost = None
    else:
        cost = _cost(sum(priced, Decimal(0)), calls, unpriced)
    return CostGroup(
        None, calls, sum(g.errors for g in rows), unpriced, add("retries"), add("fallbacks"), add("traces"),
        add("input_tokens"), add("output_tokens"), add("cache_read_tokens"), add("cache_write_tokens"),
        add("reasoning_tokens"), cost)
