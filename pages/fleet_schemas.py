"""Response models of the across-traces endpoints (/api/costs, /api/health/providers, /api/anomalies).

Same conventions as pages.schemas: money is a decimal string in USD, null when nothing
was priced (never "0" for unpriced calls); times are ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pages.schemas import TokenCounts


class ServedModel(BaseModel):
    model: str
    calls: int


class Window(BaseModel):
    since: datetime = Field(description="Start of the window used. Exact for costs (the partial edge hours are "
                                        "read from spans); rounded down to the hour for provider health and "
                                        "anomalies (rollups are hourly).")
    until: datetime = Field(description="End (exclusive). Exact for costs; rounded up to the hour otherwise.")
    service: str | None = None
    agent: str | None = None
    model: str | None = None
    provider: str | None = None


class CostGroupOut(BaseModel):
    key: str | None = Field(description="The group's value (model, provider, ..., or an ISO hour/day); "
                                        "'' or null where the spans did not say.")
    calls: int = Field(description="Model calls (tool calls for group_by=tool).")
    errors: int = Field(description="Failed calls (for session/user: failed spans of those traces).")
    unpriced_calls: int = Field(description="Model calls without a price; excluded from cost_usd, never counted as $0.")
    retries: int | None = Field(description="Calls that retried a failed call; null for session/user.")
    fallbacks: int | None = Field(description="Calls that fell back from a failed call; null for tool/session/user.")
    traces: int | None = Field(description="Traces (session/user grouping only).")
    tokens: TokenCounts | None = Field(description="Null for tool calls (tokens are counted where the model call happened).")
    cost_usd: str | None = Field(description="USD over priced calls; null when none was priced.", examples=["1.2345"])
    cost_complete: bool = Field(description="True when every call in the group was priced.")
    served_models: list[ServedModel] | None = Field(
        default=None, description="group_by=model: the response models that answered calls requesting this "
                                  "model, most calls first (calls that failed before any model answered have none).")


class CostsOut(BaseModel):
    window: Window
    group_by: str
    source: str = Field(description="The rollup that answered.")
    groups: list[CostGroupOut]
    groups_total: int = Field(description="Groups before `limit` was applied.")
    total: CostGroupOut
    series_bucket: str = Field(description="hour for windows up to 48 h, else day.")
    series: list[CostGroupOut] = Field(description="Cost over time in the same window and filters, one entry per "
                                                   "UTC bucket that had calls (key = bucket start), oldest first.")


class Latency(BaseModel):
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None = Field(description="Exact (from summed durations).")


class ErrorClassCount(BaseModel):
    error_class: str
    errors: int
    rate: float = Field(description="errors / calls.")


class HealthPoint(BaseModel):
    time: datetime
    calls: int
    errors: int
    error_rate: float
    errors_by_class: dict[str, int]
    retry_rate: float
    fallback_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    served_models: dict[str, int]


class ModelHealth(BaseModel):
    provider: str
    model: str = Field(description="The requested model ('' when the spans did not say).")
    calls: int
    errors: int
    error_rate: float
    errors_by_class: list[ErrorClassCount]
    retries: int
    retry_rate: float
    fallbacks: int
    fallback_rate: float
    latency: Latency
    served_models: list[ServedModel] = Field(description="Response models that answered, most calls first.")
    series: list[HealthPoint]


class ServedModelChangeOut(BaseModel):
    provider: str
    request_model: str
    previous_models: list[str] = Field(description="Served models that answered this request model before.")
    new_model: str
    first_seen: datetime = Field(description="Hour the new served model first answered.")
    calls_since: int = Field(description="Calls the new model answered inside the window.")


class ProviderHealthOut(BaseModel):
    window: Window
    bucket: str
    latency_method: str
    models: list[ModelHealth]
    served_model_changes: list[ServedModelChangeOut]


class Baseline(BaseModel):
    median: float
    mad: float = Field(description="Median absolute deviation.")
    points: int
    since: datetime
    until: datetime = Field(description="Start of the last baseline bucket.")


class AnomalyOut(BaseModel):
    provider: str
    model: str | None = Field(description="Null when the anomaly concerns the provider as a whole.")
    metric: str = Field(description="error_rate, latency_p95_ms or cost_per_call_usd.")
    time: datetime = Field(description="Start of the anomalous bucket.")
    value: float
    direction: str = Field(description="up or down.")
    baseline: Baseline
    z: float = Field(description="Robust z-score: (value - median) / max(1.4826 * MAD, floors).")
    change: float
    relative_change: float | None
    calls: int = Field(description="Calls (priced calls for cost per call) in the bucket.")
    evidence: str


class AnomaliesOut(BaseModel):
    window: Window
    bucket: str
    method: str
    anomalies: list[AnomalyOut]
