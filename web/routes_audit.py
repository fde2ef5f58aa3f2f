"""The Audit page (admins and auditors): the project's trail with filters, its head hash, exports."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from core.permissions import Permission, Principal
from core.window import parse_time
from pages.audit import audit_data
from web.auth import DbSession, page_requires
from web.page import render_page, twin

router = APIRouter()
AuditReader = Annotated[Principal, Depends(page_requires(Permission.READ_AUDIT))]


@router.get("/audit")
def audit_page(request: Request, viewer: AuditReader, session: DbSession, actor: str = "", action: str = "",
               target: str = "", since: str = "", until: str = "", before_seq: str = ""):
    errors = []
    form = dict(actor=actor, action=action, target=target, since=since, until=until)
    if any("\x00" in v for v in form.values()):
        errors.append("Filters must not contain NUL characters.")
        form = {k: "" for k in form}
    times = {}
    for name in ("since", "until"):
        try:
            times[name] = parse_time(form[name])
        except ValueError as exc:
            errors.append(f"“{name}”: {exc}")
            times[name] = None
    # ASCII digits only, within bigint ("²".isdigit() is True; int() refuses it).
    before = int(before_seq) if re.fullmatch(r"[0-9]{1,18}", before_seq) and int(before_seq) > 0 else None
    data = audit_data(session, viewer, actor=form["actor"].strip() or None, action=form["action"].strip() or None,
                      target=form["target"].strip() or None, since=times["since"], until=times["until"],
                      before_seq=before)
    params = {**form, "before_seq": before}
    return render_page(request, "audit.html", {
        "viewer": viewer, "data": data, "form": form, "errors": errors,
        "csv_href": twin("/api/audit/export", {**form, "format": "csv"}),
        "jsonl_href": twin("/api/audit/export", {**form, "format": "jsonl"}),
        "older_href": twin("/audit", {**form, "before_seq": data.next_before_seq}) if data.next_before_seq else None,
        "now": datetime.now(timezone.utc),
    }, json_href=twin("/api/audit", params))
