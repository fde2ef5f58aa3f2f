"""Login glue for the pages: who is viewing, the session cookie, safe redirects, CSRF.

CSRF: the only state-changing requests are the login and logout POST forms. The
session cookie is SameSite=Lax, so browsers do not attach it to cross-site POSTs,
and on top of that every POST must carry an Origin (or, failing that, a Referer)
naming this very host; a form on another site can forge neither. Login needs the
Origin check itself (there is no cookie yet): it stops "login CSRF", where a
foreign page logs the victim into the attacker's account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterator
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from core.settings import Settings
from db.queries.auth import find_session_user, member_project, open_principal

SESSION_COOKIE = "causeline_session"
PROJECT_COOKIE = "causeline_project"  # same name as api.deps.PROJECT_COOKIE
DEFAULT_NEXT = "/traces"


@dataclass(frozen=True)
class Viewer:
    project_id: int | None  # None: logged in, but a member of no project
    email: str | None  # None when auth is disabled
    project_slug: str | None = None  # chosen with ?project= (now or earlier, from the cookie)


class LoginRequired(Exception):
    """Raised by require_viewer; mount() turns it into a redirect to /login?next=..."""


class ProjectForbidden(Exception):
    """?project= names a project the viewer is not a member of; mount() renders a 403 page."""

    def __init__(self, slug: str, email: str | None) -> None:
        super().__init__(slug)
        self.slug, self.email = slug, email


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


DbSession = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def current_viewer(request: Request, session: Session, settings: Settings) -> Viewer | None:
    """Who is viewing, and which project: `?project=<slug>` (a member's, else ProjectForbidden;
    remembered in a cookie by render()), else the project last chosen, else the first."""
    wanted = request.query_params.get("project")
    if settings.auth_disabled:
        if wanted and wanted != settings.init_project:
            raise ProjectForbidden(wanted, None)
        principal = open_principal(session, settings.init_project)
        return Viewer(principal.project_id if principal else None, None)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = find_session_user(session, token)
    if user is None:
        return None
    if wanted:
        project_id = member_project(session, user, wanted)
        if project_id is None:
            raise ProjectForbidden(wanted, user.email)
        request.state.chosen_project = wanted
        return Viewer(project_id, user.email, wanted)
    remembered = request.cookies.get(PROJECT_COOKIE)
    if remembered and (project_id := member_project(session, user, remembered)) is not None:
        return Viewer(project_id, user.email, remembered)
    return Viewer(user.project_ids[0] if user.project_ids else None, user.email)


def require_viewer(request: Request, session: DbSession, settings: AppSettings) -> Viewer:
    viewer = current_viewer(request, session, settings)
    if viewer is None:
        raise LoginRequired()
    return viewer


CurrentViewer = Annotated[Viewer, Depends(require_viewer)]


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


def project_forbidden_handler(request: Request, exc: ProjectForbidden) -> Response:
    from web.render import render

    return render(request, "error.html", {
        "viewer": None, "title": "Not your project",
        "message": f"{exc.email or 'This account'} is not a member of project “{exc.slug}”.",
    }, status_code=403)


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


def same_origin(request: Request) -> bool:
    """The POST came from one of our own pages (see the module docstring).

    Compares host[:port] only, not the scheme, so it also holds behind a TLS-terminating
    proxy — as long as the proxy passes the original Host header through."""
    host = request.headers.get("host")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not host or not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.session_days * 86400, path="/",
        httponly=True, samesite="lax", secure=settings.secure_cookies,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
    response.delete_cookie(PROJECT_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
