"""Alembic environment. The database URL is passed in by db.migrate (never read from alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from core.retention import is_partition
from db.engine import sqlalchemy_url
from db.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL: run migrations through `causeline migrate`")


def include_name(name, type_, parent_names) -> bool:
    # The partitions of spans are made by the server (db/partitions.py), not by the models.
    return not (type_ == "table" and name and is_partition(name))


def run_migrations_offline() -> None:
    context.configure(url=sqlalchemy_url(url), target_metadata=Base.metadata, literal_binds=True, compare_type=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True, include_name=include_name)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, compare_type=True, include_name=include_name)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
