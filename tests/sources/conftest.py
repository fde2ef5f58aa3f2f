"""Per-source tests: the real library, in a cached environment (venvs.py), runs its driver
(tests/fixtures/sources/record_*) against the driver's fake model server on loopback and exports
through the real OTLP/HTTP exporter to a real collector on loopback, into real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.collector.conftest import Collector, collector  # noqa: F401 (the fixture, shared)
from tests.sources import venvs

DRIVERS = Path(__file__).resolve().parents[1] / "fixtures" / "sources"


def _environment(name: str, make) -> Path:
    try:
        return make()
    except venvs.Unavailable as exc:
        reason = f"{name} cannot be installed here: {exc}"
        print(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sources_python() -> Path:
    return _environment("the Python sources' venv", venvs.python_env)


@pytest.fixture(scope="session")
def crewai_python() -> Path:
    return _environment("the CrewAI venv", venvs.crewai_env)


@pytest.fixture(scope="session")
def vercel_node_modules() -> Path:
    return _environment("the Vercel AI SDK (npm)", venvs.node_modules)


def run_driver(args: list[str], target: Collector, cwd: Path, extra_env: dict | None = None) -> dict:
    """Run a driver in export mode; returns what it printed last: {"versions", "served"}."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NODE_PATH")
           and not k.startswith(("OTEL_", "CAUSELINE_", "LOGFIRE_", "TRACELOOP_", "OPENAI_", "ANTHROPIC_"))}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": target.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{target.key}",
            "TRACELOOP_TELEMETRY": "false", **(extra_env or {})}
    # cwd outside the repository: nothing of the work tree may leak onto the driver's path
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
