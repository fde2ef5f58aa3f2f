"""Engines and sessions from the plain postgresql:// URLs users already have."""

from __future__ import annotations

import logging

import psycopg
from sqlalchemy import Engine, Select, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def sqlalchemy_url(url: str) -> str:
    """postgresql://... (or postgres://) -> the psycopg 3 dialect; unix-socket ?host= kept as is."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same database as a libpq URL, for psycopg.connect() (the batch writer, COPY)."""
    parsed = make_url(sqlalchemy_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    return create_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def plain_rows(session: Session, query: Select) -> list[tuple]:
    """The rows of `query` as plain tuples, read by the driver's own cursor in the session's
    transaction, in binary. For reads of many thousand rows walked in Python (the span tree of
    a large trace): SQLAlchemy's Row objects cost more to make and to read than the query
    itself. Only for columns the driver returns as they are (bytes, integers, text, times) and
    for parameters it adapts by itself (plain comparisons and LIMIT; not IN lists, JSON or
    ranges, which SQLAlchemy would expand or convert). Errors are raised as SQLAlchemy's
    (DBAPIError), as from session.execute. SQLAlchemy's events do not see this read: it is
    logged here instead (DEBUG, with `statement` and `parameters` on the record)."""
    compiled = query.compile(dialect=session.get_bind().dialect)
    statement, parameters = compiled.string, compiled.params
    if log.isEnabledFor(logging.DEBUG):
        log.debug("plain rows: %s", statement, extra={"statement": statement, "parameters": parameters})
    try:
        with session.connection().connection.driver_connection.cursor(binary=True) as cursor:
            cursor.execute(statement, parameters)
            return cursor.fetchall()
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, parameters, error, psycopg.Error) from error
