"""Settings: API keys, price overrides, members and retention of the current project.

Every change is a POST form: CSRF-checked (access/csrf.py), allowed by its own permission
(core/permissions.py), committed in one transaction, then answered with a redirect (so a
reload never repeats it) — except a new key, whose secret is shown once, in that response only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from access.audit import record
from access.csrf import same_origin
from core.permissions import Permission, Principal, grantable_scopes, parse_role
from core.price_overrides import pattern_preview
from core.retention import validate as validate_retention
from core.window import parse_time
from db.queries.auth import create_api_key, revoke_project_key
from db.queries.members import MemberError, add_member, remove_member, set_role
from db.queries.prices import add_price_override, models_seen, remove_price_override
from db.queries.retention import policy, set_days, set_hold
from pages.settings import settings_data
from web.auth import CurrentViewer, DbSession, page_requires
from web.page import render_page
from web.render import render

router = APIRouter()

KeyManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_KEYS))]
PriceManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_PRICES))]
MemberManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_MEMBERS))]
SettingsManager = Annotated[Principal, Depends(page_requires(Permission.MANAGE_SETTINGS))]

NOTICES = {
    "key-revoked": "Key revoked. Clients using it are refused within 10 seconds.",
    "price-added": "Price override added. New spans are priced with it within 30 seconds.",
    "price-removed": "Price override removed.",
    "member-added": "Member added.",
    "role-changed": "Role changed. It applies to their next request, and caps the keys they created.",
    "member-removed": "Member removed; the keys they created in this project were revoked.",
    "retention-set": "Retention changed. The server's maintenance job applies it in its next round.",
    "hold-placed": "Legal hold placed: nothing of this project is deleted until it is released.",
    "hold-released": "Legal hold released: retention applies again from the next maintenance round.",
}


def _page(request: Request, session, viewer: Principal, *, status: int = 200, error: str | None = None,
          created=None, password: str | None = None, form: dict | None = None):
    data = settings_data(session, viewer, request.app.state.settings)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render_page(request, "settings.html", {
        "viewer": viewer, "data": data, "error": error, "notice": notice, "created": created,
        "password": password, "form": form or {}, "can": {p.value: viewer.can(p) for p in Permission},
    }, json_href="/api/settings", status_code=status)


def _refuse_cross_site(request: Request, session, viewer: Principal):
    if not same_origin(request):
        return _page(request, session, viewer, status=403,
                     error="This form was not submitted from this site. Reload the page and try again.")
    return None


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/settings?notice={notice}", status_code=303)


@router.get("/settings")
def settings_page(request: Request, viewer: CurrentViewer, session: DbSession):
    return _page(request, session, viewer)


@router.post("/settings/keys")
def create_key(request: Request, viewer: KeyManager, session: DbSession,
               name: Annotated[str, Form()] = "", scopes: Annotated[list[str], Form()] = []):  # noqa: B006
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    allowed = set(grantable_scopes(viewer.role)) if viewer.role else set()
    name = name.strip()
    problem = None
    if not name or len(name) > 100 or "\x00" in name:
        problem = "Give the key a name of 1 to 100 characters (where it is used, e.g. “support-bot prod”)."
    elif not scopes:
        problem = "Choose at least one scope."
    elif not set(scopes) <= allowed:
        problem = (f"Your role ({viewer.role}) may grant only: {', '.join(sorted(allowed)) or 'nothing'}; "
                   "a key never carries more rights than its creator.")
    if problem:
        return _page(request, session, viewer, status=400, error=problem, form={"name": name, "scopes": scopes})
    created = create_api_key(session, viewer.project_id, name=name, scopes=sorted(set(scopes)),
                             created_by=viewer.user_id)
    record(session, request, viewer, "key.create", target=f"{created.prefix} ({name})",
           details={"scopes": ",".join(created.scopes)})
    session.commit()
    return _page(request, session, viewer, created=created)


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: int, viewer: KeyManager, session: DbSession):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    key = revoke_project_key(session, viewer.project_id, key_id)
    if key is None:
        return _page(request, session, viewer, status=404, error=f"No key {key_id} in this project.")
    record(session, request, viewer, "key.revoke", target=f"{key.prefix} ({key.name})")
    session.commit()
    return _done("key-revoked")


def _rate(text: str, label: str, *, optional: bool = False) -> Decimal | None:
    if optional and not text.strip():
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{label} must be a number of USD per million tokens, e.g. 2.50") from None


@router.post("/settings/prices")
def add_price(request: Request, viewer: PriceManager, session: DbSession,
              model: Annotated[str, Form()] = "", provider: Annotated[str, Form()] = "",
              input: Annotated[str, Form()] = "", output: Annotated[str, Form()] = "",
              cache_read: Annotated[str, Form()] = "", cache_write: Annotated[str, Form()] = "",
              effective_from: Annotated[str, Form()] = ""):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    form = dict(model=model, provider=provider, input=input, output=output, cache_read=cache_read,
                cache_write=cache_write, effective_from=effective_from)
    try:
        if any("\x00" in v for v in form.values()):
            raise ValueError("fields must not contain NUL characters")
        row = add_price_override(
            session, viewer.project_id, model_pattern=model.strip(), provider=provider.strip() or None,
            input_per_mtok=_rate(input, "Input"), output_per_mtok=_rate(output, "Output"),
            cache_read_per_mtok=_rate(cache_read, "Cache read", optional=True),
            cache_write_per_mtok=_rate(cache_write, "Cache write", optional=True),
            effective_from=parse_time(effective_from) or datetime.now(timezone.utc), effective_to=None,
        )
    except ValueError as exc:
        return _page(request, session, viewer, status=400, error=f"Price override not added: {exc}", form=form)
    record(session, request, viewer, "price.add", target=row.model_pattern,
           details={"id": row.id, "provider": row.provider or "*", "input": f"{row.input_per_mtok:f}",
                    "output": f"{row.output_per_mtok:f}"})
    session.commit()
    return _done("price-added")


@router.post("/settings/prices/{price_id}/remove")
def remove_price(request: Request, price_id: int, viewer: PriceManager, session: DbSession):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    if not remove_price_override(session, viewer.project_id, price_id):
        return _page(request, session, viewer, status=404, error=f"No price override {price_id} in this project.")
    record(session, request, viewer, "price.remove", target=str(price_id))
    session.commit()
    return _done("price-removed")


@router.get("/settings/prices/preview")
def price_preview(request: Request, viewer: CurrentViewer, session: DbSession, model: str = "", provider: str = ""):
    """htmx: which models seen in this project a pattern would reprice, before it is saved."""
    matches, seen = [], models_seen(session, viewer.project_id)
    if model.strip() and "\x00" not in model + provider:
        matches = pattern_preview(model.strip(), provider.strip() or None, seen)
    return render(request, "_price_preview.html", {"pattern": model.strip(), "matches": matches, "seen": len(seen)})


@router.post("/settings/members")
def add_member_form(request: Request, viewer: MemberManager, session: DbSession,
                    email: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "viewer"):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    try:
        member, password = add_member(session, viewer.project_id, email, parse_role(role))
    except (MemberError, ValueError) as exc:
        return _page(request, session, viewer, status=400, error=str(exc), form={"email": email, "role": role})
    record(session, request, viewer, "member.add", target=member.email, details={"role": member.role})
    session.commit()
    if password:  # a new user: the password is shown once, here
        return _page(request, session, viewer, password=(member.email, password))
    return _done("member-added")


@router.post("/settings/members/role")
def change_role(request: Request, viewer: MemberManager, session: DbSession,
                email: Annotated[str, Form()] = "", role: Annotated[str, Form()] = ""):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    try:
        old, new = set_role(session, viewer.project_id, email, parse_role(role))
    except (MemberError, ValueError) as exc:
        return _page(request, session, viewer, status=400, error=str(exc))
    record(session, request, viewer, "member.role", target=email.strip().lower(), details={"old": old, "new": new})
    session.commit()
    return _done("role-changed")


@router.post("/settings/members/remove")
def remove_member_form(request: Request, viewer: MemberManager, session: DbSession,
                       email: Annotated[str, Form()] = ""):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    try:
        revoked = remove_member(session, viewer.project_id, email)
    except MemberError as exc:
        return _page(request, session, viewer, status=400, error=str(exc))
    record(session, request, viewer, "member.remove", target=email.strip().lower(), details={"keys_revoked": revoked})
    session.commit()
    return _done("member-removed")


def _days(text: str, label: str) -> int | None:
    """Empty: the server's default."""
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise ValueError(f"{label} must be a whole number of days (or empty for the server's default)")
    return int(text)


@router.post("/settings/retention")
def set_retention(request: Request, viewer: SettingsManager, session: DbSession,
                  days: Annotated[str, Form()] = "", rollup_days: Annotated[str, Form()] = ""):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    try:
        new_days, new_rollup_days = _days(days, "Span retention"), _days(rollup_days, "Rollup retention")
        validate_retention(new_days, new_rollup_days)
    except ValueError as exc:
        return _page(request, session, viewer, status=400, error=f"Retention not changed: {exc}.",
                     form={"days": days, "rollup_days": rollup_days})
    current = policy(session, viewer.project_id)
    set_days(session, viewer.project_id, new_days, new_rollup_days)
    record(session, request, viewer, "retention.set", target=viewer.project_slug,
           details={"days": new_days, "rollup_days": new_rollup_days,
                    "previous_days": current.days, "previous_rollup_days": current.rollup_days})
    session.commit()
    return _done("retention-set")


@router.post("/settings/retention/hold")
def place_hold(request: Request, viewer: SettingsManager, session: DbSession, reason: Annotated[str, Form()] = ""):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    reason = reason.strip()
    if not reason or len(reason) > 500 or "\x00" in reason:
        return _page(request, session, viewer, status=400,
                     error="Give the reason for the hold (1 to 500 characters), e.g. the matter it is kept for.")
    set_hold(session, viewer.project_id, True, reason)
    record(session, request, viewer, "retention.hold", target=viewer.project_slug, details={"reason": reason})
    session.commit()
    return _done("hold-placed")


@router.post("/settings/retention/release")
def release_hold(request: Request, viewer: SettingsManager, session: DbSession):
    if (refused := _refuse_cross_site(request, session, viewer)) is not None:
        return refused
    current = policy(session, viewer.project_id)
    if not current.legal_hold:
        return _page(request, session, viewer, status=409, error="This project is not on legal hold.")
    set_hold(session, viewer.project_id, False, None)
    record(session, request, viewer, "retention.release", target=viewer.project_slug,
           details={"reason": current.hold_reason})
    session.commit()
    return _done("hold-released")
