"""The Overview's data (GET /api/overview and the /overview page). Money is a decimal string
in USD (pages.schemas conventions); rates are fractions from 0 to 1."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pages.fleet_schemas import AnomalyOut, CostGroupOut, ServedModelChangeOut, Window as FleetWindow
from pages.forensics_schemas import FailureGroupOut
from pages.scores import OverviewScores


class OverviewWindow(BaseModel):
    since: datetime
    until: datetime = Field(description="Exclusive.")
    range: str = Field(description="A quick range (15m, 1h, 24h, 7d, 30d) or 'custom'.")
    step_seconds: int = Field(description="Width of one bucket of `series`.")


class RunTotals(BaseModel):
    runs: int = Field(description="Runs (traces) that started in the window.")
    failed_runs: int = Field(description="Runs a root cause made fail (failure attribution: trace_failed).")
    recovered_runs: int = Field(description="Runs with root causes, none of which made the run fail.")
    ok_runs: int = Field(description="Runs without any root cause.")
    failure_rate: float = Field(description="failed_runs / runs (0 when there are no runs).")
    cost_usd: str = Field(description="Cost of the runs (priced calls only).")
    tokens: int = Field(description="Input + output tokens of the runs.")
    pending_runs: int = Field(default=0, description="Runs of the window whose attribution is not up to date yet: "
                                                     "they may still turn out failed (see attribution_delay_s).")


class RunPoint(BaseModel):
    time: datetime = Field(description="Start of the bucket.")
    runs: int
    failed_runs: int
    recovered_runs: int
    failure_rate: float
    cost_usd: str
    tokens: int


class ModelInTrouble(BaseModel):
    provider: str
    model: str
    calls: int
    errors: int
    error_rate: float
    top_error_class: str | None
    retry_rate: float
    fallback_rate: float
    error_rates: list[float] = Field(description="Error rate per bucket of the provider health series.")


class FailedRunOut(BaseModel):
    trace_id: str
    started: datetime
    root_name: str | None
    service: str | None
    error_class: str = Field(description="Of the run's most confident root cause.")
    span_name: str
    provider: str | None
    model: str | None
    root_causes: int = Field(description="Root causes that made the run fail.")


class OverviewOut(BaseModel):
    window: OverviewWindow
    totals: RunTotals
    series: list[RunPoint] = Field(description="One point per bucket, empty buckets included.")
    recent_failed_runs: list[FailedRunOut] = Field(description="The latest failed runs, newest first.")
    root_causes: dict[str, list[FailureGroupOut]] = Field(
        description="Top root causes by error_class (same definitions as /api/failures).")
    fleet_window: FleetWindow = Field(
        description="The window of the rollup-based sections below, widened to whole hours.")
    models_in_trouble: list[ModelInTrouble] = Field(description="Models with errors, highest error rate first.")
    anomalies_since: datetime = Field(description="Anomalies are judged over the last 24 hours of "
                                                  "fleet_window only (hourly buckets).")
    anomalies: list[AnomalyOut] = Field(description="Most recent first.")
    served_model_changes: list[ServedModelChangeOut]
    expensive_agents: list[CostGroupOut] = Field(description="Agents by cost, highest first.")
    total_cost_usd: str | None = Field(description="Cost of all model calls in fleet_window (usage rollups).")
    scores: OverviewScores | None = Field(default=None, description="Evaluation scores created in the window, "
                                                                    "per model, agent, workflow step and day.")
