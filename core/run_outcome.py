"""A run's outcome, decided by attribution: the one rule the attributor stores on traces.

    failed     the run failed: a top span of the trace failed (TraceAttribution.failed);
    recovered  failures touched the run and it went on: a retry, fallback or handler succeeded;
    ok         nothing failed.
A trace not yet attributed has no outcome (NULL in storage).
"""

from __future__ import annotations

OUTCOMES = ("failed", "recovered", "ok")


def run_outcome(run_failed: bool, failures: int) -> str:
    """`failures`: how many failures touch the trace (its trace_failures rows)."""
    if run_failed:
        return "failed"
    return "recovered" if failures else "ok"
