"""The Reports page (auditors and admins): two forms, an incident report for one run and a
period report for a window. The reports themselves come from the API (/api/reports/...),
which the login cookie authorizes; this page only collects the choices."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from core.permissions import Permission, Principal
from web.auth import page_requires
from web.page import render_page, twin

router = APIRouter()
ReportMaker = Annotated[Principal, Depends(page_requires(Permission.CREATE_REPORTS))]
FORMATS = ("pdf", "html", "json", "csv")


@router.get("/reports")
def reports_page(request: Request, viewer: ReportMaker, trace: str = "", error: str = ""):
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return render_page(request, "reports.html", {
        "viewer": viewer, "formats": FORMATS, "trace": trace if len(trace) <= 64 else "",
        "error": "That is not a trace id (32 hex digits)." if error == "trace" else "",
        "since": (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"), "until": now.strftime("%Y-%m-%dT%H:%M"),
    }, json_href=None)


@router.get("/reports/incident")
def incident_form(viewer: ReportMaker, trace: str = "", format: str = "pdf", include_content: str = ""):
    """The incident form's target: on to the API's report of that run (a path parameter there)."""
    trace = trace.strip().lower()
    try:
        bytes.fromhex(trace)
    except ValueError:
        trace = ""
    if not trace:
        return RedirectResponse("/reports?error=trace", status_code=303)
    params = {"format": format if format in FORMATS else "pdf", "include_content": "true" if include_content else None,
              "project": viewer.project_slug}
    return RedirectResponse(twin(f"/api/reports/incident/{quote(trace)}", params), status_code=303)
