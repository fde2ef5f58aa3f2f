"""The `causeline` command as an operator uses it: migrate, then create, list and revoke keys."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import create_engine, text

from core.security import hash_key
from core.settings import Settings
from db.engine import make_engine, make_sessionmaker, sqlalchemy_url
from server.bootstrap import bootstrap


def causeline(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_migrate_then_key_lifecycle(pg):
    url = pg.empty_database()
    try:
        migrated = causeline("migrate", database_url=url)
        assert migrated.returncode == 0, migrated.stderr
        engine = make_engine(url, pool_size=1)
        with make_sessionmaker(engine).begin() as session:
            assert bootstrap(session, Settings(database_url=url)) is not None
            assert bootstrap(session, Settings(database_url=url)) is None  # only on first run
            trail = session.execute(text("SELECT actor, action FROM audit_events ORDER BY seq")).all()
            assert trail == [("system:first-run", "project.create"), ("system:first-run", "key.create"),
                             ("system:first-run", "member.add")]
        engine.dispose()

        created = causeline("keys", "create", "--name", "ci", "--scopes", "read,ingest", database_url=url)
        assert created.returncode == 0, created.stderr
        secret = created.stdout.split("secret (shown once): ")[1].strip()
        listed = causeline("keys", "list", database_url=url)
        assert secret[:11] in listed.stdout and secret not in listed.stdout
        assert "ingest,read" in listed.stdout

        bad = causeline("keys", "create", "--name", "x", "--scopes", "admin", database_url=url)
        assert bad.returncode == 2 and "scopes must be" in bad.stderr

        revoked = causeline("keys", "revoke", secret[:11], database_url=url)
        assert revoked.returncode == 0 and "revoked key" in revoked.stdout
        engine = create_engine(sqlalchemy_url(url))
        with engine.connect() as conn:
            row = conn.execute(text("select revoked_at is not null, key_hash from api_keys where name = 'ci'")).one()
        engine.dispose()
        assert row[0] and bytes(row[1]) == hash_key(secret)  # only the hash is stored
        assert causeline("keys", "revoke", "cl_nomatch", database_url=url).returncode == 1
    finally:
        pg.drop(url)


def test_price_overrides_cli(pg):
    url = pg.empty_database()
    try:
        assert causeline("migrate", database_url=url).returncode == 0
        engine = make_engine(url, pool_size=1)
        with make_sessionmaker(engine).begin() as session:
            bootstrap(session, Settings(database_url=url))
        engine.dispose()
        added = causeline("prices", "add", "--model", "gpt-4o*", "--input", "2.5", "--output", "10",
                          "--from", "2025-01-01", database_url=url)
        assert added.returncode == 0, added.stderr
        override_id = added.stdout.split("added override ")[1].split(":")[0]
        listed = causeline("prices", "list", database_url=url)
        assert "gpt-4o*" in listed.stdout and "in 2.5 out 10" in listed.stdout
        bad = causeline("prices", "add", "--model", "x", "--input", "-1", "--output", "1", database_url=url)
        assert bad.returncode == 2 and "invalid override" in bad.stderr
        assert causeline("prices", "remove", override_id, database_url=url).returncode == 0
        assert "gpt-4o*" not in causeline("prices", "list", database_url=url).stdout
    finally:
        pg.drop(url)
