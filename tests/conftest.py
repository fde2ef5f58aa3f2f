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
