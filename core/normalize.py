"""RawSpan → Span: apply every telemetry convention we understand (conventions.md).

Pure and total: `normalize` runs on untrusted data for every ingested span, so it
never raises and never does I/O. Lookups are dict/tuple tables built at import.

Choices beyond the written conventions:
- Tokens and reported cost are dropped on agent and workflow spans: they repeat
  the usage of the model calls beneath them (pydantic-ai agent runs, agent-level
  totals); counting them would double the bill. The raw attributes keep them.
- When a source is present but unreadable (e.g. "n/a" tokens) the next source
  is tried; a value is never invented.
- `operation` is gen_ai.operation.name lowercased when sent, otherwise the GenAI
  operation equivalent to the rule that set the category (None if there is none).
- Status and error fields come from core.failure, the taxonomy from core.errors,
  content strings from core.content; what one source sends in its own shape is read by
  core.vercel_ai, core.openinference and core.logfire, handoffs by core.handoffs.
- Identifier fields (service, agent, tool, provider, models, operation, session and
  user ids, error type) are capped at IDENTIFIER_MAX_CHARS characters (and
  IDENTIFIER_MAX_BYTES UTF-8 bytes) with a "…[truncated N chars]" marker, and the
  source key is listed in causeline.truncated: they are index and rollup keys, and
  PostgreSQL refuses index rows beyond ~2.7 kB. The raw attribute keeps the full value.
- Token counts are clamped at MAX_TOKENS: anything larger is garbage, and sums of it
  would overflow bigint rollups. The raw attribute keeps the value sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Mapping

from core import logfire, openinference, vercel_ai
from core.coerce import as_count, as_money, as_str, first_str
from core.content import FLAT_PREFIXES, LOGFIRE_TEMPLATE, extract_content, logfire_content, scan_attributes
from core.failure import span_failure, status_from_code
from core.handoffs import SOURCE_KEYS as _HANDOFF_SOURCE_KEYS, TARGET_KEYS as _HANDOFF_TARGET_KEYS, Handoff, handoff
from core.span import RawSpan, Span, Tokens

TRUNCATED_ATTR = "causeline.truncated"  # same key as core.otlp uses for cut values
IDENTIFIER_MAX_CHARS = 256
# Five identifiers form one usage_rollups key: 5 x (400 + marker) bytes stays well under
# PostgreSQL's ~2.7 kB btree row limit even for 4-byte characters.
IDENTIFIER_MAX_BYTES = 400
MAX_TOKENS = 10**12  # per count and span; a trillion tokens in one call is not usage

# --- category: first rule that matches wins ---------------------------------

# gen_ai.operation.name → category. The last four are non-spec values seen in the wild
# ("handoff": OpenLLMetry's OpenAI Agents handoff spans).
_OPERATION_CATEGORY: dict[str, str] = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm",
    "embeddings": "embedding", "retrieval": "retrieval", "execute_tool": "tool",
    "invoke_agent": "agent", "create_agent": "agent", "invoke_workflow": "workflow",
    "plan": "routing", "route": "routing", "apply_guardrail": "guardrail",
    "agent_handoff": "tool", "guardrail_check": "guardrail", "response": "llm", "handoff": "tool",
}
_SPEC_OPERATIONS = frozenset(_OPERATION_CATEGORY) - {"agent_handoff", "guardrail_check", "response", "handoff"}

# Other conventions' span kinds → (category, equivalent GenAI operation).
_OPENINFERENCE_KIND: dict[str, tuple[str, str | None]] = {
    "LLM": ("llm", "chat"), "EMBEDDING": ("embedding", "embeddings"),
    "CHAIN": ("workflow", "invoke_workflow"), "RETRIEVER": ("retrieval", "retrieval"),
    "RERANKER": ("retrieval", None), "TOOL": ("tool", "execute_tool"),
    "AGENT": ("agent", "invoke_agent"), "GUARDRAIL": ("guardrail", "apply_guardrail"),
    # Evaluators judge outputs like guardrails do; a prompt template render is no model call.
    "EVALUATOR": ("guardrail", None), "PROMPT": ("other", None),
    # UNKNOWN is deliberately absent: it says nothing, so later rules still apply.
}
_CHAIN = _OPENINFERENCE_KIND["CHAIN"]
_TRACELOOP_KIND: dict[str, tuple[str, str | None]] = {
    "workflow": ("workflow", "invoke_workflow"), "task": ("workflow", None),
    "agent": ("agent", "invoke_agent"), "tool": ("tool", "execute_tool"),
    "handoff": ("tool", None),
}
_LLM_REQUEST_TYPE: dict[str, tuple[str, str | None]] = {
    "chat": ("llm", "chat"), "completion": ("llm", "text_completion"),
    "embedding": ("embedding", "embeddings"), "rerank": ("retrieval", None),
}
_KIND_RULES = (
    (vercel_ai.OPERATION_ID, vercel_ai.OPERATIONS, str.lower),
    (openinference.SPAN_KIND, _OPENINFERENCE_KIND, str.upper),
    ("traceloop.span.kind", _TRACELOOP_KIND, str.lower),
    ("llm.request.type", _LLM_REQUEST_TYPE, str.lower),
    (logfire.SDK_SPAN_TYPE, logfire.SDK_SPAN_TYPES, str.lower),
)

# Span names: pydantic-ai < 1.0 exact names, then Logfire templates (the OTLP
# span name is the template, e.g. "Agent run: {name!r}").
_NAME_EXACT: dict[str, tuple[str, str | None]] = {
    "agent run": ("agent", "invoke_agent"),
    "running tool": ("tool", "execute_tool"),
}
_NAME_PREFIXES: tuple[tuple[str, str, str | None], ...] = (
    ("Agent run:", "agent", "invoke_agent"),
    ("Function:", "tool", "execute_tool"),
    ("Handoff:", "tool", None),
    ("Responses API", "llm", "chat"),
    ("Chat completion with", "llm", "chat"),
    ("Chat Completion with", "llm", "chat"),
    ("Embedding Creation with", "embedding", "embeddings"),
    ("Guardrail ", "guardrail", "apply_guardrail"),
    ("OpenAI Agents trace:", "workflow", "invoke_workflow"),
)
_NAME_PREFIX_TUPLE = tuple(prefix for prefix, _, _ in _NAME_PREFIXES)

# --- fields: first readable source wins (newest convention first) -----------

_PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_PROVIDER_ALIASES = {
    "az.ai.inference": "azure.ai.inference", "az.ai.openai": "azure.ai.openai",
    "vertex_ai": "gcp.vertex_ai", "vertexai": "gcp.vertex_ai", "gemini": "gcp.gemini",
    "xai": "x_ai", "mistralai": "mistral_ai",
}
# llm.model_name is OpenInference's served model when llm.invocation_parameters names the
# requested one (see _models), else the only model name sent.
_REQUEST_MODEL_KEYS = ("gen_ai.request.model", "llm.request.model_name")
_REQUEST_MODEL_FALLBACK_KEYS = (openinference.MODEL_NAME, *vercel_ai.REQUEST_MODEL_KEYS)
_RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name")
_INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
    *vercel_ai.INPUT_TOKEN_KEYS,
)
_OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
    *vercel_ai.OUTPUT_TOKEN_KEYS,
)
_CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read", *vercel_ai.CACHE_READ_KEYS,
)
_CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write",
    *vercel_ai.CACHE_WRITE_KEYS,
)
_REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning", *vercel_ai.REASONING_KEYS,
)
_COST_COMPONENTS = "gen_ai.usage.cost."  # proposed: gen_ai.usage.cost.{total,input,output,...}
_COST_KEYS = ("gen_ai.usage.cost", "operation.cost", "llm.cost.total")
_AGENT_KEYS = ("gen_ai.agent.name", "agent.name", "agent_name")
_TOOL_KEYS = ("gen_ai.tool.name", "tool.name", *vercel_ai.TOOL_KEYS)
_SESSION_KEYS = ("gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id")
_USER_KEYS = ("user.id", "enduser.id", "traceloop.association.properties.user_id")
IDENTITY_KEYS = _SESSION_KEYS + _USER_KEYS  # erasure (core/erasure.py) replaces these values too

# (Tokens field index, key) in precedence order: one flat loop per span.
_TOKEN_SOURCES = tuple(
    (slot, key)
    for slot, keys in enumerate(
        (_INPUT_TOKEN_KEYS, _OUTPUT_TOKEN_KEYS, _CACHE_READ_KEYS, _CACHE_WRITE_KEYS, _REASONING_KEYS)
    )
    for key in keys
)
_NO_COUNTS = [None, None, None, None, None]
_SCAN_PREFIXES = (*FLAT_PREFIXES, _COST_COMPONENTS)
_AGGREGATE_CATEGORIES = frozenset({"agent", "workflow"})
_NO_TOKENS = Tokens()
_EMPTY: Mapping[str, Any] = {}


def normalize(raw: RawSpan) -> Span:
    """The canonical Span for one decoded span. Never raises."""
    try:
        return _normalize(raw)
    except Exception:  # a bug must degrade one span, never drop an ingest batch
        return _minimal_span(raw)


def _normalize(raw: RawSpan) -> Span:
    attributes = _mapping(raw.attributes)
    resource = _mapping(raw.resource)
    name = raw.name if isinstance(raw.name, str) else ""
    events = tuple(raw.events)

    category, operation = classify_category(attributes, name)
    flat, has_content = scan_attributes(attributes, _SCAN_PREFIXES)
    handed = handoff(attributes, operation, name, category)
    aggregate = category in _AGGREGATE_CATEGORIES

    status, error_type, error_class = span_failure(raw.status_code, raw.status_message, attributes, events, category)
    content_in = content_out = None
    if has_content or flat or events:
        content_in, content_out = extract_content(attributes, flat, events)
    if (content_in is None or content_out is None) and LOGFIRE_TEMPLATE in attributes:
        logfire_in, logfire_out = logfire_content(attributes)
        content_in, content_out = content_in or logfire_in, content_out or logfire_out
    request_model, response_model = _models(attributes)
    idents = [
        operation, error_type, as_str(resource.get("service.name")),
        _agent_name(attributes, category, name, handed), _tool_name(attributes, category, name, handed),
        provider(attributes), request_model, response_model,
        first_str(attributes, _SESSION_KEYS), first_str(attributes, _USER_KEYS),
    ]
    span_attributes = raw.attributes
    for value in idents:
        if value is not None and len(value) > IDENTIFIER_MAX_BYTES // 4:  # shorter fits in any encoding
            span_attributes = _cap_identifiers(idents, attributes, resource, span_attributes)
            break
    operation, error_type, service, agent, tool, provider_name, request_model, response_model, session, user = idents
    rendered = logfire.rendered_name(attributes, name) if logfire.MESSAGE in attributes else None
    return Span(
        trace_id=raw.trace_id, span_id=raw.span_id, parent_span_id=raw.parent_span_id, name=rendered or raw.name,
        otel_kind=raw.kind, category=category, operation=operation, start_ns=raw.start_ns, end_ns=raw.end_ns,
        status=status, status_message=as_str(raw.status_message), error_type=error_type, error_class=error_class,
        service_name=service, agent_name=agent, tool_name=tool, provider=provider_name,
        request_model=request_model, response_model=response_model,
        tokens=_NO_TOKENS if aggregate else tokens(attributes),
        session_id=session, user_id=user,
        input=content_in, output=content_out,
        attributes=span_attributes, events=raw.events, links=raw.links, resource=raw.resource,
        reported_cost_usd=None if aggregate else reported_cost(attributes, flat.get(_COST_COMPONENTS, ())),
    )


# Where each identifier (in _normalize's `idents` order) may come from, for causeline.truncated.
_IDENT_SOURCES: tuple[tuple[str, ...], ...] = (
    ("gen_ai.operation.name",), ("error.type",), ("service.name",),
    (*_AGENT_KEYS, *_HANDOFF_SOURCE_KEYS, "traceloop.entity.name", openinference.GRAPH_NODE_ID,
     openinference.TOOL_AGENT_ROLE, "input.value"),
    (*_TOOL_KEYS, *_HANDOFF_TARGET_KEYS, "traceloop.entity.name"),
    (*_PROVIDER_KEYS, vercel_ai.MODEL_PROVIDER), (*_REQUEST_MODEL_KEYS, *_REQUEST_MODEL_FALLBACK_KEYS),
    (*_RESPONSE_MODEL_KEYS, openinference.MODEL_NAME, *vercel_ai.RESPONSE_MODEL_KEYS), _SESSION_KEYS, _USER_KEYS,
)
_IDENT_FALLBACK = ("operation", "error_type", "service_name", "name", "name", "provider", "request_model",
                   "response_model", "session_id", "user_id")


def cap_identifier(text: str) -> str:
    """`text` cut to IDENTIFIER_MAX_CHARS characters / IDENTIFIER_MAX_BYTES bytes, with a marker."""
    if len(text) <= IDENTIFIER_MAX_CHARS and len(text.encode("utf-8", "surrogatepass")) <= IDENTIFIER_MAX_BYTES:
        return text
    kept = text[:IDENTIFIER_MAX_CHARS]
    encoded = kept.encode("utf-8", "surrogatepass")
    if len(encoded) > IDENTIFIER_MAX_BYTES:
        kept = encoded[:IDENTIFIER_MAX_BYTES].decode("utf-8", "ignore")
    return f"{kept}…[truncated {len(text) - len(kept)} chars]"


def _cap_identifiers(idents: list, attributes: Mapping[str, Any], resource: Mapping[str, Any], span_attributes):
    """Cap every identifier in place; returns the span's attributes, with the source keys of
    the cut ones added to causeline.truncated (a new dict: the raw one is not modified)."""
    cut: list[str] = []
    for index, value in enumerate(idents):
        if value is None:
            continue
        capped = cap_identifier(value)
        if capped is value:
            continue
        idents[index] = capped
        source = attributes if index != 2 else resource
        key = next((k for k in _IDENT_SOURCES[index] if as_str(source.get(k)) == value), None)
        if key is None and index == 0:
            key = next((k for k, _, _ in _KIND_RULES if k in attributes), None)
        cut.append(key or _IDENT_FALLBACK[index])
    if not cut:
        return span_attributes
    updated = dict(span_attributes) if isinstance(span_attributes, Mapping) else {}
    previous = updated.get(TRUNCATED_ATTR)
    previous = [k for k in previous if isinstance(k, str)] if isinstance(previous, list) else []
    updated[TRUNCATED_ATTR] = sorted({*previous, *cut})
    return updated


def _minimal_span(raw: RawSpan) -> Span:
    code = getattr(raw, "status_code", 0)
    return Span(
        trace_id=raw.trace_id, span_id=raw.span_id, parent_span_id=raw.parent_span_id, name=raw.name,
        otel_kind=raw.kind, category="other", operation=None, start_ns=raw.start_ns, end_ns=raw.end_ns,
        status=status_from_code(code), status_message=None,
        error_type=None, error_class=None, service_name=None, agent_name=None, tool_name=None, provider=None,
        request_model=None, response_model=None, tokens=_NO_TOKENS, session_id=None, user_id=None,
        input=None, output=None, attributes=raw.attributes, events=raw.events, links=raw.links,
        resource=raw.resource,
    )


# --- category ----------------------------------------------------------------

def classify_category(attributes: Mapping[str, Any], name: str) -> tuple[str, str | None]:
    """(category, operation) from the first convention that recognises the span."""
    sent = as_str(attributes.get("gen_ai.operation.name"))
    operation = sent.lower() if sent else None
    if operation in _OPERATION_CATEGORY:
        return _OPERATION_CATEGORY[operation], operation
    for key, table, fold_case in _KIND_RULES:
        kind = as_str(attributes.get(key))
        if kind is not None:
            hit = table.get(fold_case(kind))
            if hit is not None:
                if hit is _CHAIN and openinference.is_agent_run(attributes, name):
                    return "agent", operation or "invoke_agent"
                return hit[0], operation or hit[1]
    hit = _category_from_name(name)
    if hit is not None:
        return hit[0], operation or hit[1]
    return "other", operation


def _category_from_name(name: str) -> tuple[str, str | None] | None:
    exact = _NAME_EXACT.get(name)
    if exact is not None:
        return exact
    word, space, _ = name.partition(" ")
    word = word.lower()
    # "chat gpt-4o", "execute_tool search"; a bare word only when it cannot be
    # an ordinary word ("execute_tool" yes, "chat" no).
    if word in _SPEC_OPERATIONS and (space or "_" in word):
        return _OPERATION_CATEGORY[word], word
    if name.startswith(_NAME_PREFIX_TUPLE):
        for prefix, category, operation in _NAME_PREFIXES:
            if name.startswith(prefix):
                return category, operation
    return None


# --- names ------------------------------------------------------------------

def _agent_name(attributes: Mapping[str, Any], category: str, name: str, handed: Handoff | None) -> str | None:
    agent = first_str(attributes, _AGENT_KEYS)
    if agent is not None:
        return agent
    if handed is not None:  # the agent handing off
        return handed.source
    if openinference.SPAN_KIND in attributes:
        agent = openinference.agent_name(attributes, category, name)
        if agent is not None:
            return agent
    if category == "agent":
        return (
            _subject(name, ("invoke_agent", "create_agent"), "Agent run:", attributes.get("name"))
            or _traceloop_entity(attributes, "agent")
        )
    return None


def _tool_name(attributes: Mapping[str, Any], category: str, name: str, handed: Handoff | None) -> str | None:
    tool = first_str(attributes, _TOOL_KEYS)
    if tool is not None or category != "tool":
        return tool
    subject = _subject(name, ("execute_tool",), "Function:", attributes.get("name"))
    if subject is not None:
        return subject
    if handed is not None and handed.target is not None:  # no tool name: the target stands for it
        return handed.target
    return _traceloop_entity(attributes, "tool")


def _subject(name: str, operations: tuple[str, ...], logfire_prefix: str, logfire_value: Any) -> str | None:
    """The agent/tool a span name is about: "execute_tool {x}", Logfire "Function: {x}"."""
    word, space, rest = name.partition(" ")
    if space and word in operations:
        return as_str(rest)
    if name.startswith(logfire_prefix):
        subject = as_str(name[len(logfire_prefix):].strip().strip("'\""))
        if subject is not None and "{" not in subject:
            return subject
        return as_str(logfire_value)  # the name is a template: the value is an attribute
    return None


def _traceloop_entity(attributes: Mapping[str, Any], kind: str) -> str | None:
    if as_str(attributes.get("traceloop.span.kind")) == kind:
        return as_str(attributes.get("traceloop.entity.name"))
    return None


def provider(attributes: Mapping[str, Any]) -> str | None:
    # The AI SDK's gen_ai.system is "<provider>.<api>" ("openai.chat"): its own name says which part is which.
    name = vercel_ai.provider(attributes) if vercel_ai.MODEL_PROVIDER in attributes else None
    name = name or first_str(attributes, _PROVIDER_KEYS)
    if name is None:
        return None
    name = name.lower()
    return _PROVIDER_ALIASES.get(name, name)


def _models(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(requested, served) model."""
    request = first_str(attributes, _REQUEST_MODEL_KEYS)
    response = first_str(attributes, _RESPONSE_MODEL_KEYS)
    if openinference.MODEL_NAME in attributes:
        asked = openinference.requested_model(attributes) if request is None else None
        if asked is not None:  # then llm.model_name is the served model
            return asked, response or as_str(attributes.get(openinference.MODEL_NAME))
    if request is None:
        request = first_str(attributes, _REQUEST_MODEL_FALLBACK_KEYS)
    if response is None:
        response = first_str(attributes, vercel_ai.RESPONSE_MODEL_KEYS)
    return request, response


def step_name(attributes: Mapping[str, Any], name: str) -> str:
    """The name of the workflow step a workflow span stands for (cost and plan breakdowns)."""
    if not isinstance(attributes, Mapping):
        return name
    step = as_str(attributes.get("gen_ai.workflow.name"))
    if step is None:
        kind = as_str(attributes.get("traceloop.span.kind"))
        if kind == "workflow":
            step = as_str(attributes.get("traceloop.workflow.name")) or as_str(attributes.get("traceloop.entity.name"))
        elif kind == "task":
            step = as_str(attributes.get("traceloop.entity.name"))
        elif vercel_ai.OPERATION_ID in attributes:
            step = as_str(attributes.get(vercel_ai.FUNCTION_ID))
    return step or name


# --- usage and cost ----------------------------------------------------------

def tokens(attributes: Mapping[str, Any]) -> Tokens:
    """Token counts reported on this span; aggregated_usage.* is never read."""
    counts: list[int | None] = [None, None, None, None, None]
    for slot, key in _TOKEN_SOURCES:
        if counts[slot] is None:
            value = attributes.get(key)
            if value is not None:
                count = as_count(value)
                counts[slot] = count if count is None or count <= MAX_TOKENS else MAX_TOKENS
    if logfire.USAGE_RAW in attributes:
        logfire.raw_usage(attributes, counts)
        counts[2:] = [c if c is None or c <= MAX_TOKENS else MAX_TOKENS for c in counts[2:]]
    if counts == _NO_COUNTS:
        return _NO_TOKENS
    return Tokens(*counts)


def reported_cost(attributes: Mapping[str, Any], components: Iterable[tuple[str, Any]] = ()) -> Decimal | None:
    """USD cost the instrumentation reported, or None."""
    parts = dict(components)
    if parts:
        if "total" in parts:
            return as_money(parts["total"])
        amounts = [as_money(value) for value in parts.values()]
        # A garbage component would make the sum a silent under-count.
        if all(amount is not None for amount in amounts):
            return sum(amounts, Decimal(0))
    for key in _COST_KEYS:
        if key in attributes:
            amount = as_money(attributes[key])
            if amount is not None:
                return amount
    return None


# --- small helpers -------------------------------------------------------------

def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):  # the type check skips the slow ABC check
        return value
    return _EMPTY
