"""GET /api/reports/incident/{trace_id} and GET /api/reports/period: audit reports as files.

Each answer is the report in the asked format; its seal (file digest and span manifest,
signed when the operator configured a key) travels in the X-Causeline-Report-Seal header
(base64 JSON) so a client can store it as FILE.sig.json for `causeline reports verify`.
"""

from __future__ import annotations

import base64
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from access.audit import client_addr
from api.deps import AppSettings, DbSession, api_requires
from core.permissions import Permission, Principal
from pages.params import UtcTime
from reports.service import Created, ReportError, create

ReportMaker = Annotated[Principal, Depends(api_requires(Permission.CREATE_REPORTS))]
Format = Literal["pdf", "html", "json", "csv"]
SEAL_HEADER = "X-Causeline-Report-Seal"


SPOOL_IN_MEMORY = 8 << 20  # a larger report goes to a temporary file while it is written


def _answer(created: Created, file) -> Response:
    # The rendering is in `file` (memory or disk): sent in chunks, closed (and deleted) after.
    file.seek(0)
    return StreamingResponse(iter(lambda: file.read(1 << 16), b""), media_type=created.media_type,
                             background=BackgroundTask(file.close), headers={
        "Content-Disposition": f'attachment; filename="{created.filename}"', "Cache-Control": "no-store",
        "Content-Length": str(created.size), SEAL_HEADER: base64.b64encode(created.seal_bytes).decode()})


def _create(**kw) -> tuple[Created, object]:
    file = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
    try:
        return create(out=file, **kw), file
    except BaseException:
        file.close()
        raise


def make_reports_router() -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.get("/reports/incident/{trace_id}", summary="An incident report for one run and its linked runs",
                response_class=Response)
    def incident(request: Request, trace_id: str, principal: ReportMaker, session: DbSession,
                 settings: AppSettings, format: Format = "json", include_content: bool = False) -> Response:
        try:
            tid = bytes.fromhex(trace_id)
        except ValueError:
            raise HTTPException(404, "trace not found") from None
        try:
            created, file = _create(session=session, project_id=principal.project_id,
                                    project_slug=principal.project_slug, actor=principal.actor,
                                    sees_content=principal.sees_content, kind="incident", fmt=format,
                                    settings=settings, trace_id=tid, include_content=include_content,
                                    client_addr=client_addr(request))
        except ReportError:
            raise HTTPException(404, "trace not found") from None
        session.commit()
        return _answer(created, file)

    @router.get("/reports/period", summary="A record-keeping report for the project over a window "
                "(default: the last 24 hours)", response_class=Response)
    def period(request: Request, principal: ReportMaker, session: DbSession, settings: AppSettings,
               since: UtcTime | None = None, until: UtcTime | None = None, format: Format = "json") -> Response:
        until = until or datetime.now(timezone.utc)
        since = since or until - timedelta(days=1)
        try:
            created, file = _create(session=session, project_id=principal.project_id,
                                    project_slug=principal.project_slug, actor=principal.actor,
                                    sees_content=principal.sees_content, kind="period", fmt=format,
                                    settings=settings, since=since, until=until, client_addr=client_addr(request))
        except ReportError as exc:
            raise HTTPException(422, str(exc)) from None
        session.commit()
        return _answer(created, file)

    return router
