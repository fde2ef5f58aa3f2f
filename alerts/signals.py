"""What an alert rule measures, with the read side's own queries (never restated here).

- failure rate / failed runs: db.queries.failures (`failure_totals`, `failure_groups_by` for a
  step), the runs and root causes /api/failures and the Failures page count;
- error rate / p95 latency: the provider-health series of the usage rollups
  (db.queries.health.fetch_series), windows widened to whole hours like on the Providers page;
- cost: db.queries.costs (exact windows, per agent or user), the Costs page's numbers;
- new root cause: /api/failures' grouping expressions (db.queries.alerts.new_failure_keys);
- anomaly: pages.fleet.anomaly_data, i.e. /api/anomalies;
- served-model change: db.queries.health.served_model_changes.

One evaluation cycle shares a `Memo`: rules asking the same question (same query, window and
filters) run it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy.orm import Session

from core.alerts import Measurement, Rule, breaches, rule_window
from core.latency import quantile_ms
from db.queries.alerts import new_failure_keys
from db.queries.costs import MAX_GROUPS as MAX_COST_GROUPS, costs
from db.queries.failures import MAX_GROUPS, failure_groups_by, failure_totals
from db.queries.health import Point, fetch_series, served_model_changes
from db.queries.overview import recent_failed_runs
from pages.fleet import anomaly_data, fleet_filters

EXAMPLES = 3


class Memo:
    """Results of one cycle's queries by their arguments."""

    def __init__(self) -> None:
        self._done: dict = {}
        self.queries = 0

    def __call__(self, key: tuple, compute: Callable):
        if key not in self._done:
            self.queries += 1
            self._done[key] = compute()
        return self._done[key]


def _hex(traces: list[bytes]) -> list[str]:
    return [t.hex() for t in traces[:EXAMPLES]]


def measure(session: Session, project_id: int, rule: Rule, now: datetime,
            memo: Memo | None = None) -> tuple[datetime, datetime, list[Measurement]]:
    """(since, until, measurements) of one rule at `now`; the window is the one really read."""
    memo = memo or Memo()
    since, until = rule_window(rule, now)
    return MEASURES[rule.kind](session, project_id, rule, since, until, memo)


def _failures(session, project_id, rule, since, until, memo):
    agent, step = rule.params.get("agent"), rule.params.get("step")
    totals = memo(("failure_totals", project_id, since, until, agent),
                  lambda: failure_totals(session, project_id, since=since, until=until, agent=agent))
    failed, examples = totals.failed_runs, None
    if step:
        groups = memo(("failure_groups", project_id, since, until, "step"),
                      lambda: failure_groups_by(session, project_id, ["step"], since=since, until=until,
                                                limit=MAX_GROUPS, total_failed_runs=totals.failed_runs)["step"])
        group = next((g for g in groups if g.key == step), None)
        failed = group.failed_runs if group else 0
        examples = _hex(group.example_traces) if group else []
    value = failed if rule.kind == "failed_runs" else (failed / totals.runs if totals.runs else None)
    evidence = {"runs": totals.runs, "failed_runs": failed, "pending_attribution": totals.pending_traces}
    m = Measurement("", value, totals.runs, evidence)
    if breaches(rule, m) and examples is None:  # example runs only for a notification
        if agent:
            groups = failure_groups_by(session, project_id, ["agent"], since=since, until=until, agent=agent,
                                       limit=MAX_GROUPS, total_failed_runs=totals.failed_runs)["agent"]
            group = next((g for g in groups if g.key == agent), None)
            examples = _hex(group.example_traces) if group else []
        else:
            examples = [r.trace_id.hex() for r in recent_failed_runs(session, project_id, since=since, until=until,
                                                                     limit=EXAMPLES)]
    if examples:
        evidence["example_traces"] = examples
    return since, until, [m]


def _usage(session, project_id, rule, since, until, memo):
    provider, model = rule.params.get("provider"), rule.params.get("model")
    filters = fleet_filters(project_id, since, until, provider=provider, model=model)
    latency = rule.kind == "latency_p95"
    series = memo(("series", filters, latency),
                  lambda: fetch_series(session, filters, "hour", histograms=latency))
    total = Point()
    for points in series.values():
        for p in points.values():
            total.add(p)
    evidence: dict = {"calls": total.calls, "errors": total.errors}
    if latency:
        calls = sum(total.histogram)
        value = quantile_ms(total.histogram, 0.95) if calls else None
        m = Measurement("", value, calls, {**evidence, "p95_ms": value,
                                           "p50_ms": quantile_ms(total.histogram, 0.5) if calls else None})
    else:
        cls = rule.params.get("error_class")
        errors = total.errors_by_class.get(cls, 0) if cls else total.errors
        value = errors / total.calls if total.calls else None
        top = sorted(total.errors_by_class.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        m = Measurement("", value, total.calls, {**evidence, "matching_errors": errors,
                                                 "errors_by_class": dict(top)})
    if breaches(rule, m):
        groups = failure_groups_by(session, project_id, ["error_class"], since=filters.since, until=filters.until,
                                   model=model, provider=provider, limit=EXAMPLES)["error_class"]
        traces = [t for g in groups for t in g.example_traces]
        if traces:
            m.evidence["example_traces"] = _hex(traces)
    return filters.since, filters.until, [m]


def _cost(session, project_id, rule, since, until, memo):
    agent, user = rule.params.get("agent"), rule.params.get("user")
    if since >= until:  # the very first instant of the period: nothing spent yet
        return since, until, [Measurement("", 0.0, 0, {"cost_usd": 0.0, "budget_usd": rule.threshold,
                                                        "period": rule.params["period"]})]
    filters = fleet_filters(project_id, since, until, agent=agent, exact=True)
    group_by = "user" if user else "agent" if agent else "provider"
    report = memo(("costs", filters, group_by),
                  lambda: costs(session, filters, group_by, limit=MAX_COST_GROUPS))
    if user:
        found = next((g for g in report.groups if g.key == user), None)
    elif agent:
        found = next((g for g in report.groups if g.key == agent), None)
    else:
        found = report.total
    spent = float(found.cost_usd) if found is not None and found.cost_usd is not None else 0.0
    evidence = {"cost_usd": round(spent, 6), "budget_usd": rule.threshold, "period": rule.params["period"],
                "calls": found.calls if found else 0, "unpriced_calls": found.unpriced_calls if found else 0}
    return filters.since, filters.until, [Measurement("", spent, found.calls if found else 0, evidence)]


def _new_root_cause(session, project_id, rule, since, until, memo):
    dimension = rule.params["dimension"]
    found = memo(("new_keys", project_id, dimension, since, until),
                 lambda: new_failure_keys(session, project_id, dimension, since=since, until=until))
    return since, until, [
        Measurement(f"{dimension}={key or '(none)'}", float(n), n,
                    {"dimension": dimension, "key": key, "first_seen": first.isoformat(), "failures": n,
                     "example_traces": _hex(examples)})
        for key, first, n, examples in found]


def _anomaly(session, project_id, rule, since, until, memo):
    filters = fleet_filters(project_id, since, until, provider=rule.params.get("provider"),
                            model=rule.params.get("model"))
    metric = rule.params.get("metric")
    # Every metric at once (the rollups are read once), shared by the cycle's anomaly rules.
    found = memo(("anomalies", filters), lambda: anomaly_data(session, filters, "hour", None).anomalies)
    latest: dict[str, Measurement] = {}
    for a in (a for a in found if metric is None or a.metric == metric):  # one alert per provider/model/metric: the latest anomalous bucket speaks for it
        subject = f"{a.provider}/{a.model or '*'}/{a.metric}"
        latest[subject] = Measurement(subject, a.value, a.calls, {
            "provider": a.provider, "model": a.model, "metric": a.metric, "time": a.time.isoformat(),
            "value": a.value, "baseline_median": a.baseline.median, "z": a.z, "direction": a.direction})
    return filters.since, filters.until, list(latest.values())


def _served_model(session, project_id, rule, since, until, memo):
    filters = fleet_filters(project_id, since, until, provider=rule.params.get("provider"),
                            model=rule.params.get("model"))
    changes = memo(("served", filters), lambda: served_model_changes(session, filters))
    return filters.since, filters.until, [
        Measurement(f"{c.provider}/{c.request_model}->{c.new_model}", float(c.calls_after), c.calls_after, {
            "provider": c.provider, "request_model": c.request_model, "previous_models": c.previous,
            "new_model": c.new_model, "first_seen": c.first_seen.isoformat(), "calls_since": c.calls_after})
        for c in changes]


MEASURES = {
    "failure_rate": _failures, "failed_runs": _failures, "error_rate": _usage, "latency_p95": _usage,
    "cost": _cost, "new_root_cause": _new_root_cause, "anomaly": _anomaly, "served_model_change": _served_model,
}
