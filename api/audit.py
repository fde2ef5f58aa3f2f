"""GET /api/audit (the Audit page's twin) and GET /api/audit/export (CSV or JSON Lines, streamed)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Iterator, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from access.audit import record
from api.deps import DbSession, api_requires
from core.permissions import Permission, Principal
from db.queries.audit import events
from pages.audit import MAX_LIMIT, AuditEventOut, AuditOut, audit_data, event_out
from pages.params import UtcTime

AuditReader = Annotated[Principal, Depends(api_requires(Permission.READ_AUDIT))]
Text = Annotated[str | None, Query(max_length=500)]
COLUMNS = ("seq", "at", "actor", "action", "target", "outcome", "client_addr", "details", "hash")


def make_audit_router() -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get("/audit", response_model=AuditOut, summary="The project's audit trail, newest first, and its head hash")
    def get_audit(principal: AuditReader, session: DbSession, actor: Text = None, action: Text = None,
                  target: Text = None, since: UtcTime | None = None, until: UtcTime | None = None,
                  before_seq: Annotated[int | None, Query(ge=1)] = None,
                  limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> AuditOut:
        return audit_data(session, principal, actor=actor, action=action, target=target, since=since, until=until,
                          before_seq=before_seq, limit=limit)

    @router.get("/audit/export", summary="The filtered trail as CSV or JSON Lines (recorded as an export)",
                response_class=StreamingResponse)
    def export_audit(request: Request, principal: AuditReader, session: DbSession,
                     format: Literal["csv", "jsonl"] = "jsonl", actor: Text = None, action: Text = None,
                     target: Text = None, since: UtcTime | None = None, until: UtcTime | None = None):
        record(session, request, principal, "audit.export", target=format,
               details={k: v for k, v in dict(actor=actor, action=action, target=target).items() if v})
        session.commit()
        rows = _pages(request.app.state.sessionmaker, principal.project_id,
                      dict(actor=actor, action=action, target=target, since=since, until=until))
        name = f"causeline-audit-{principal.project_slug}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
        if format == "csv":
            return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
        return StreamingResponse((r.model_dump_json() + "\n" for r in rows), media_type="application/x-ndjson",
                                 headers=headers)

    return router


PAGE = 2000  # events read per query while an export streams


def _pages(sessionmaker, project_id: int, filters: dict) -> Iterator[AuditEventOut]:
    """The filtered trail, newest first, in keyset pages of PAGE events, each read in its own
    short session: memory stays at one page, and a slow client never holds a pooled database
    connection between pages (a server-side cursor would, for as long as it takes to read).
    Events appended meanwhile have higher seqs: the export is the trail as of its start."""
    before = None
    while True:
        with sessionmaker() as session:
            page = [event_out(r) for r in events(session, project_id, **filters, before_seq=before, limit=PAGE)]
        yield from page
        if len(page) < PAGE:
            return
        before = page[-1].seq


def _csv(rows) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for r in rows:
        # Cells starting with = + - @ are quoted with a leading ' so spreadsheets do not run them.
        values = [r.seq, r.at.isoformat(), r.actor, r.action, r.target or "", r.outcome, r.client_addr or "",
                  json.dumps(r.details, sort_keys=True), r.hash]
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in values])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
