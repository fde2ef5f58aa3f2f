"""The demo agent, the docs' example and the attribute reference stay true."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sdk_helpers import StubCollector

from causeline import attributes as A

REPO = Path(__file__).resolve().parents[2]
ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSELINE_", "OTEL_"))}


def _attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = list(v.array_value.values) if kind == "array_value" else getattr(v, kind)
    return out


def test_demo_agent_end_to_end_over_otlp(stub_collector: StubCollector):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "demo_agent.py"),
            "--endpoint",
            stub_collector.endpoint,
            "--api-key",
            "cl_demo",
            "--runs",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV_CLEAN,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    spans = stub_collector.spans
    match = re.search(r"(\d+) spans created, (\d+) exported, (\d+) not delivered", proc.stdout)
    assert match, proc.stdout
    assert int(match.group(1)) == int(match.group(2)) == len(spans) > 100
    assert match.group(3) == "0"

    attrs = [_attrs(s) for s in spans]
    operations = collections.Counter(a.get("gen_ai.operation.name") for a in attrs)
    assert {"invoke_agent", "invoke_workflow", "execute_tool", "chat", "route", "apply_guardrail"} <= set(operations)
    links = collections.Counter(
        {kv.key: kv.value.string_value for kv in link.attributes}.get("causeline.link.type")
        for s in spans
        for link in s.links
    )
    assert {"retry_of", "fallback_of", "handoff_from", "data_from"} <= set(links)
    errors = {a["error.type"].rsplit(".", 1)[-1] for a in attrs if "error.type" in a}
    assert {"ProviderTimeout", "RateLimitError", "OrderNotFound", "PaymentGatewayError", "guardrail_blocked"} <= errors
    providers = {a.get("gen_ai.provider.name") for a in attrs} - {None}
    assert providers == {"openai", "anthropic"}
    assert {a.get("gen_ai.request.model") for a in attrs} >= {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"}
    chats = [a for a in attrs if a.get("gen_ai.operation.name") == "chat" and "gen_ai.usage.input_tokens" in a]
    assert all(a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0 for a in chats)
    blob = json.dumps(attrs, default=str)
    assert "4111 1111 1111 1111" not in blob and "@example.com" not in blob  # redacted content
    assert "[REDACTED_CARD]" in blob or "[REDACTED_EMAIL]" in blob
    fallbacks = [a for a in attrs if a.get("causeline.attempt", 0) >= 2]
    assert fallbacks
    assert stub_collector.resources[0]["service.name"] == "causeline-demo"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_sdk_docs_complete_example_runs(stub_collector: StubCollector, tmp_path):
    doc = (REPO / "docs" / "sdk.md").read_text()
    marker = "<!-- complete-example -->"
    assert marker in doc
    example = _python_blocks(doc.split(marker, 1)[1])[0]
    script = tmp_path / "example.py"
    script.write_text(example)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV_CLEAN, "CAUSELINE_ENDPOINT": stub_collector.endpoint, "CAUSELINE_API_KEY": "cl_docs"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    names = {s.name for s in stub_collector.spans}
    assert {"invoke_agent support", "route model-router", "chat gpt-4o-mini", "execute_tool lookup_order"} <= names


def test_every_emitted_attribute_is_documented():
    doc = (REPO / "docs" / "conventions.md").read_text()
    names = [
        value
        for key, value in vars(A).items()
        if key.isupper() and isinstance(value, str) and "." in value and not key.startswith(("OP_", "LINK_"))
    ]
    assert len(names) > 40
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"attributes missing from docs/conventions.md: {missing}"
    for value in [*A.LINK_TYPES, *A.GUARDRAIL_ACTIONS, A.OP_ROUTE, A.OP_APPLY_GUARDRAIL]:
        assert f"`{value}`" in doc
