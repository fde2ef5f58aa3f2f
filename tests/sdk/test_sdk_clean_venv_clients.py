"""Each client extra in a fresh virtual environment: ``pip install ./sdk[<extra>]``,
then the real client against a fake model server on loopback, with
``auto_instrument=[<name>]``. The call must become exactly one model-call span
(so never counted twice), a child of the calling agent's span, with provider,
model and token usage, and without the prompt (capture is off).

Needs PyPI (or a mirror pip is configured for); marked slow. Skipped, with
pip's reason, only when the extra cannot be installed here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from sdk_helpers import ANSWER, USAGE, FakeModelServer

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk"
PROMPT = "What is 6 x 7? Reply to jane@example.com"

PRELUDE = """
import json, sys
import causeline
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

BASE, NAME, PROMPT = sys.argv[1], sys.argv[2], sys.argv[3]
exporter = InMemorySpanExporter()
assert causeline.init(service_name="clients", exporter=exporter, auto_instrument=[NAME])
status = causeline.stats()["instrumentations"]
"""

EPILOGUE = """
causeline.shutdown()
stats = causeline.stats()
spans = [
    {
        "name": s.name,
        "scope": s.instrumentation_scope.name,
        "id": s.context.span_id,
        "parent": s.parent.span_id if s.parent else None,
        "attributes": dict(s.attributes),
    }
    for s in exporter.get_finished_spans()
]
print(json.dumps({"status": status, "stats": stats, "answer": answer, "spans": spans}, default=str))
"""

CALLS = {
    "anthropic": """
import anthropic
client = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test", max_retries=0)
with causeline.agent_run("caller"):
    answer = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
    ).content[0].text
""",
    "google_genai": """
from google import genai
from google.genai import types
client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=BASE))
with causeline.agent_run("caller"):
    answer = client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT).text
""",
    "litellm": """
import time
import litellm
with causeline.agent_run("caller"):
    answer = litellm.completion(
        model="openai/gpt-4o-mini", api_base=BASE + "/v1", api_key="sk-test",
        messages=[{"role": "user", "content": PROMPT}],
    ).choices[0].message.content
time.sleep(0.5)  # litellm reports from a background thread after the call
""",
}
EXTRAS = {"anthropic": "anthropic", "google_genai": "google-genai", "litellm": "litellm"}
MODELS = {"anthropic": "claude-sonnet-4-5", "google_genai": "gemini-2.5-flash", "litellm": "gpt-4o-mini"}


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("CAUSELINE_", "OTEL_", "ANTHROPIC_"))
    }
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm would fetch its price list at import
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # cwd outside the repository: nothing of the work tree may leak onto sys.path
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CALLS))
def test_client_extra_in_a_clean_venv(tmp_path, name):
    sdk = tmp_path / "sdk"
    shutil.copytree(SDK, sdk, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = str(env_dir / ("Scripts" if sys.platform == "win32" else "bin") / "python")
    install = _run(
        [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{sdk}[{EXTRAS[name]}]"],
        cwd=tmp_path,
        timeout=900,
    )
    if install.returncode != 0:
        reason = f"causeline[{EXTRAS[name]}] cannot be installed here: {install.stderr.strip()[-600:]}"
        print(reason)
        pytest.skip(reason)

    server = FakeModelServer()
    try:
        script = textwrap.dedent(PRELUDE) + textwrap.dedent(CALLS[name]) + textwrap.dedent(EPILOGUE)
        proc = _run([py, "-c", script, server.base_url, name, PROMPT], cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["status"][name] == "enabled", out["status"]
    assert out["answer"] == ANSWER
    assert server.paths, "the client never reached the fake server"
    spans = out["spans"]
    (agent,) = [s for s in spans if s["name"] == "invoke_agent caller"]
    calls = [s for s in spans if "gen_ai.usage.input_tokens" in s["attributes"]]
    assert len(calls) == 1, [(s["name"], s["scope"]) for s in spans]  # one call, one model-call span
    (call,) = calls
    attrs = call["attributes"]
    assert call["parent"] == agent["id"]
    assert attrs["gen_ai.usage.input_tokens"] == USAGE["input"]
    assert attrs["gen_ai.usage.output_tokens"] == USAGE["output"]
    assert attrs["gen_ai.request.model"] == MODELS[name]
    assert attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
    assert attrs.get("gen_ai.operation.name") in ("chat", "generate_content")
    # Capture is off: no prompt and no answer anywhere in what Causeline sends.
    blob = json.dumps(spans)
    assert "6 x 7" not in blob and "jane@example.com" not in blob and ANSWER not in blob
    stats = out["stats"]
    assert stats["spans_ended"] == stats["spans_exported"] == len(spans) + stats["spans_deduplicated"]
