"""`causeline serve` start-up as a user meets it: a busy port is one line naming the setting to
change, and the demo data is in before the first page is served."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from db.engine import sqlalchemy_url
from tests.e2e.test_kill9 import free_port

REPO = Path(__file__).resolve().parents[2]
KEY = "cl_startup-test-key-0123456789abcdef"


def serve_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUSELINE_") and k != "DATABASE_URL"}
    env.update(overrides)
    return env


@pytest.mark.parametrize("busy_setting", ["CAUSELINE_PORT", "CAUSELINE_OTLP_PORT", "CAUSELINE_GRPC_PORT"])
def test_a_busy_port_is_one_line_naming_the_setting(busy_setting):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {name: str(free_port()) for name in ("CAUSELINE_PORT", "CAUSELINE_OTLP_PORT", "CAUSELINE_GRPC_PORT")}
        ports[busy_setting] = str(busy.getsockname()[1])
        # An unreachable database: the port must be refused before the database is touched.
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "serve"], cwd=REPO, capture_output=True, text=True, timeout=60,
            env=serve_env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", **ports),
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {ports[busy_setting]} on 127.0.0.1 is already in use" in lines[0]
    assert f"set {busy_setting} to a free port" in lines[0]


@pytest.mark.slow
def test_the_demo_is_stored_before_the_first_request_is_answered(pg, tmp_path):
    database_url = pg.fresh_database()
    port, otlp_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"], cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env=serve_env(DATABASE_URL=database_url, CAUSELINE_PORT=str(port), CAUSELINE_OTLP_PORT=str(otlp_port),
                      CAUSELINE_GRPC_PORT=str(free_port()),
                      CAUSELINE_DEMO="on", CAUSELINE_INIT_API_KEY=KEY, CAUSELINE_INIT_ADMIN_PASSWORD="startup-admin",
                      CAUSELINE_HOME=str(tmp_path / "home")),
    )
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        first = None
        deadline = time.monotonic() + 240
        while first is None and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                first = httpx.get(f"http://127.0.0.1:{port}/api/traces?limit=5",
                                  headers={"Authorization": f"Bearer {KEY}"}, timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert first is not None, f"serve did not answer:\n{log.read_text()[-3000:]}"
        assert first.status_code == 200
        assert first.json()["traces"], "the first answer came before the demo data was in"
        assert "Demo data stored" in log.read_text()

        with engine.connect() as conn:
            first_start, last_start = conn.execute(text("select min(start_time), max(start_time) from traces")).one()
            changed = conn.execute(text(
                "select count(distinct response_model) from spans where request_model = 'gpt-4o'")).scalar_one()
            cross_trace = conn.execute(text(
                "select count(*) from span_edges where linked_trace_id <> trace_id")).scalar_one()
            timeouts = conn.execute(text(
                "select min(end_time - start_time) from spans where status_message like '%timed out after 30s%'"
                " and operation = 'chat'")).scalar_one()
            demo_key_revoked = conn.execute(text(
                "select bool_and(revoked_at is not null) from api_keys where name = 'demo loader'")).scalar_one()
        assert last_start - first_start > timedelta(days=6)  # a week of history, not one burst
        assert changed == 2  # the silent served-model change
        assert cross_trace > 0  # refund workers linked to the runs that queued them
        assert timeouts >= timedelta(seconds=30)  # a 30 s timeout lasts 30 s
        assert demo_key_revoked
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        engine.dispose()
        pg.drop(database_url)
