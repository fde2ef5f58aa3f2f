"""GET/POST /login and POST /logout (CSRF reasoning in web/auth.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from db.queries.auth import authenticate_user, create_user_session, delete_user_session
from web.auth import (
    SESSION_COOKIE, AppSettings, DbSession, clear_session_cookie, current_viewer, safe_next, same_origin,
    set_session_cookie,
)
from web.render import render

router = APIRouter()


def _login_page(request: Request, *, next_path: str, email: str = "", error: str | None = None, status: int = 200):
    return render(request, "login.html", {"next": next_path, "email": email, "error": error, "viewer": None},
                  status_code=status)


@router.get("/login")
def login_form(request: Request, session: DbSession, settings: AppSettings, next: str = ""):
    next_path = safe_next(next)
    if current_viewer(request, session, settings) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path)


@router.post("/login")
def login_submit(
    request: Request, session: DbSession, settings: AppSettings,
    email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "",
):
    next_path = safe_next(next)
    if not same_origin(request):
        return _login_page(request, next_path=next_path, email=email, status=403,
                           error="This login form was not submitted from this site. Reload the page and try again.")
    user = authenticate_user(session, email, password) if email and password else None
    if user is None:
        # One message for unknown email and wrong password: do not reveal which accounts exist.
        return _login_page(request, next_path=next_path, email=email, status=401,
                           error="Wrong email or password.")
    token = create_user_session(session, user.id, days=settings.session_days)
    session.commit()
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, token, settings)
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession, settings: AppSettings):
    if not same_origin(request):
        return Response("Cross-site logout refused.", status_code=403, media_type="text/plain")
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        delete_user_session(session, token)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response
