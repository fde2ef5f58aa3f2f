"""One collector + database for the whole scenario module: the real SDK (in a subprocess)
and hand-made OTLP send every scenario through the real collector once; tests then read
the verdicts through the JSON API."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from sqlalchemy import text

from db.engine import make_engine, make_sessionmaker
from db.queries.auth import create_api_key, create_project
from tests.collector.conftest import start_collector
from tests.live import live_server
from tests.otlp_payloads import any_value

HERE = Path(__file__).resolve().parent


@dataclass
class Env:
    url: str
    key: str
    project_id: int
    engine: object
    sessionmaker: object
    roots: dict[str, str] = field(default_factory=dict)  # root span name -> trace id hex

    def get(self, path: str, **params) -> dict:
        response = httpx.get(f"{self.url}{path}", params=params, headers={"authorization": f"Bearer {self.key}"},
                             timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def attribution(self, root_name: str, **params) -> dict:
        return self.get(f"/api/traces/{self.roots[root_name]}/attribution", **params)

    def post_otlp(self, request) -> None:
        response = httpx.post(f"{self.url}/v1/traces", content=request.SerializeToString(), timeout=30,
                              headers={"authorization": f"Bearer {self.key}",
                                       "content-type": "application/x-protobuf"})
        assert response.status_code == 200, response.text

    def refresh_roots(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(text("select root_name, encode(trace_id, 'hex') from traces "
                                     "where root_name is not null")).all()
        self.roots = {name: tid for name, tid in rows}


def add_event(pb_span, name: str, time_ns: int, attributes: dict) -> None:
    event = pb_span.events.add(name=name, time_unix_nano=time_ns)
    event.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attributes.items())


@pytest.fixture(scope="module")
def scenario_env(pg):
    """Runs tests/forensics/agent_scenarios.py (SDK) and the hand-made OTLP scenarios once."""
    from tests.forensics import otlp_scenarios

    url = pg.fresh_database()
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        project = create_project(session, "forensics")
        key = create_api_key(session, project.id, name="test", scopes=["ingest", "read"])
    service, app = start_collector(url, engine, sessions, (project.id, key.secret, key.secret))
    try:
        with live_server(app) as base:
            env = Env(base, key.secret, project.id, engine, sessions)
            result = subprocess.run([sys.executable, str(HERE / "agent_scenarios.py"), base, key.secret],
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            for request in otlp_scenarios.requests(time.time_ns() - 60_000_000_000):
                env.post_otlp(request)
            env.refresh_roots()
            yield env
    finally:
        service.stop()
        engine.dispose()
        pg.drop(url)
