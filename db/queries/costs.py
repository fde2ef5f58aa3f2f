"""Costs across traces, grouped, from the rollups only.

- model, provider, agent, service, day, hour: `usage_rollups` (model calls). `model` is
  the served model, else the requested one (what was billed).
- tool: `tool_rollups`. Tool spans carry no model cost (core.pricing prices model calls
  only), so a tool group reports calls and errors with tokens and cost null; model calls
  made while a tool ran count under their model, agent and service.
- session, user: the `traces` rollup (one row per trace holds its session, user, tokens
  and cost); a trace counts entirely in the hour it started.

Unpriced model calls are counted in `unpriced_calls` and excluded from `cost_usd`; a group
whose every call is unpriced has cost null, never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.queries.fleet import Filters

GROUPS = ("model", "provider", "agent", "tool", "service", "session", "user", "day", "hour")
MAX_GROUPS = 1000

_USAGE_KEYS = {
    "model": "COALESCE(NULLIF(response_model, ''), request_model)",
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


@dataclass
class CostReport:
    group_by: str
    groups: list[CostGroup]
    groups_total: int
    total: CostGroup


def _cost(cost: Decimal, calls: int, unpriced: int) -> Decimal | None:
    return None if calls > 0 and unpriced >= calls else cost


def costs(session: Session, filters: Filters, group_by: str, *, limit: int = 100) -> CostReport:
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    if group_by in ("session", "user"):
        groups, groups_total, total = _trace_rows(session, filters, group_by, limit)
        return CostReport(group_by, groups, groups_total, total)
    if group_by == "tool":
        rows = _tool_rows(session, filters)
    else:
        rows = _usage_rows(session, filters, group_by)
    total = _total(rows, group_by)
    if group_by in _TIME_GROUPS:
        ordered = sorted(rows, key=lambda g: g.key)
    else:  # the most expensive first; unpriced/cost-less groups by their call count
        ordered = sorted(rows, key=lambda g: (-(g.cost_usd or 0), -g.calls, str(g.key)))
    return CostReport(group_by, ordered[:limit], len(rows), total)


def _usage_rows(session: Session, filters: Filters, group_by: str) -> list[CostGroup]:
    where, params = filters.usage_where()
    key = _USAGE_KEYS[group_by]
    result = session.execute(text(f"""
        SELECT {key} AS key, sum(calls), sum(errors), sum(unpriced_calls), sum(retries), sum(fallbacks),
            sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
            sum(reasoning_tokens), sum(cost_usd)
        FROM usage_rollups WHERE {where} GROUP BY 1"""), params)
    groups = []
    for (key_value, calls, errors, unpriced, retries, fallbacks, t_in, t_out, t_cr, t_cw, t_r, cost) in result:
        groups.append(CostGroup(
            key_value, int(calls), int(errors), int(unpriced), int(retries), int(fallbacks), None,
            int(t_in), int(t_out), int(t_cr), int(t_cw), int(t_r), _cost(cost, calls, unpriced)))
    return groups


def _tool_rows(session: Session, filters: Filters) -> list[CostGroup]:
    where, params = filters.tool_where()
    result = session.execute(text(f"""
        SELECT tool, sum(calls), sum(errors), sum(retries) FROM tool_rollups WHERE {where} GROUP BY 1"""), params)
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
