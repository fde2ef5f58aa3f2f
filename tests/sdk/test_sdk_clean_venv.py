"""The SDK installs and works alone: a fresh virtual environment, ``pip install ./sdk``,
nothing but its three OpenTelemetry dependencies (and theirs). Then the
``openai`` extra, whose pins must give a working instrumentation.

Needs PyPI (or a mirror pip is configured for); marked slow.
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
from sdk_helpers import StubCollector

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk"
DIRECT = {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"}

# Walks the installed requirement graph from "causeline" (markers evaluated
# without extras), using only the standard library.
WALK = textwrap.dedent(
    r"""
    import json, re, sys, platform, os
    from importlib import metadata

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    env = {
        "python_version": "%d.%d" % sys.version_info[:2],
        "python_full_version": platform.python_version(),
        "sys_platform": sys.platform,
        "platform_system": platform.system(),
        "os_name": os.name,
        "implementation_name": sys.implementation.name,
        "platform_python_implementation": platform.python_implementation(),
        "platform_machine": platform.machine(),
        "extra": "",
    }

    def marker_ok(marker):
        if not marker:
            return True
        if "extra" in marker:
            return False
        expr = marker.replace('"', "'")
        for key, value in env.items():
            expr = re.sub(r"\b%s\b" % key, repr(value), expr)
        expr = re.sub(r"'(\d+(?:\.\d+)*)'\s*(<=|>=|<|>|==|!=)\s*'(\d+(?:\.\d+)*)'",
                      lambda m: "(%r %s %r)" % (tuple(map(int, m.group(1).split("."))), m.group(2),
                                                 tuple(map(int, m.group(3).split(".")))), expr)
        try:
            return bool(eval(expr, {}))
        except Exception:
            return True

    def requires(dist):
        out = []
        for req in metadata.requires(dist) or []:
            spec, _, marker = req.partition(";")
            name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip()).group(0)
            if marker_ok(marker.strip()):
                out.append(norm(name))
        return out

    direct = requires("causeline")
    seen, todo = set(), list(direct)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(requires(name))
        except metadata.PackageNotFoundError:
            pass
    installed = {norm(d.metadata["Name"]) for d in metadata.distributions()}
    print(json.dumps({"direct": sorted(direct), "closure": sorted(seen), "installed": sorted(installed)}))
    """
)


_CWD: list[Path] = [Path("/")]


def _venv_python(path: Path) -> Path:
    return path / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def _run(args: list[str], timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # cwd outside the repository: nothing of the work tree may leak onto sys.path
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("CAUSELINE_")
    }
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd or _CWD[0], env=env)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_sdk_installs_and_runs_alone_then_with_openai_extra(tmp_path):
    _CWD[0] = tmp_path
    # Build from a copy: a non-editable install writes build/ next to the sources.
    sdk = tmp_path / "sdk"
    shutil.copytree(SDK, sdk, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = str(_venv_python(env_dir))
    _run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(sdk)], timeout=600)

    # Only the three OpenTelemetry packages and what they themselves need.
    graph = json.loads(_run([py, "-c", WALK]).stdout)
    assert set(graph["direct"]) == DIRECT
    extra = set(graph["installed"]) - set(graph["closure"]) - {"causeline", "pip", "setuptools", "wheel"}
    assert not extra, f"unexpected packages in a plain SDK install: {sorted(extra)}"
    assert not any(name.startswith(("openai", "opentelemetry-instrumentation")) for name in graph["installed"])

    # It imports and exports over real OTLP/HTTP to a loopback collector.
    stub = StubCollector()
    try:
        code = textwrap.dedent(
            """
            import sys, causeline
            assert causeline.init(service_name="clean-venv", endpoint=sys.argv[1], api_key="k")
            assert causeline.stats()["instrumentations"].get("openai") == "missing"

            @causeline.tool("ping")
            def ping():
                return "pong"

            with causeline.agent_run("alone"):
                ping()
            causeline.shutdown()
            print(causeline.stats()["spans_exported"])
            """
        )
        out = _run([py, "-c", code, stub.endpoint]).stdout.split()
        assert out[-1] == "2"
        assert sorted(s.name for s in stub.spans) == ["execute_tool ping", "invoke_agent alone"]
    finally:
        stub.close()

    # The overhead benchmark runs with only the SDK installed.
    bench = _run([py, str(REPO / "bench" / "sdk_overhead.py"), "--calls", "2000", "--repeats", "3"])
    result = json.loads(bench.stdout.strip().splitlines()[-1])
    assert set(result) == {"instrumented_us", "bare_us", "ratio"}

    # The pinned openai extra installs and its instrumentation enables.
    _run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{sdk}[openai]"], timeout=600)
    code = textwrap.dedent(
        """
        import causeline
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        causeline.init(exporter=InMemorySpanExporter(), auto_instrument=["openai"])
        print(causeline.stats()["instrumentations"]["openai"])
        """
    )
    assert _run([py, "-c", code]).stdout.split()[-1] == "enabled"
