"""OpenInference (Arize: LangChain/LangGraph, CrewAI, smolagents, OpenAI Agents, ...): the
fields its spans carry in JSON strings or in other spans' names.

Recorded from the OpenAI Agents, LangChain, CrewAI and smolagents instrumentations
(tests/fixtures/sources/):
- `llm.model_name` is what the instrumentation saw last, usually the served model (LangChain
  takes it from the response); the model asked for is "model" / "model_name" in the
  `llm.invocation_parameters` JSON string.
- An AGENT span may lack `agent.name`: LangChain's agent name is `lc_agent_name` in the
  `metadata` JSON string, CrewAI's and OpenAI Agents' is `graph.node.id`, and the span name is
  the agent's (OpenAI Agents), "{agent}.run" (smolagents) or the runnable's name (LangChain).
- CrewAI tool spans name the agent using the tool in `tool.agent_role` (only in the
  instrumentation's event-listener mode).
- smolagents' `llm.model_name` is the model asked for (`model_id`); its invocation parameters
  hold no model, so no served model is known.
- A LangChain v1 agent (`create_agent(name=...)`) runs as a CHAIN span named after the agent
  (its `lc_agent_name`): that span is the agent run.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from core.coerce import as_str

SPAN_KIND = "openinference.span.kind"
INVOCATION_PARAMETERS = "llm.invocation_parameters"
MODEL_NAME = "llm.model_name"
METADATA = "metadata"
GRAPH_NODE_ID = "graph.node.id"
TOOL_AGENT_ROLE = "tool.agent_role"
_MODEL_PARAMETERS = ("model", "model_name")
_AGENT_METADATA = "lc_agent_name"
_SMOLAGENTS_RUN = ".run"  # smolagents names the run span "{agent name or class}.run"


def requested_model(attributes: Mapping[str, Any]) -> str | None:
    """The model asked for, from llm.invocation_parameters; None when not sent."""
    params = _json_object(attributes.get(INVOCATION_PARAMETERS), _MODEL_PARAMETERS)
    if params is None:
        return None
    for key in _MODEL_PARAMETERS:
        model = as_str(params.get(key))
        if model is not None:
            return model
    return None


def agent_name(attributes: Mapping[str, Any], category: str, name: str) -> str | None:
    """The agent an OpenInference span belongs to when no agent.name is sent."""
    metadata = _json_object(attributes.get(METADATA), (_AGENT_METADATA,))
    if metadata is not None:
        agent = as_str(metadata.get(_AGENT_METADATA))
        if agent is not None:
            return agent
    if category == "agent":
        return as_str(attributes.get(GRAPH_NODE_ID)) or as_str(name.removesuffix(_SMOLAGENTS_RUN))
    if category == "tool":
        return as_str(attributes.get(TOOL_AGENT_ROLE))
    return None


def is_agent_run(attributes: Mapping[str, Any], name: str) -> bool:
    """A CHAIN span that is a LangChain agent's run: named like its own lc_agent_name."""
    metadata = _json_object(attributes.get(METADATA), (_AGENT_METADATA,))
    return metadata is not None and bool(name) and as_str(metadata.get(_AGENT_METADATA)) == name


def _json_object(value: Any, wanted: tuple[str, ...]) -> Mapping[str, Any] | None:
    # Parse only when a wanted key can be in it: metadata and parameters can be large.
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str) or not any(key in value for key in wanted):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, Mapping) else None
