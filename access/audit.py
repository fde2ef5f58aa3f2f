"""Recording security-relevant actions of a request in the audit trail (db/queries/audit.py).

Call it in the same transaction as the action itself, before the commit: the event and the
action land together or not at all.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from core.permissions import Principal
from db.queries.audit import append


def client_addr(request: HTTPConnection) -> str | None:
    # The peer as seen by the server. (Forwarded headers are not trusted here: see docs/compliance.md.)
    return request.client.host if request.client else None


def record(session: Session, request: HTTPConnection, principal: Principal | None, action: str, *,
           target: str | None = None, outcome: str = "ok", details: dict | None = None,
           project_id: int | None = None, actor: str | None = None) -> None:
    append(session, project_id=principal.project_id if principal else project_id,
           actor=actor or (principal.actor if principal else "anonymous"), action=action, target=target,
           outcome=outcome, client_addr=client_addr(request), details=details)
