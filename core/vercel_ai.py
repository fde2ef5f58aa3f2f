"""Vercel AI SDK (npm `ai`, `experimental_telemetry`): what its spans mean.

Recorded from ai 6.0 (tests/fixtures/sources/vercel-ai-*.json). Every span carries
`ai.operationId`; the provider calls are the `do*` spans, the outer ones wrap them:

    ai.generateText ─┬─ ai.generateText.doGenerate   one model call (priced)
                     ├─ ai.toolCall                  one tool execution
                     └─ ai.generateText.doGenerate   ...

The outer spans (`ai.generateText`, `ai.streamText`, `ai.generateObject`, `ai.embed`, ...)
repeat the summed usage of their steps, so they are workflow spans: normalization drops
tokens on those, and each model call is counted once, on its `do*` span.
"""

from __future__ import annotations

from typing import Any, Mapping

from core.coerce import as_str

OPERATION_ID = "ai.operationId"
MODEL_PROVIDER = "ai.model.provider"
FUNCTION_ID = "ai.telemetry.functionId"  # experimental_telemetry.functionId: names the call site

# ai.operationId (lowercased) → (category, equivalent GenAI operation).
OPERATIONS: dict[str, tuple[str, str | None]] = {
    "ai.generatetext.dogenerate": ("llm", "chat"),
    "ai.streamtext.dostream": ("llm", "chat"),
    "ai.generateobject.dogenerate": ("llm", "chat"),
    "ai.streamobject.dostream": ("llm", "chat"),
    "ai.embed.doembed": ("embedding", "embeddings"),
    "ai.embedmany.doembed": ("embedding", "embeddings"),
    "ai.rerank.dorerank": ("retrieval", None),
    "ai.toolcall": ("tool", "execute_tool"),
    # Wrappers: their usage is the sum of the do* spans beneath.
    "ai.generatetext": ("workflow", None),
    "ai.streamtext": ("workflow", None),
    "ai.generateobject": ("workflow", None),
    "ai.streamobject": ("workflow", None),
    "ai.embed": ("workflow", None),
    "ai.embedmany": ("workflow", None),
    "ai.rerank": ("workflow", None),
}

# Token counts, by Tokens slot, in precedence order (ai 5/6 names, then ai 4 names).
INPUT_TOKEN_KEYS = ("ai.usage.inputTokens", "ai.usage.promptTokens", "ai.usage.tokens")
OUTPUT_TOKEN_KEYS = ("ai.usage.outputTokens", "ai.usage.completionTokens")
CACHE_READ_KEYS = ("ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens")
CACHE_WRITE_KEYS = ("ai.usage.inputTokenDetails.cacheWriteTokens",)
REASONING_KEYS = ("ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens")

REQUEST_MODEL_KEYS = ("ai.model.id",)
RESPONSE_MODEL_KEYS = ("ai.response.model",)
TOOL_KEYS = ("ai.toolCall.name",)
INPUT_KEYS = ("ai.prompt.messages", "ai.toolCall.args", "ai.toolCall.input", "ai.prompt")
OUTPUT_KEYS = (
    "ai.response.text", "ai.response.object", "ai.response.toolCalls", "ai.toolCall.result", "ai.toolCall.output",
)

# The SDK's provider string is "<provider>.<api>" ("openai.chat", "openai.responses",
# "anthropic.messages", "google.vertex.chat"); the API part is not the provider.
_PROVIDERS_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("google.vertex.", "gcp.vertex_ai"),
    ("vertex.", "gcp.vertex_ai"),
    ("google.", "gcp.gemini"),
    ("amazon-bedrock", "aws.bedrock"),
    ("azure", "azure.ai.openai"),
    ("mistral.", "mistral_ai"),
    ("xai.", "x_ai"),
)


def provider(attributes: Mapping[str, Any]) -> str | None:
    """The provider of an AI SDK span ("openai.responses" → "openai"), None when not one."""
    sent = as_str(attributes.get(MODEL_PROVIDER))
    if sent is None:
        return None
    sent = sent.lower()
    for prefix, name in _PROVIDERS_BY_PREFIX:
        if sent.startswith(prefix):
            return name
    return sent.partition(".")[0]
