"""Every attribute name the Causeline SDK emits, in one place.

Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), the
general conventions (``error.type``, ``http.response.status_code``,
``service.name``) and Causeline's own ``causeline.*`` names. docs/conventions.md
documents each of them; a test checks that the two stay in step.
"""

from __future__ import annotations

# --- GenAI: common -------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
CONVERSATION_ID = "gen_ai.conversation.id"

# --- GenAI: agents and workflows -----------------------------------------
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
AGENT_DESCRIPTION = "gen_ai.agent.description"
WORKFLOW_NAME = "gen_ai.workflow.name"

# --- GenAI: model calls --------------------------------------------------
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"

# --- GenAI: tools and handoffs -------------------------------------------
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
TRANSFER_MODE = "gen_ai.transfer.mode"
TRANSFER_TARGET_NAME = "gen_ai.transfer.target.name"
TRANSFER_TARGET_TYPE = "gen_ai.transfer.target.type"

# --- General OpenTelemetry -----------------------------------------------
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
USER_ID = "user.id"
SERVICE_NAME = "service.name"
DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

# --- Causeline's own ----------------------------------------------------
ROUTE_ROUTER = "causeline.route.router"
ROUTE_CANDIDATES = "causeline.route.candidates"
ROUTE_CHOSEN = "causeline.route.chosen"
ROUTE_REASON = "causeline.route.reason"
ROUTE_POLICY = "causeline.route.policy"
ATTEMPT = "causeline.attempt"
LINK_TYPE = "causeline.link.type"
GUARDRAIL_NAME = "causeline.guardrail.name"
GUARDRAIL_PASSED = "causeline.guardrail.passed"
GUARDRAIL_ACTION = "causeline.guardrail.action"
POLICY_NAME = "causeline.policy.name"
POLICY_DECISION = "causeline.policy.decision"

# --- Values ---------------------------------------------------------------
OP_INVOKE_AGENT = "invoke_agent"
OP_INVOKE_WORKFLOW = "invoke_workflow"
OP_EXECUTE_TOOL = "execute_tool"
OP_CHAT = "chat"
OP_ROUTE = "route"
OP_APPLY_GUARDRAIL = "apply_guardrail"

LINK_RETRY_OF = "retry_of"
LINK_FALLBACK_OF = "fallback_of"
LINK_HANDOFF_FROM = "handoff_from"
LINK_DATA_FROM = "data_from"
LINK_CAUSED_BY = "caused_by"
LINK_FOLLOWS = "follows"
LINK_TYPES = frozenset(
    {LINK_RETRY_OF, LINK_FALLBACK_OF, LINK_HANDOFF_FROM, LINK_DATA_FROM, LINK_CAUSED_BY, LINK_FOLLOWS}
)

GUARDRAIL_ACTIONS = frozenset({"allow", "block", "retry", "fallback"})
TRANSFER_MODES = frozenset({"return_to_caller", "pass_control"})

# Attribute keys (and key prefixes) that carry prompt/completion content, from any
# instrumentation. Used to gate and redact third-party spans at export time.
CONTENT_KEYS = frozenset(
    {
        SYSTEM_INSTRUCTIONS,
        INPUT_MESSAGES,
        OUTPUT_MESSAGES,
        TOOL_CALL_ARGUMENTS,
        TOOL_CALL_RESULT,
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "input.value",
        "output.value",
        "tool.parameters",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
CONTENT_KEY_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
)
CONTENT_EVENT_NAMES = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
    }
)
