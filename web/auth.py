"""Login glue for the pages: refusals as pages, the session cookie, safe redirects.

Who may see what is decided in access/ (core/permissions.py); CSRF checks live in
access/csrf.py.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from access.credentials import PROJECT_COOKIE, SESSION_COOKIE
from access.deps import get_session, get_settings, principal_of, requires
from access.resolver import Denied
from core.permissions import Permission, Principal
from core.settings import Settings

DEFAULT_NEXT = "/overview"


class LoginRequired(Exception):
    """Raised when a page needs a login; mount() turns it into a redirect to /login?next=..."""


class PageForbidden(Exception):
    """A logged-in user may not see this page (not their project, or not their role): a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def page_denied(request: HTTPConnection, refused: Denied) -> Exception:
    if refused.status == 401 and not request.headers.get("authorization") and not request.headers.get("x-causeline-key"):
        return LoginRequired()
    return PageForbidden(refused.message)


def page_requires(permission: Permission):
    """The pages' dependency for `permission` (access's, with refusals as pages); remembers a
    project chosen with ?project= so links and the JSON API stay in it."""
    check = requires(permission, page_denied)

    def dependency(request: Request, principal: Principal = Depends(check)) -> Principal:  # `check` is local
        if request.query_params.get("project"):
            request.state.chosen_project = principal.project_slug
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]
CurrentViewer = Annotated[Principal, Depends(page_requires(Permission.READ))]


def current_viewer(request: Request, session: Session, settings: Settings) -> Principal | None:
    """Who is logged in, or None (the login page uses this to skip itself)."""
    try:
        return principal_of(request, session, settings)
    except Denied:
        return None


def login_required_handler(request: Request, exc: LoginRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        # An htmx fragment request: a 3xx would be followed by the XHR and the login page
        # swapped into the fragment slot; ask htmx for a full navigation instead.
        page = request.headers.get("hx-current-url") or target
        parts = urlsplit(page)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return Response(status_code=401, headers={"HX-Redirect": f"/login?next={quote(safe_next(target), safe='')}"})
    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}", status_code=303)


def page_forbidden_handler(request: Request, exc: PageForbidden) -> Response:
    from web.render import render

    if request.headers.get("hx-request"):
        return Response(exc.message, status_code=403, media_type="text/plain")
    return render(request, "error.html", {"viewer": None, "title": "Not allowed", "message": exc.message},
                  status_code=403)


def safe_next(value: str | None) -> str:
    """A local path to go to after login, or the default. Refuses anything a browser could
    read as another origin: absolute URLs, scheme-relative `//host`, backslash tricks
    (`/\\host` is `//host` to browsers) and control characters."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.session_days * 86400, path="/",
        httponly=True, samesite="lax", secure=settings.secure_cookies,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
    response.delete_cookie(PROJECT_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
