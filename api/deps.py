"""Per-request database session and the read-scope auth check for the JSON API.

Credentials, in order: an API key (`Authorization: Bearer <key>` or
`x-causeline-key: <key>`), then the UI session cookie, so the pages' "JSON" links
work in the browser. Every failure says precisely what was wrong: operators debug
exporters and scripts from these messages.
"""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from sqlalchemy.orm import Session

from core import security
from core.settings import Settings
from db.queries.auth import (
    Principal, find_key, find_session_user, get_project_by_slug, member_project, open_principal,
)

SESSION_COOKIE = "causeline_session"
PROJECT_COOKIE = "causeline_project"  # the project last chosen in the UI with ?project=
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
    project: Annotated[str | None, Query(
        description="Project slug. A user in several projects picks one (default: the one last chosen in the "
                    "UI, else the first); a key reads only its own project (403 for another).")] = None,
) -> Principal:
    if settings.auth_disabled:
        if project and project != settings.init_project:
            raise HTTPException(403, detail=f"auth is disabled: only project {settings.init_project!r} is served")
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
        if project:
            chosen = get_project_by_slug(session, project)
            if chosen is None or chosen.id != found.project_id:
                raise HTTPException(403, detail=f"API key {found.prefix}... reads only its own project, "
                                                 f"not {project!r}")
        return Principal(found.project_id, found.scopes, f"key:{found.prefix}")

    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = find_session_user(session, token)
        if user is None:
            raise _unauthorized("the login session has expired or was logged out; log in again")
        if not user.project_ids:
            raise HTTPException(403, detail=f"user {user.email} is not a member of any project")
        project_id = user.project_ids[0]
        if project:
            project_id = member_project(session, user, project)
            if project_id is None:
                raise HTTPException(403, detail=f"user {user.email} is not a member of project {project!r}")
        elif remembered := request.cookies.get(PROJECT_COOKIE):
            project_id = member_project(session, user, remembered) or project_id  # stale cookie: the first
        return Principal(project_id, frozenset(security.SCOPES), f"user:{user.email}")

    raise _unauthorized("no credentials: send 'Authorization: Bearer <api key>' or "
                        "'x-causeline-key: <api key>' with a key that has the 'read' scope, or log in")


ReadPrincipal = Annotated[Principal, Depends(require_read)]
DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]
