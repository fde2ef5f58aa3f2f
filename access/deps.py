"""One FastAPI dependency per permission, for every edge.

`requires(permission, deny)` resolves the request's principal (access/resolver.py), checks
`permission` against core/permissions.py and returns the Principal, or raises what `deny`
makes of the refusal: each edge renders refusals its own way (JSON for the API, a login
redirect or an error page for the pages, an OTLP status for the collector, plain text for
/metrics) but none decides who may do what. The dependency carries `.permission`, so the
permission-matrix test can read every route's permission off the app.
"""

from __future__ import annotations

import functools
from typing import Awaitable, Callable, Iterator

import psycopg
from anyio import to_thread
from sqlalchemy.exc import SQLAlchemyError

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from core.permissions import Permission, Principal, denial
from core.settings import Settings
from core.ttl_cache import MISSING
from db.queries.auth import touch_key

from access.credentials import KEY_HEADER, BadCredentials, api_key, from_request
from access.keys import KeyCache
from access.resolver import Denied, key_principal, resolve

Deny = Callable[[HTTPConnection, Denied], Exception]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, shared by the dependencies and the handler of that request.
    Reads are rolled back at close; handlers that change something commit themselves."""
    with request.app.state.sessionmaker() as session:
        yield session


def principal_of(request: HTTPConnection, session: Session, settings: Settings) -> Principal:
    """Who is asking, for the project in `?project=` (or the remembered/first one). Raises Denied."""
    try:
        creds = from_request(request)
    except BadCredentials as exc:
        raise Denied(401, str(exc)) from None
    return resolve(session, settings, creds, request.query_params.get("project") or None)


def check(principal: Principal, permission: Permission) -> Principal:
    """The principal, if the table allows it `permission`; else Denied(403) saying why."""
    reason = denial(principal, permission)
    if reason is not None:
        raise Denied(403, reason)
    return principal


async def key_principal_for(keys: KeyCache, authorization: str | None, x_key: str | None,
                            permission: Permission) -> Principal:
    """A key's principal, if the table allows it `permission`; else Denied. For transports other
    than a FastAPI route too (OTLP/gRPC reads the same two headers from its metadata)."""
    try:
        secret = api_key(authorization, x_key)
    except BadCredentials as exc:
        raise Denied(401, str(exc)) from None
    if secret is None:
        raise Denied(401, f"missing API key: send 'Authorization: Bearer <key>' or '{KEY_HEADER}: <key>'")
    record = keys.cached(secret)
    if record is MISSING:  # a query: in a worker thread, so the event loop never waits on the database
        try:
            record = await to_thread.run_sync(keys.find, secret)
        except (SQLAlchemyError, psycopg.Error) as exc:  # the database's moment, not the client's fault
            raise Denied(503, f"storage is unavailable ({type(exc).__name__}); retry later") from None
    if record is None:
        raise Denied(401, "unknown or revoked API key")
    return check(key_principal(record), permission)


@functools.cache
def requires_key(permission: Permission, deny: Deny) -> Callable[..., Awaitable[Principal]]:
    """For the hot ingest path: keys only (no login), through the app's KeyCache: a fresh entry
    answers at once, a miss is looked up in a worker thread, so the event loop never waits on the
    database."""
    async def dependency(request: Request) -> Principal:
        try:
            principal = await key_principal_for(request.app.state.keys, request.headers.get("authorization"),
                                                request.headers.get(KEY_HEADER), permission)
        except Denied as refused:
            raise deny(request, refused) from None
        request.state.principal = principal
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.keys_only = True  # type: ignore[attr-defined]  # exporters, not browsers: a login cookie is no credential here
    dependency.__name__ = f"requires_key_{permission.value}"
    return dependency


@functools.cache
def requires(permission: Permission, deny: Deny) -> Callable[..., Principal]:
    def dependency(request: Request, session: Session = Depends(get_session)) -> Principal:
        try:
            principal = check(principal_of(request, session, request.app.state.settings), permission)
        except Denied as refused:
            raise deny(request, refused) from None
        if principal.key_id is not None:  # "last used" in Settings; at most one write a minute per key
            touch_key(session, principal.key_id)
            session.commit()
        request.state.principal = principal
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"requires_{permission.value}"
    return dependency
