"""Every benchmark under bench/ runs in CI as a smoke run on tiny data: it must finish and end
with its JSON line. No timing is asserted (the numbers of a tiny run on a shared CI machine mean
nothing); the point is that `make bench` keeps working as the code changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# script -> (tiny arguments, keys its last JSON line must have)
SMOKE: dict[str, tuple[list[str], set[str]]] = {
    "alerts.py": (["--traces", "300", "--rules", "20", "--runs", "1"], {"spans", "rules"}),
    "attribution.py": (["--sizes", "200,400", "--runs", "1", "--db"], {"results", "growth"}),
    "evaluation.py": (["--traces", "50", "--calls", "2"], set()),
    "ingest.py": (["--spans", "3000", "--clients", "2", "--batch", "200"],
                  {"spans_per_s", "copy_rows_per_s", "ratio", "peak_rss_mb"}),
    "pages.py": (["--spans", "300", "--runs", "1", "--fleet-traces", "300"], {"spans", "fleet_spans", "overview range=30d"}),
    "queries.py": (["--traces", "300,600", "--runs", "1"], {"curve", "growth", "spans_growth"}),
    "reports.py": (["--traces", "200", "--formats", "json,pdf", "--days", "30"], set()),
    "retention.py": (["--old", "2000", "--spans", "2000", "--clients", "2"], {"spans_per_s_alone"}),
    "sdk_overhead.py": (["--calls", "200", "--repeats", "1"], {"instrumented_us", "bare_us", "ratio"}),
    # Phoenix's half runs where /tmp/phoenix-venv has it, and is skipped (reason printed) elsewhere.
    "vs_phoenix.py": (["--traces", "10", "--clients", "2", "--timeout", "300"],
                      {"spans", "causeline_spans_per_s", "phoenix_spans_per_s", "ratio"}),
    # Without a model endpoint (CI) it says so and ends with {"skipped": ...}; with one, 1 run per subset.
    "whowhen.py": (["--limit", "1"], set()),
}


def test_every_benchmark_has_a_smoke_run():
    scripts = {p.name for p in (REPO / "bench").glob("*.py")} - {"benchdb.py", "__init__.py"}
    assert scripts == set(SMOKE), "add the new benchmark's tiny arguments to SMOKE"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE))
def test_a_benchmark_runs_on_tiny_data_and_ends_with_its_json_line(script, pg):
    arguments, keys = SMOKE[script]
    env = {**os.environ, "DATABASE_URL": pg.server_url}
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), *arguments], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert keys <= set(last), f"{script}'s last line lacks {keys - set(last)}: {last}"
