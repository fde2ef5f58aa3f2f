"""The JSON API's side of access control: refusals as JSON, and the OpenAPI description.

Who may do what is decided in access/ from core/permissions.py; here only the rendering:
401 with `WWW-Authenticate: Bearer`, 403, each with a message saying precisely what was
wrong (operators debug exporters and scripts from these messages).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from access.credentials import KEY_HEADER, SESSION_COOKIE
from access.deps import get_session, get_settings, requires
from access.resolver import Denied
from core.permissions import Permission, Principal
from core.settings import Settings

# Declared only so OpenAPI (/docs) documents the three ways to authenticate and offers an
# "Authorize" button; access/ reads the raw headers itself to explain failures.
_bearer = HTTPBearer(auto_error=False, description="An API key (scopes: ingest, read, metrics).")
_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False, description="Same key, alternative header.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="UI login session.")


def json_denied(request: HTTPConnection, refused: Denied) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
    return HTTPException(refused.status, detail=refused.message, headers=headers)


def api_requires(permission: Permission):
    """The API's dependency for `permission`: access's, plus what OpenAPI should show."""
    check = requires(permission, json_denied)

    # Defaults, not Annotated[...]: annotations are strings here (PEP 563) and `check` is local.
    def dependency(
        principal: Principal = Depends(check),
        _b: object = Depends(_bearer),
        _k: object = Depends(_key_header),
        _c: object = Depends(_cookie),
        project: str | None = Query(
            None, description="Project slug. A user in several projects picks one (default: the one last chosen in "
                              "the UI, else the first); a key reads only its own project (403 for another)."),
    ) -> Principal:
        return principal

    return dependency


ReadPrincipal = Annotated[Principal, Depends(api_requires(Permission.READ))]
DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]
