"""GET/POST /login and POST /logout (CSRF reasoning in web/auth.py, throttling in web/login_guard.py)."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from pages.params import has_nul
from access.audit import client_addr
from access.csrf import same_origin
from db.queries.audit import append
from db.queries.auth import authenticate_user, create_user_session, delete_user_session, find_session_user
from web.auth import (
    SESSION_COOKIE, AppSettings, DbSession, clear_session_cookie, current_viewer, safe_next,
    set_session_cookie,
)
from web.oidc_client import display_name
from web.render import render

router = APIRouter()


def login_page(request: Request, *, next_path: str, email: str = "", error: str | None = None, status: int = 200):
    """The login form (also the single sign-on's error page: web/routes_oidc.py)."""
    return render(request, "login.html", {"next": next_path, "email": email, "error": error, "viewer": None,
                                          "sso": display_name(request.app.state.settings)}, status_code=status)


@router.get("/login")
def login_form(request: Request, session: DbSession, settings: AppSettings, next: str = ""):
    next_path = safe_next(next)
    if current_viewer(request, session, settings) is not None:
        return RedirectResponse(next_path, status_code=303)
    return login_page(request, next_path=next_path)


@router.post("/login")
async def login_submit(
    request: Request,
    email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "",
):
    # async on purpose: the throttling decisions below run on the event loop, and only an
    # admitted password check takes a worker thread (see web/login_guard.py).
    settings = request.app.state.settings
    guard = request.app.state.login_guard
    next_path = safe_next(next)
    if not same_origin(request):
        return login_page(request, next_path=next_path, email=email, status=403,
                           error="This login form was not submitted from this site. Reload the page and try again.")
    ip = request.client.host if request.client else "unknown"
    email_key = email.strip().lower()
    if (refusal := guard.refuse(ip, email_key)) is None and email and password and not has_nul(email):
        if not guard.try_acquire():
            refusal = guard.busy()
        else:
            try:
                token = await to_thread.run_sync(_authenticate, request.app.state.sessionmaker, email, password,
                                                 settings.session_days, client_addr(request))
            finally:
                guard.release()
            if token is not None:
                guard.succeeded(email_key, ip)
                response = RedirectResponse(next_path, status_code=303)
                set_session_cookie(response, token, settings)
                return response
    if refusal is not None:
        response = login_page(request, next_path=next_path, email=email, status=429, error=refusal.message)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    guard.failed(ip, email_key)
    if email and not has_nul(email) and refusal is None:
        await to_thread.run_sync(_record_failure, request.app.state.sessionmaker, email_key, client_addr(request))
    # One message for unknown email and wrong password: do not reveal which accounts exist.
    # (An email holding NUL cannot exist: PostgreSQL text has no NUL; it is not looked up.)
    return login_page(request, next_path=next_path, email=email, status=401, error="Wrong email or password.")


def _authenticate(sessionmaker, email: str, password: str, days: int, addr: str | None) -> str | None:
    """A new session token for valid credentials, else None (runs in a worker thread).
    A login is recorded in the audit trail's chain 0 (a user, not one project)."""
    with sessionmaker() as session:
        user = authenticate_user(session, email, password)
        if user is None:
            return None
        token = create_user_session(session, user.id, days=days)
        append(session, project_id=None, actor=f"user:{user.email}", action="login", client_addr=addr)
        session.commit()
        return token


def _record_failure(sessionmaker, email: str, addr: str | None) -> None:
    with sessionmaker.begin() as session:
        append(session, project_id=None, actor="anonymous", action="login", target=email[:320], outcome="failed",
               client_addr=addr)


@router.post("/logout")
def logout(request: Request, session: DbSession, settings: AppSettings):
    if not same_origin(request):
        return Response("Cross-site logout refused.", status_code=403, media_type="text/plain")
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = find_session_user(session, token)
        delete_user_session(session, token)
        if user is not None:
            append(session, project_id=None, actor=f"user:{user.email}", action="logout",
                   client_addr=client_addr(request))
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response
