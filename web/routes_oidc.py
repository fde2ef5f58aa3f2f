"""Single sign-on with OpenID Connect: GET /auth/oidc/start and GET /auth/oidc/callback.

The protocol is in web/oidc_client.py, what the claims mean in core/oidc_claims.py. The
sign-in's state, nonce and PKCE verifier wait for the callback in a short-lived HttpOnly
cookie of this browser (SameSite=Lax: it comes back on the provider's top-level redirect;
`__Host-` prefixed behind HTTPS, so no sibling subdomain can plant one). The callback's
`state` must equal the cookie's: that binds the answer to the browser that asked, so nobody
can log a victim into their own account (login CSRF).
"""

from __future__ import annotations

import base64
import hmac
import json

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError

from access.audit import client_addr
from core.oidc_claims import ClaimRefusal, RoleMap, parse_default_role, parse_role_map, role_for, verified_email
from core.permissions import Role
from core.settings import Settings
from db.queries.audit import append
from db.queries.auth import create_user_session, get_project_by_slug
from db.queries.members import sync_sso_member
from web.auth import safe_next, set_session_cookie
from web.oidc_client import OidcError, OidcProvider, configured
from web.routes_auth import login_page

router = APIRouter()

STATE_MAX_AGE_S = 600  # a sign-in must come back within 10 minutes


def _cookie_name(settings: Settings) -> str:
    return "__Host-causeline_oidc" if settings.secure_cookies else "causeline_oidc"


def _provider(request: Request) -> OidcProvider | None:
    """One provider per app (it caches the discovery document and the JWKS), made on first use."""
    settings = request.app.state.settings
    if not configured(settings):
        return None
    provider = getattr(request.app.state, "oidc_provider", None)
    if provider is None:
        provider = request.app.state.oidc_provider = OidcProvider(settings)
    return provider


def _redirect_uri(request: Request) -> str:
    return request.app.state.settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _not_configured(request: Request):
    return login_page(request, next_path=safe_next(None), status=404,
                      error="Single sign-on is not configured on this server.")


@router.get("/auth/oidc/start")
async def oidc_start(request: Request, next: str = ""):
    provider = _provider(request)
    if provider is None:
        return _not_configured(request)
    settings = request.app.state.settings
    try:
        auth = await provider.authorize(_redirect_uri(request))
    except OidcError as exc:
        return login_page(request, next_path=safe_next(next), status=exc.status, error=exc.message)
    pending = {"state": auth.state, "nonce": auth.nonce, "verifier": auth.code_verifier, "next": safe_next(next)}
    response = RedirectResponse(auth.url, status_code=302)
    response.set_cookie(_cookie_name(settings), base64.urlsafe_b64encode(json.dumps(pending).encode()).decode(),
                        max_age=STATE_MAX_AGE_S, path="/", httponly=True, samesite="lax",
                        secure=settings.secure_cookies)
    return response


def _pending(request: Request) -> dict | None:
    raw = request.cookies.get(_cookie_name(request.app.state.settings))
    try:
        pending = json.loads(base64.urlsafe_b64decode(raw.encode())) if raw else None
    except ValueError:
        return None
    if not isinstance(pending, dict) or not all(isinstance(pending.get(k), str)
                                                for k in ("state", "nonce", "verifier", "next")):
        return None
    return pending


@router.get("/auth/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "",
                        error_description: str = ""):
    provider = _provider(request)
    if provider is None:
        return _not_configured(request)
    settings = request.app.state.settings
    guard = request.app.state.login_guard
    ip = request.client.host if request.client else "unknown"
    pending = _pending(request)
    next_path = safe_next(pending["next"] if pending else None)
    # Failed sign-ins count against the address like failed passwords (web/login_guard.py): an
    # address that keeps failing is answered 429 without a look at the provider or the database.
    if (refusal := guard.refuse(ip, "")) is not None:
        response = login_page(request, next_path=next_path, status=429, error=refusal.message)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    email = None
    try:
        # Checked first, so the provider's error text (shown below) reaches only a browser that
        # started a sign-in: a crafted link cannot put its own words on this site's login page.
        if pending is None:
            raise OidcError("This sign-in was not started from this browser, or took longer than 10 minutes: "
                            "start again from the login page.")
        if error:
            raise OidcError(f"The identity provider refused the sign-in: {error[:200]}"
                            + (f" ({error_description[:300]})" if error_description else "") + ".", status=401)
        if not hmac.compare_digest(state.encode(), pending["state"].encode()):
            raise OidcError("The provider's answer does not belong to the sign-in this browser started "
                            "(state mismatch): start again from the login page.")
        if not code:
            raise OidcError("The identity provider sent no authorization code.")
        claims = await provider.finish(code=code, redirect_uri=_redirect_uri(request),
                                       code_verifier=pending["verifier"], nonce=pending["nonce"])
        email = verified_email(claims)
        role = role_for(claims, settings.oidc_role_claim, _role_map(settings))
        try:
            token = await to_thread.run_sync(_sign_in, request.app.state.sessionmaker, settings, email, role,
                                             client_addr(request))
        except IntegrityError:  # a parallel first sign-in of the same person created the user or membership
            token = await to_thread.run_sync(_sign_in, request.app.state.sessionmaker, settings, email, role,
                                             client_addr(request))
    except (OidcError, ClaimRefusal) as exc:
        message, status = (exc.message, exc.status) if isinstance(exc, OidcError) else (str(exc), 403)
        guard.failed(ip, "")
        await to_thread.run_sync(_record_failure, request.app.state.sessionmaker, email, message,
                                 client_addr(request))
        response = login_page(request, next_path=next_path, status=status, error=message)
    else:
        guard.succeeded(email, ip)
        response = RedirectResponse(next_path, status_code=303)
        set_session_cookie(response, token, settings)
    response.delete_cookie(_cookie_name(settings), path="/", httponly=True, samesite="lax",
                           secure=settings.secure_cookies)  # one answer per sign-in
    return response


def _role_map(settings: Settings) -> RoleMap:
    return RoleMap(parse_role_map(settings.oidc_role_map), parse_default_role(settings.oidc_default_role))


def _sign_in(sessionmaker, settings: Settings, email: str, role: Role | None, addr: str | None) -> str:
    """A UI session for `email`, its membership made to follow the provider (runs in a worker
    thread). Membership changes go to the project's audit chain, the login to chain 0, each in
    the same transaction as what it records. Raises OidcError (nothing is kept then)."""
    slug = settings.oidc_project or settings.init_project
    with sessionmaker() as session:
        project = get_project_by_slug(session, slug)
        if project is None:
            raise OidcError(f"Single sign-on is set up for project {slug!r}, which does not exist: "
                            "check CAUSELINE_OIDC_PROJECT.", status=500)
        sync = sync_sso_member(session, project.id, email, role)
        details = {"method": "oidc", "claim": settings.oidc_role_claim}
        if sync.created or (sync.old_role is None and sync.new_role is not None):
            append(session, project_id=project.id, actor="oidc", action="member.add", target=email,
                   details={**details, "role": sync.new_role}, client_addr=addr)
        elif sync.user_id is None and sync.old_role is not None and sync.kept is None:
            append(session, project_id=project.id, actor="oidc", action="member.remove", target=email,
                   details=details, client_addr=addr)
        elif sync.old_role != sync.new_role or sync.kept:
            append(session, project_id=project.id, actor="oidc", action="member.role", target=email,
                   outcome="refused" if sync.kept else "ok",
                   details={**details, "old": sync.old_role, "new": role.value if role else None,
                            **({"reason": sync.kept} if sync.kept else {})}, client_addr=addr)
        if sync.user_id is None:
            session.commit()  # the membership's removal stands; the login itself is refused
            raise OidcError(f"{email} has no Causeline role: the '{settings.oidc_role_claim}' claim holds none of "
                            "the values this server maps to a role. Ask your administrator for access.",
                            status=403)
        token = create_user_session(session, sync.user_id, days=settings.session_days)
        append(session, project_id=None, actor=f"user:{email}", action="login", client_addr=addr,
               details={"method": "oidc", "project": slug, "role": sync.new_role})
        session.commit()
        return token


def _record_failure(sessionmaker, email: str | None, reason: str, addr: str | None) -> None:
    with sessionmaker.begin() as session:
        append(session, project_id=None, actor="anonymous", action="login", target=email, outcome="failed",
               client_addr=addr, details={"method": "oidc", "reason": reason})
