"""What failure attribution answers (core.attribution computes it): per failure, the root
cause, its path, recovery, what it burned and what else it hit; per trace, the summary."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.forensics_view import SpanRef


@dataclass(frozen=True, slots=True)
class Burned:
    """What a failure still cost: the root cause's work, its failed re-attempts and, for a
    failing output check, the model call whose output was rejected (each with everything
    beneath it). Tokens are 0 when unreported; unpriced calls are counted, never priced as $0."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0
    duration_ns: int = 0

    @property
    def total_tokens(self) -> int:
        # input already includes cache reads/writes and output already includes reasoning.
        return self.input + self.output


@dataclass(frozen=True, slots=True)
class SkippedStep:
    name: str
    reason: str  # "cancelled" (started, cut short) | "planned" (listed in causeline.plan.steps, never started)
    span: SpanRef | None


@dataclass(frozen=True, slots=True)
class BlastRadius:
    data_consumers: tuple[SpanRef, ...]
    failed_ancestors: tuple[SpanRef, ...]
    skipped_steps: tuple[SkippedStep, ...]

    @property
    def size(self) -> int:
        return len(self.data_consumers) + len(self.failed_ancestors) + len(self.skipped_steps)


@dataclass(frozen=True, slots=True)
class Failure:
    root_cause: SpanRef
    error_class: str
    category: str
    propagation_path: tuple[SpanRef, ...]  # root cause first, outermost failed span last
    reached_top: bool                      # the failure made a trace's top span fail
    recovered: bool
    recovered_by: SpanRef | None
    recovery: str | None                   # "retry_of" | "fallback_of" | "handled" | None
    burned: Burned
    blast_radius: BlastRadius
    confidence: float
    evidence: tuple[str, ...]
    output_of: SpanRef | None              # the model call whose output a failing check rejected
    failed_spans: tuple[SpanRef, ...]      # every failed span this root cause explains (incl. itself)
    # What /api/failures groups by (root cause, else its nearest ancestor / checked model call).
    service_name: str | None
    agent_name: str | None
    tool_name: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    step_name: str  # the nearest workflow step around the root cause, else the root cause itself
    # A failed agent that nothing above went on from (core.attribution rule 5): the run ended with it.
    ended_run: bool = False

    @property
    def outermost(self) -> SpanRef:
        return self.propagation_path[-1]


@dataclass(frozen=True, slots=True)
class TraceAttribution:
    trace_id: bytes
    failed: bool                 # a top span (no parent) of the requested trace failed
    failures: tuple[Failure, ...]
    span_count: int
    failed_span_count: int
    trace_ids: tuple[bytes, ...]  # the requested trace first, then linked traces that were included
    root_missing: bool = False   # no top span of the requested trace was received: the outcome is unknown

    @property
    def summary(self) -> str:
        if not self.failures:
            found = "no failure: no span of this trace (or its linked traces) failed"
            return found + ("; root span missing: the run's outcome is unknown" if self.root_missing else "")
        open_ = sum(1 for f in self.failures if not f.recovered)
        if self.failed:
            outcome = "the run failed"
        elif self.root_missing:
            outcome = "root span missing: whether the run failed is unknown"
        else:
            outcome = "the run did not fail"
        return (f"{len(self.failures)} failure(s) from {self.failed_span_count} failed span(s); "
                f"{len(self.failures) - open_} recovered, {open_} not; {outcome}")
