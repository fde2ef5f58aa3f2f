"""The Routing page: per workflow step, agent or task, every model that served it, the routing
decisions recorded by routers, and suggestions where the data supports one (pages/routing.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from core.routing import GROUPS
from pages.routing import routing_data
from web.auth import CurrentViewer, DbSession
from web.page import render_page, twin
from web.window_form import parse_window_form

router = APIRouter()


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1000:.1f} s" if v >= 1000 else f"{v:.0f} ms"


@router.get("/routing")
def routing_page(request: Request, viewer: CurrentViewer, session: DbSession, range: str = "", since: str = "",
                 until: str = "", by: str = "step"):
    form = parse_window_form(range, since, until)
    errors = [] if by in GROUPS else [f"“Group by” must be one of {', '.join(GROUPS)}; showing steps."]
    by = by if by in GROUPS else "step"
    data = routing_data(session, viewer.project_id, form.window, by)
    w = form.query()
    models_by_group = {(g.group, m.model): m for g in data.groups for m in g.models}
    return render_page(request, "routing.html", {
        "viewer": viewer, "form": form, "errors": errors, "data": data, "by": by, "groups": GROUPS,
        "keep": {"by": by}, "action": "/routing", "w": w, "ms": _ms, "models_by_group": models_by_group,
    }, json_href=twin("/api/routing", {**w, "by": by}))
