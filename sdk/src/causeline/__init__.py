"""Causeline: a flight recorder for AI agents.

    import causeline
    causeline.init(service_name="support-bot")   # endpoint/key from CAUSELINE_* env

    @causeline.agent("triage")
    def triage(question): ...

See docs/sdk.md for the whole API.
"""

from __future__ import annotations

from . import attributes
from ._version import __version__
from .control import Guardrail, Handoff, RoutingDecision, guardrail, handoff, routing_decision
from .decorators import agent, step, tool
from .handle import SpanHandle, add_link, current_span
from .lifecycle import flush, init, shutdown
from .links import LinkSpec, caused_by, fallback, follows, handoff_from, link, retry, uses_output_of
from .redaction import redact_builtin
from .spans import AgentRun, ModelCall, StepRun, ToolCall, agent_run, model_call, step_run, tool_call
from .stats import stats
from .threads import wrap

__all__ = [
    "AgentRun",
    "Guardrail",
    "Handoff",
    "LinkSpec",
    "ModelCall",
    "RoutingDecision",
    "SpanHandle",
    "StepRun",
    "ToolCall",
    "__version__",
    "add_link",
    "agent",
    "agent_run",
    "attributes",
    "caused_by",
    "current_span",
    "fallback",
    "flush",
    "follows",
    "guardrail",
    "handoff",
    "handoff_from",
    "init",
    "link",
    "model_call",
    "redact_builtin",
    "retry",
    "routing_decision",
    "shutdown",
    "stats",
    "step",
    "step_run",
    "tool",
    "tool_call",
    "uses_output_of",
    "wrap",
]
