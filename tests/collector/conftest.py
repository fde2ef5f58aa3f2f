from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from collector.service import IngestService
from collector.writer import BatchWriter
from core.settings import Settings
from db.engine import libpq_url
from server.app import create_app
from tests.live import live_grpc, live_server


@dataclass
class Collector:
    url: str
    key: str  # ingest + read
    read_only_key: str
    project_id: int
    engine: Engine
    service: IngestService

    @property
    def traces_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def auth(self, key: str | None = None) -> dict:
        return {"authorization": f"Bearer {key or self.key}"}


def make_settings(database_url: str, **overrides) -> Settings:
    return Settings(database_url=database_url, demo="off", **overrides)


def start_collector(database_url, engine, sessionmaker, project, *, settings=None, writer=None, start_writer=True):
    settings = settings or make_settings(database_url)
    writer = writer or BatchWriter.from_settings(libpq_url(database_url), settings)
    # Decoded in the collector's threads unless the test asks for worker processes (faster start-up).
    service = IngestService(settings, sessionmaker, writer, processes=settings.ingest_processes or 0)
    if start_writer:
        service.start()
    app = create_app(settings, engine=engine, ingest=service, parts=("collector", "api"))
    return service, app


@pytest.fixture
def collector(database_url, engine, sessionmaker, project):
    project_id, key, read_only = project
    service, app = start_collector(database_url, engine, sessionmaker, project)
    with live_server(app) as url:
        yield Collector(url, key, read_only, project_id, engine, service)
    service.stop()


@dataclass
class GrpcCollector:
    target: str  # host:port
    key: str  # ingest + read
    read_only_key: str
    project_id: int
    engine: Engine
    service: IngestService

    @property
    def endpoint(self) -> str:
        return f"http://{self.target}"


@pytest.fixture
def grpc_collector(database_url, engine, sessionmaker, project):
    project_id, key, read_only = project
    service, _ = start_collector(database_url, engine, sessionmaker, project)
    with live_grpc(service) as target:
        yield GrpcCollector(target, key, read_only, project_id, engine, service)
    service.stop()
