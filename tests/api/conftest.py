from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from server.app import create_app


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, demo="off")


@pytest.fixture
def client(settings, engine):
    app = create_app(settings, engine=engine, parts=("api",))
    with TestClient(app) as client:
        yield client
