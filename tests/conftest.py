from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.engine import make_engine, make_sessionmaker


@pytest.fixture(scope="session")
def pg():
    from tests.pg import TestPostgres

    server = TestPostgres()
    yield server
    server.close()


@pytest.fixture
def database_url(pg):
    """A freshly migrated, empty database for this test only."""
    url = pg.fresh_database()
    yield url
    pg.drop(url)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def session(sessionmaker) -> Session:
    with sessionmaker() as s:
        yield s


@pytest.fixture
def project(sessionmaker):
    """A project with an ingest+read key and a read-only key: (project_id, key, read_only_key)."""
    from db.queries.auth import create_api_key, create_project

    with sessionmaker.begin() as session:
        project = create_project(session, "acme")
        key = create_api_key(session, project.id, name="test", scopes=["ingest", "read"])
        read_only = create_api_key(session, project.id, name="reader", scopes=["read"])
    return project.id, key.secret, read_only.secret
