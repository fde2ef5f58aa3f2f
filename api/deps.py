"""Per-request database session and the read-scope auth check for the JSON API.

Credentials, in order: an API key (`Authorization: Bearer <key>` or
`x-causeline-key: <key>`), then the UI session cookie, so the pages' "JSON" links
work in the browser. Every failure says precisely what was wrong: operators debug
exporters and scripts from these messages.
"""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from sqlalchemy.orm import Session

from core import security
from core.settings import Settings
from db.queries.auth import Principal, find_key, find_session_user, open_principal

SESSION_COOKIE = "causeline_session"
READ_SCOPE = "read"

# Declared only so OpenAPI (/docs) documents the three ways to authenticate and offers
# an "Authorize" button; the check below reads the raw headers to explain failures.
_bearer = HTTPBearer(auto_error=False, description="An API key with the `read` scope.")
_key_header = APIKeyHeader(name="x-causeline-key", auto_error=False, description="Same key, alternative header.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="UI login session.")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the API only reads, so it is closed (rolled back), never committed."""
    with request.app.state.sessionmaker() as session:
        yield session


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def require_read(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    settings: Annotated[Settings, Depends(get_settings)],
    _b: Annotated[object, Depends(_bearer)],
    _k: Annotated[object, Depends(_key_header)],
    _c: Annotated[object, Depends(_cookie)],
) -> Principal:
    if settings.auth_disabled:
        principal = open_principal(session, settings.init_project)
        if principal is None:
            raise HTTPException(503, detail=f"auth is disabled but project {settings.init_project!r} "
                                             "does not exist yet; run `causeline migrate` / `causeline serve` first")
        return principal

    authorization = request.headers.get("authorization")
    x_key = request.headers.get("x-causeline-key")
    key = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthorized("the Authorization header must be 'Bearer <api key>'")
        key = value.strip()
        if not key:
            raise _unauthorized("the Authorization header has the Bearer scheme but no key")
    elif x_key is not None:
        key = x_key.strip()
        if not key:
            raise _unauthorized("the x-causeline-key header is empty")

    if key is not None:
        found = find_key(session, key)
        if found is None:
            raise _unauthorized("unknown or revoked API key")
        if READ_SCOPE not in found.scopes:
            raise HTTPException(403, detail=f"API key {found.prefix}... lacks the 'read' scope "
                                             f"(it has: {', '.join(sorted(found.scopes)) or 'none'})")
        return Principal(found.project_id, found.scopes, f"key:{found.prefix}")

    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = find_session_user(session, token)
        if user is None:
            raise _unauthorized("the login session has expired or was logged out; log in again")
        if not user.project_ids:
            raise HTTPException(403, detail=f"user {user.email} is not a member of any project")
        return Principal(user.project_ids[0], frozenset(security.SCOPES), f"user:{user.email}")

    raise _unauthorized("no credentials: send 'Authorization: Bearer <api key>' or "
                        "'x-causeline-key: <api key>' with a key that has the 'read' scope, or log in")


ReadPrincipal = Annotated[Principal, Depends(require_read)]
DbSession = Annotated[Session, Depends(get_session)]
