"""Shared pieces of the across-traces queries (costs, provider health, anomalies).

They read only the rollups (usage_rollups or provider_rollups, tool_rollups, traces), never `spans`. The
rollups are hourly, so a window is aligned to whole UTC hours: `since` is rounded down
and `until` up, and the response states the window really used. Costs are the exception:
their windows are exact, the partial hours at the edges read from `spans` (db.queries.costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

MAX_WINDOW = timedelta(days=90)
DEFAULT_WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


class FilterError(ValueError):
    """A filter combination the rollups cannot answer (the API turns it into a 422)."""


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def ceil_hour(when: datetime) -> datetime:
    floored = floor_hour(when)
    return floored if floored == when else floored + HOUR


def exact_window(since: datetime | None, until: datetime | None, *, now: datetime | None = None,
                 max_window: timedelta = MAX_WINDOW) -> tuple[datetime, datetime]:
    """[since, until) as given; defaults to the 24 hours before now. Raises ValueError."""
    until = (until or now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    since = (since or (until - DEFAULT_WINDOW)).astimezone(timezone.utc)
    if since >= until:
        raise ValueError("until must be later than since")
    if until - since > max_window:
        raise ValueError(f"the window is limited to {max_window.days} days")
    return since, until


def align_window(since: datetime | None, until: datetime | None, *, now: datetime | None = None,
                 max_window: timedelta = MAX_WINDOW) -> tuple[datetime, datetime]:
    """[since, until) aligned to whole hours; defaults to the last 24 hours. Raises ValueError."""
    now = now or datetime.now(timezone.utc)
    until = ceil_hour(until or now)
    since = floor_hour(since or (until - DEFAULT_WINDOW))
    if since >= until:
        raise ValueError("until must be later than since")
    if until - since > max_window:
        raise ValueError(f"the window is limited to {max_window.days} days")
    return since, until


@dataclass(frozen=True)
class Filters:
    project_id: int
    since: datetime
    until: datetime
    service: str | None = None
    agent: str | None = None
    model: str | None = None  # requested or served model
    provider: str | None = None

    def _hourly_where(self, since: datetime | None) -> tuple[list[str], dict]:
        """Clauses shared by the hourly rollups: project, window, service, agent."""
        clauses = ["project_id = :project_id", "hour >= :since", "hour < :until"]
        params = {"project_id": self.project_id, "since": since or self.since, "until": self.until}
        if self.service:
            clauses.append("service = :service")
            params["service"] = self.service
        if self.agent:
            clauses.append("agent = :agent")
            params["agent"] = self.agent
        return clauses, params

    def dimension_where(self) -> tuple[list[str], dict]:
        """Clauses on the rollup dimensions (service, agent, provider, requested/served model) for
        a relation that has those columns; the window is left to the caller."""
        clauses, params = [], {}
        for name in ("service", "agent", "provider"):
            if getattr(self, name):
                clauses.append(f"{name} = :{name}")
                params[name] = getattr(self, name)
        if self.model:
            clauses.append("(request_model = :model OR response_model = :model)")
            params["model"] = self.model
        return clauses, params

    def usage_table(self) -> str:
        """The model-call rollup that answers these filters from the fewest rows: provider_rollups
        (usage_rollups summed over service and agent) unless a service or agent filter needs those
        columns. usage_where() applies to both."""
        return "usage_rollups" if self.service or self.agent else "provider_rollups"

    def usage_where(self, *, since: datetime | None = None) -> tuple[str, dict]:
        """WHERE clause over usage_rollups (alias-free) and its parameters."""
        clauses, params = self._hourly_where(since)
        if self.provider:
            clauses.append("provider = :provider")
            params["provider"] = self.provider
        if self.model:
            clauses.append("(request_model = :model OR response_model = :model)")
            params["model"] = self.model
        return " AND ".join(clauses), params

    def tool_where(self) -> tuple[str, dict]:
        if self.model or self.provider:
            raise FilterError("the model and provider filters do not apply to tool calls")
        clauses, params = self._hourly_where(None)
        return " AND ".join(clauses), params

    def traces_where(self) -> tuple[str, dict]:
        """Over the `traces` rollup: a trace counts in the window where it started."""
        if self.provider:
            raise FilterError("the provider filter is not available for session or user grouping "
                              "(the per-trace rollup records models, services and agents, not providers)")
        clauses = ["project_id = :project_id", "start_time >= :since", "start_time < :until"]
        params = {"project_id": self.project_id, "since": self.since, "until": self.until}
        if self.service:
            clauses.append("(service_name = :service OR services @> ARRAY[CAST(:service AS text)])")
            params["service"] = self.service
        if self.agent:
            clauses.append("agents @> ARRAY[CAST(:agent AS text)]")
            params["agent"] = self.agent
        if self.model:
            clauses.append("models @> ARRAY[CAST(:model AS text)]")
            params["model"] = self.model
        return " AND ".join(clauses), params
