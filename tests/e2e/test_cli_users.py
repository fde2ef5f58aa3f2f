"""`causeline users ...` as an operator uses it, against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.settings import Settings
from db.engine import make_engine, make_sessionmaker
from db.queries.auth import authenticate_user, create_api_key, find_key, get_project_by_slug
from server.bootstrap import bootstrap
from tests.e2e.test_cli import causeline


@pytest.fixture
def bootstrapped(pg):
    url = pg.empty_database()
    assert causeline("migrate", database_url=url).returncode == 0
    engine = make_engine(url, pool_size=1)
    with make_sessionmaker(engine).begin() as session:
        bootstrap(session, Settings(database_url=url))
    yield url, engine
    engine.dispose()
    pg.drop(url)


def test_user_lifecycle(bootstrapped):
    url, engine = bootstrapped
    added = causeline("users", "add", "Ann@Example.com", "--role", "engineer", database_url=url)
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("password (shown once): ")[1].strip()
    with make_sessionmaker(engine)() as session:
        assert authenticate_user(session, "ann@example.com", password) is not None
    listed = causeline("users", "list", database_url=url).stdout
    assert "ann@example.com" in listed and "engineer" in listed and "admin@localhost" in listed

    # A key Ann creates is capped by her role, and dies with her membership.
    with make_sessionmaker(engine).begin() as session:
        project = get_project_by_slug(session, "default")
        ann_id = session.execute(text("select id from users where email = 'ann@example.com'")).scalar_one()
        key = create_api_key(session, project.id, name="ann's", scopes=["ingest", "read", "metrics"], created_by=ann_id)
    assert causeline("users", "role", "ann@example.com", "viewer", database_url=url).returncode == 0
    with make_sessionmaker(engine)() as session:
        record = find_key(session, key.secret)
        assert record.creator_role == "viewer"
    removed = causeline("users", "remove", "ann@example.com", database_url=url)
    assert removed.returncode == 0 and "revoked 1 key" in removed.stdout
    with make_sessionmaker(engine)() as session:
        assert find_key(session, key.secret) is None

    reset = causeline("users", "reset-password", "admin@localhost", database_url=url)
    new_password = reset.stdout.split("(shown once): ")[1].strip()
    with make_sessionmaker(engine)() as session:
        assert authenticate_user(session, "admin@localhost", new_password) is not None


@pytest.mark.parametrize("args, message", [
    (("users", "role", "admin@localhost", "viewer"), "last admin cannot be demoted"),
    (("users", "remove", "admin@localhost"), "last admin cannot be removed"),
    (("users", "add", "x@y.z", "--role", "owner"), "role must be one of admin, engineer, auditor, viewer"),
    (("users", "add", "not-an-email"), "is not an e-mail address"),
    (("users", "role", "nobody@y.z", "viewer"), "is not a member"),
])
def test_refusals_say_why(bootstrapped, args, message):
    url, _ = bootstrapped
    result = causeline(*args, database_url=url)
    assert result.returncode == 2 and message in result.stderr
