from __future__ import annotations

import os

import pytest
from sqlalchemy.orm import Session

from db.engine import make_engine, make_sessionmaker


# Alert channel secrets are encrypted with this key in tests (alerts/secret_box.py), so no test
# writes a key file into the working tree's `.causeline/`; tests/alerts/test_secret_box.py passes
# secrets_key=None explicitly where it tests the key file.
os.environ.setdefault("CAUSELINE_SECRETS_KEY", "dGVzdC1rZXktZm9yLWNhdXNlbGluZS10ZXN0cy0wMDA=")


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


@pytest.fixture(autouse=True)
def _empty_otel_context():
    """Every test starts with no current span: a span context some earlier test of the same
    process left attached would otherwise become the parent of this test's root spans."""
    try:
        from opentelemetry import context
    except ImportError:  # the server's own dependencies do not include the OpenTelemetry API
        yield
        return
    token = context.attach(context.Context())
    yield
    try:
        context.detach(token)
    except Exception:  # noqa: BLE001 - the test itself left a context attached: nothing to restore
        pass
