"""The PostgreSQL schema (ARCHITECTURE.md section 7). Alembic revisions must match it exactly.

Every telemetry table is keyed by project_id first so it can later be distributed
by project (Citus) without a redesign. Ids are raw bytes (16/8), money is numeric.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Computed, DateTime, Float, ForeignKey, Identity, Index, Integer,
    LargeBinary, MetaData, Numeric, SmallInteger, Text, UniqueConstraint, Uuid, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(20, 10)
TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    # The visible start of the key ("cl_ab12cd34"), for lists and logs; the secret is only hashed.
    prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    # The member who created it (None: the operator, on the command line). The key never
    # carries more rights than this member's current role (core/permissions.py).
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Whether a member created it: stays true when that user's row is deleted (created_by then
    # NULL), so the key carries nothing rather than the operator's uncapped scopes.
    created_by_member: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(Text)  # core.permissions.Role
    __table_args__ = (CheckConstraint("role in ('admin', 'engineer', 'auditor', 'viewer')", name="role"),)


class UserSession(Base):
    """A UI login. The cookie holds a random token; only its hash is stored, so logout revokes it."""

    __tablename__ = "user_sessions"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    expires_at: Mapped[datetime] = mapped_column(TZ)


class SpanRow(Base):
    __tablename__ = "spans"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    parent_span_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[int] = mapped_column(SmallInteger)
    category: Mapped[str] = mapped_column(Text)
    operation: Mapped[str | None] = mapped_column(Text)
    # Part of the key: spans are range-partitioned by it (UTC days, db/partitions.py), and a
    # partition key must be in every unique key. A redelivered span has the same start time.
    start_time: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    end_time: Mapped[datetime] = mapped_column(TZ)
    # Exact nanoseconds: timestamptz keeps microseconds only.
    start_ns: Mapped[int] = mapped_column(BigInteger)
    duration_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    status_message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(Text)
    service_name: Mapped[str | None] = mapped_column(Text)
    agent_name: Mapped[str | None] = mapped_column(Text)
    tool_name: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    request_model: Mapped[str | None] = mapped_column(Text)
    response_model: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    cost_source: Mapped[str | None] = mapped_column(Text)
    reported_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    session_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict] = mapped_column(JSONB)
    events: Mapped[list] = mapped_column(JSONB)
    links: Mapped[list] = mapped_column(JSONB)
    resource: Mapped[dict] = mapped_column(JSONB)
    scope: Mapped[str | None] = mapped_column(Text)
    # 'retry' (retry_of link or causeline.attempt > 1) or 'fallback' (fallback_of link); else NULL.
    retry_kind: Mapped[str | None] = mapped_column(Text)
    # The provider's id of the answer (core/model_call_dedup.py), on model calls.
    response_id: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    # The report leaf of the record (v3, db/queries/reports.py), computed by PostgreSQL on every
    # write (schema 0023): a period report reads it instead of digesting every record.
    digest: Mapped[bytes] = mapped_column(LargeBinary, Computed(
        "causeline_span_digest(project_id, trace_id, span_id, parent_span_id, name, kind, category, operation, "
        "start_time, end_time, start_ns, duration_ns, status, status_message, error_type, error_class, service_name, "
        "agent_name, tool_name, provider, request_model, response_model, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source, reported_cost_usd, "
        "session_id, user_id, input, output, attributes, events, links, resource, scope, retry_kind, ingested_at)",
        persisted=True), deferred=True)
    __table_args__ = (
        Index("ix_spans_project_start", "project_id", "start_time"),
        # The trace list's search (db/queries/trace_search.py, schema 0010).
        *(Index(f"ix_spans_{field}_search", text(f"to_tsvector('simple'::regconfig, coalesce({field}, ''))"),
                postgresql_using="gin") for field in ("name", "input", "output")),
        {"postgresql_partition_by": "RANGE (start_time)"},
    )


class SpanDuplicate(Base):
    """A model call recorded again by a stacked instrumentation (core/model_call_dedup.py): the span
    that counts instead, and why. The marked span adds nothing to any rollup's calls, tokens or
    cost. Kept apart from `spans` so that marking never rewrites a stored span row."""

    __tablename__ = "span_duplicates"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    duplicate_of: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    __table_args__ = (CheckConstraint("reason IN ('same_response_id', 'nested')", name="reason"),)


def _duplicate(column):
    return column_property(
        select(column).where(SpanDuplicate.project_id == SpanRow.project_id, SpanDuplicate.trace_id == SpanRow.trace_id,
                             SpanDuplicate.span_id == SpanRow.span_id)
        .correlate_except(SpanDuplicate).scalar_subquery())


# Read with every span (a primary-key lookup): None on the spans that count.
SpanRow.duplicate_of = _duplicate(SpanDuplicate.duplicate_of)
SpanRow.duplicate_reason = _duplicate(SpanDuplicate.reason)


class GenaiLogRecord(Base):
    """Prompt/completion content that GenAI events sent as OTLP log records (POST /v1/logs) add
    to a span (core/otlp_logs.py). Keyed by the span, not tied to a spans row: the log may
    arrive before its span, after it, or alone; reads merge it into the span's content."""

    __tablename__ = "genai_log_records"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    # A digest of the record: a redelivered export stores it once.
    record_key: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    time_ns: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)  # position in its request, for records of one time
    event_name: Mapped[str] = mapped_column(Text)
    input: Mapped[list | None] = mapped_column(JSONB)  # messages, in the event's own shape
    output: Mapped[list | None] = mapped_column(JSONB)
    ingested_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    # Retention finds records no span claims by their time (db/queries/retention.py).
    __table_args__ = (Index("ix_genai_log_records_project_time", "project_id", "time_ns"),)


class TraceRow(Base):
    """One rollup row per trace, maintained by the batch writer from rows really inserted."""

    __tablename__ = "traces"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    root_span_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    root_name: Mapped[str | None] = mapped_column(Text)
    service_name: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(TZ)
    end_time: Mapped[datetime] = mapped_column(TZ)
    span_count: Mapped[int] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer)
    llm_calls: Mapped[int] = mapped_column(Integer)
    unpriced_calls: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money)
    agents: Mapped[list[str]] = mapped_column(ARRAY(Text))
    models: Mapped[list[str]] = mapped_column(ARRAY(Text))
    services: Mapped[list[str]] = mapped_column(ARRAY(Text))
    session_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    # When failure attribution last ran for this trace; behind updated_at means it must run again.
    attributed_at: Mapped[datetime | None] = mapped_column(TZ)
    # The run's outcome as attribution decided it (core/run_outcome.py); NULL: not yet attributed.
    outcome: Mapped[str | None] = mapped_column(Text)
    # When the built-in evaluators last scored this trace (collector/evaluator.py, schema 0014).
    evaluated_at: Mapped[datetime | None] = mapped_column(TZ)
    __table_args__ = (
        CheckConstraint("outcome IN ('failed', 'recovered', 'ok')", name="outcome"),
        # Covering the Overview's per-bucket sums, read index-only (schema 0030).
        Index("ix_traces_project_start", "project_id", "start_time", "trace_id",
              postgresql_include=["cost_usd", "input_tokens", "output_tokens"]),
        Index("ix_traces_outcome", "project_id", "outcome", "start_time", "trace_id"),
        Index("ix_traces_unattributed", "updated_at", postgresql_where=text("attributed_at IS NULL OR attributed_at < updated_at")),
        Index("ix_traces_unevaluated", "updated_at", postgresql_where=text("evaluated_at IS NULL OR evaluated_at < updated_at")),
        Index("ix_traces_agents", "agents", postgresql_using="gin"),
        Index("ix_traces_models", "models", postgresql_using="gin"),
    )


class SpanEdge(Base):
    """Lineage: `span` --relation--> `linked` (its parent, or the span it links to)."""

    __tablename__ = "span_edges"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    relation: Mapped[str] = mapped_column(Text, primary_key=True)
    linked_trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    linked_span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    __table_args__ = (
        Index("ix_span_edges_linked", "project_id", "linked_trace_id", "linked_span_id"),
        # A trace's lineage edges without its parent edges (db.queries.traces._lineage_edges, schema 0030).
        Index("ix_span_edges_lineage", "project_id", "trace_id", postgresql_where=text("relation <> 'parent'")),
        Index("ix_span_edges_lineage_linked", "project_id", "linked_trace_id",
              postgresql_where=text("relation <> 'parent'")),
    )


class _CallMeasures:
    """The measures of a model-call rollup (UsageRollup, ProviderRollup), added up on conflict."""

    calls: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    # Calls that re-attempt a failed call: a retry_of link or causeline.attempt > 1 ...
    retries: Mapped[int] = mapped_column(BigInteger)
    # ... or a fallback_of link (a fallback is not also counted as a retry).
    fallbacks: Mapped[int] = mapped_column(BigInteger)
    unpriced_calls: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money)
    duration_ns: Mapped[int] = mapped_column(BigInteger)
    latency_buckets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


class UsageRollup(_CallMeasures, Base):
    """Model calls (category llm/embedding) per project x hour x service x provider x requested
    model x served model x agent x error class ('' where unknown; error_class '' = succeeded).

    Maintained by the batch writer from the rows really inserted, so redelivery never counts
    twice. Cost, provider-health and anomaly queries read only this table or its sum over
    service and agent (ProviderRollup). `latency_buckets` is a core.latency histogram (BUCKETS
    counts), merged element-wise on conflict.
    """

    __tablename__ = "usage_rollups"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    service: Mapped[str] = mapped_column(Text, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    request_model: Mapped[str] = mapped_column(Text, primary_key=True)
    response_model: Mapped[str] = mapped_column(Text, primary_key=True)
    agent: Mapped[str] = mapped_column(Text, primary_key=True)
    error_class: Mapped[str] = mapped_column(Text, primary_key=True)


class ProviderRollup(_CallMeasures, Base):
    """usage_rollups without service and agent: model calls per project x hour x provider x
    requested model x served model x error class, same measures, written by the same ingest
    statement from the same counted calls and corrections (so the two always agree summed over
    service and agent). Provider health, anomalies and the costs that group by model, provider
    or time read it when no service or agent filter applies: ~4x fewer rows over a window."""

    __tablename__ = "provider_rollups"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    request_model: Mapped[str] = mapped_column(Text, primary_key=True)
    response_model: Mapped[str] = mapped_column(Text, primary_key=True)
    error_class: Mapped[str] = mapped_column(Text, primary_key=True)


class ToolRollup(Base):
    """Tool calls (category tool) per project x hour x service x agent x tool x error class."""

    __tablename__ = "tool_rollups"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    service: Mapped[str] = mapped_column(Text, primary_key=True)
    agent: Mapped[str] = mapped_column(Text, primary_key=True)
    tool: Mapped[str] = mapped_column(Text, primary_key=True)
    error_class: Mapped[str] = mapped_column(Text, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    retries: Mapped[int] = mapped_column(BigInteger)
    duration_ns: Mapped[int] = mapped_column(BigInteger)
    latency_buckets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


class AuditEvent(Base):
    """Append-only (UPDATE, DELETE and TRUNCATE refused by triggers); each row's hash covers the
    previous row's hash in its chain (core/audit_chain.py): one chain per project, chain 0 for
    events with no project (e.g. failed logins)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    chain: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_chain_at", "chain", "at"),
    )


class ModelPrice(Base):
    """Per-project price overrides, on top of genai-prices."""

    __tablename__ = "model_prices"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model_pattern: Mapped[str] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    input_per_mtok: Mapped[Decimal] = mapped_column(Money)
    output_per_mtok: Mapped[Decimal] = mapped_column(Money)
    cache_read_per_mtok: Mapped[Decimal | None] = mapped_column(Money)
    cache_write_per_mtok: Mapped[Decimal | None] = mapped_column(Money)
    effective_from: Mapped[datetime] = mapped_column(TZ)
    effective_to: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (UniqueConstraint("project_id", "model_pattern", "provider", "effective_from"),)


class RedactionRule(Base):
    """A project's departure from the default redaction (every built-in on, no custom pattern):
    a built-in switched off (pattern NULL, enabled false) or a custom RE2 pattern (core/redaction.py)."""

    __tablename__ = "redaction_rules"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    pattern: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class Score(Base):
    """An evaluation result on a trace or one of its spans (core/scores.py): from the API, an
    OpenTelemetry evaluation event, or a built-in evaluator. `score_key` makes writes
    idempotent (a redelivered score is stored once). Not tied to a spans row: a score may
    arrive before its span."""

    __tablename__ = "scores"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The run in the key: scores are distributed by trace beside spans on Citus (docs/scaling.md).
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    score_key: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    span_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(Text)
    data_type: Mapped[str] = mapped_column(Text)  # numeric, boolean (value 0/1), categorical (label)
    value: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # api, otel, or the evaluator's name
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (
        CheckConstraint("data_type IN ('numeric', 'boolean', 'categorical')", name="data_type"),
        CheckConstraint("value IS NOT NULL OR label IS NOT NULL", name="has_value"),
        Index("ix_scores_trace", "project_id", "trace_id", "name"),
        Index("ix_scores_name_created", "project_id", "name", "created_at"),
    )


class EvaluatorRule(Base):
    """A project's configured check of model-call outputs (core/evaluators.py): a JSON schema
    the output must conform to, a regular expression it must (not) match, or a rubric a judge model
    grades the run's final answer against (llm_rubric, core/judge_evaluators.py)."""

    __tablename__ = "evaluator_rules"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    config: Mapped[dict] = mapped_column(JSONB)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (CheckConstraint("kind IN ('json_schema', 'regex', 'llm_rubric')", name="kind"),)


class RetentionPolicy(Base):
    """A project's departure from the default retention (core/retention.py): its own days for
    spans and for rollups (NULL: the server's default), or a legal hold that suspends deletion."""

    __tablename__ = "retention_policies"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    days: Mapped[int | None] = mapped_column(Integer)
    rollup_days: Mapped[int | None] = mapped_column(Integer)
    legal_hold: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class TraceFailure(Base):
    """One root cause found by failure attribution (core), materialized per trace so that
    failures across thousands of traces are answered without recomputing them."""

    __tablename__ = "trace_failures"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    # The trace that holds the root-cause span (a failure may come from a linked trace): part
    # of the key, as span ids are unique only within their trace.
    root_trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    root_span_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    trace_start: Mapped[datetime] = mapped_column(TZ)
    error_class: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    span_name: Mapped[str] = mapped_column(Text)
    # The workflow step the failure happened in (nearest workflow ancestor), else span_name.
    step_name: Mapped[str | None] = mapped_column(Text)
    service_name: Mapped[str | None] = mapped_column(Text)
    agent_name: Mapped[str | None] = mapped_column(Text)
    tool_name: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    request_model: Mapped[str | None] = mapped_column(Text)
    response_model: Mapped[str | None] = mapped_column(Text)
    recovered: Mapped[bool] = mapped_column(Boolean)
    trace_failed: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float)
    tokens_burned: Mapped[int] = mapped_column(BigInteger)
    cost_burned_usd: Mapped[Decimal] = mapped_column(Money)
    duration_ns: Mapped[int] = mapped_column(BigInteger)
    propagation_depth: Mapped[int] = mapped_column(Integer)
    blast_radius: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[list] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    # The run's cost and tokens when these rows were written: what they added to failure_rollups,
    # so a re-attribution subtracts exactly that (schema 0028).
    rolled_run_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    rolled_run_tokens: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_trace_failures_project_start", "project_id", "trace_start"),
        # Root causes seen from another run: the few rows failure_rollups cannot de-duplicate
        # ahead of a window (db/queries/failure_rollups.py reads them per window).
        Index("ix_trace_failures_linked", "project_id", "trace_start",
              postgresql_where=text("root_trace_id <> trace_id")),
    )


class _FailureMeasures:
    """The sums of a failure rollup row (failure_rollups and its journal of deltas)."""

    failures: Mapped[int] = mapped_column(BigInteger)
    recovered: Mapped[int] = mapped_column(BigInteger)
    tokens_burned: Mapped[int] = mapped_column(BigInteger)
    cost_burned_usd: Mapped[Decimal] = mapped_column(Money)
    cost_recovered_usd: Mapped[Decimal] = mapped_column(Money)
    confidence_sum: Mapped[float] = mapped_column(Float)
    runs: Mapped[int] = mapped_column(BigInteger)
    failed_runs: Mapped[int] = mapped_column(BigInteger)
    failed_runs_cost_usd: Mapped[Decimal] = mapped_column(Money)
    failed_runs_tokens: Mapped[int] = mapped_column(BigInteger)


class FailureRollup(_FailureMeasures, Base):
    """trace_failures per project x hour (of the run's start) x dimension of /api/failures
    (`dim`: a key of db.queries.failures.DIMENSIONS, or 'total') x group, kept by the attributor
    (added for a trace's new rows, subtracted for its old ones). `failures` and their measures
    count the root causes a run holds itself (root_trace_id = trace_id); root causes seen only
    from a linked run are de-duplicated per window at read time. `runs` are the runs with a
    failure in the group, `failed_runs` those whose top span failed, with their cost/tokens."""

    __tablename__ = "failure_rollups"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    dim: Mapped[str] = mapped_column(Text, primary_key=True)
    grp: Mapped[str] = mapped_column(Text, primary_key=True)


class FailureRollupDelta(_FailureMeasures, Base):
    """What attributions added to or subtracted from failure_rollups and that is not folded in
    yet: insert-only, so concurrent attributors never wait on each other for a shared rollup row
    (every run of an hour shares its 'total' row); readers add these rows to failure_rollups', and
    the attributor folds them in after each batch (db/queries/failure_rollups.py fold)."""

    __tablename__ = "failure_rollup_deltas"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(TZ)
    dim: Mapped[str] = mapped_column(Text)
    grp: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("ix_failure_rollup_deltas_project_hour", "project_id", "hour"),)


class AlertChannel(Base):
    """Where a project's alerts go (core/alert_messages.py renders each kind). `secret` is the
    generic webhook's HMAC key, the Slack webhook URL or the PagerDuty routing key, encrypted
    (alerts/secret_box.py): shown once at creation; afterwards only `secret_hint` is shown."""

    __tablename__ = "alert_channels"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # webhook, slack, pagerduty, email
    target: Mapped[str] = mapped_column(Text)  # URL (webhook, PagerDuty endpoint) or e-mail addresses
    secret: Mapped[str | None] = mapped_column(Text)
    secret_hint: Mapped[str | None] = mapped_column(Text)  # core/alerts.py mask_secret of the plain secret
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class AlertRule(Base):
    """One alert rule (core/alerts.py checks it); evaluated by alerts/evaluator.py."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB)
    threshold: Mapped[float] = mapped_column(Float)
    window_s: Mapped[int] = mapped_column(Integer)
    renotify_s: Mapped[int] = mapped_column(Integer)
    min_volume: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    channel_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class AlertState(Base):
    """The state of one subject of a rule (core.alerts.AlertState): firing or ok, since when,
    last notified — de-duplication and the re-notify schedule, shared by every process."""

    __tablename__ = "alert_states"
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(TZ)
    last_notified: Mapped[datetime | None] = mapped_column(TZ)
    fired_at: Mapped[datetime | None] = mapped_column(TZ)  # the last time it started firing (kept once resolved)
    value: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict] = mapped_column(JSONB)
    evaluated_at: Mapped[datetime] = mapped_column(TZ)


class AlertDelivery(Base):
    """One notification to one channel: written (pending) in the transaction that decided it,
    before anything is sent; marked sent or failed after. The idempotency key is in the payload."""

    __tablename__ = "alert_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(Text)  # firing, renotify, resolved, test
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    __table_args__ = (
        Index("ix_alert_deliveries_project_created", "project_id", "created_at"),
        Index("ix_alert_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )


class JudgeCall(Base):
    """One call Causeline made to the operator's model endpoint (judge/): an LLM-as-judge
    evaluation, a judge-assisted attribution or a replay, with its prompt version, tokens and cost,
    so the evaluation's own cost is visible and the daily budget can be enforced. Failed calls are
    recorded too (outcome = the JudgeError kind), never as a verdict."""

    __tablename__ = "judge_calls"
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    purpose: Mapped[str] = mapped_column(Text)  # evaluator, attribution, replay
    name: Mapped[str] = mapped_column(Text)  # the evaluator, the attribution method, the replayed model
    prompt_version: Mapped[str | None] = mapped_column(Text)  # e.g. faithfulness@1
    trace_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    span_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    model: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(Text)  # ok, timeout, http, garbage
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("purpose IN ('evaluator', 'attribution', 'replay')", name="purpose"),
        Index("ix_judge_calls_created", "project_id", "created_at"),
        Index("ix_judge_calls_trace", "project_id", "trace_id"),
    )


class JudgeAttribution(Base):
    """The judge's view of a failed run whose structural attribution had weak evidence
    (core/judge_attribution.py): the agent and step it blamed, with its reasoning, beside the
    structural root causes in trace_failures and labelled as the judge's. One row per run, for the
    version of the run it read (`trace_updated_at`): `asking` while the call is out, `verdict`,
    `error` (the call failed or answered garbage; judge_calls has it) or `not_needed` (an error
    span explains the failure, nothing was asked)."""

    __tablename__ = "judge_attributions"
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    trace_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    trace_updated_at: Mapped[datetime] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    step_index: Mapped[int | None] = mapped_column(Integer)
    span_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    reasoning: Mapped[str | None] = mapped_column(Text)
    prompt_version: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    judge_call_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    __table_args__ = (
        CheckConstraint("status IN ('asking', 'verdict', 'error', 'not_needed')", name="status"),
    )
