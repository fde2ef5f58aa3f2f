"""One OTLP trace export, whatever the transport: key check, byte budget, decode, commit.

The HTTP and gRPC receivers read the key and the body their own way, then call authorize() and
store(). A refusal is a Refused with a transport-neutral kind that each receiver maps to its own
answer (HTTP status / gRPC code); `retry` ones mean "nothing was stored, send it again later"."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Literal

import psycopg
import sqlalchemy.exc
from anyio import to_thread

from access.deps import key_principal_for
from access.resolver import Denied
from core.otlp import DecodeError
from core.permissions import Permission, Principal

from collector.service import IngestService, PreparationUnavailable
from collector.writer import QueueFull, StorageRefused, WriterUnavailable

Kind = Literal["unauthenticated", "forbidden", "invalid", "unavailable"]


class Refused(Exception):
    """The export is answered with an error; `kind` says which (unavailable = retry later)."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def retry(self) -> bool:
        return self.kind == "unavailable"


@dataclass
class Stored:
    rejected: int  # spans refused by validation, for partial_success
    error_message: str


# Exceptions that mean "storage or a worker is unavailable right now": retry later.
_TRANSIENT = (
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError, psycopg.OperationalError, psycopg.InterfaceError,
    BrokenProcessPool, PreparationUnavailable, ConnectionError, TimeoutError,
)


def transient(exc: BaseException) -> bool:
    """Is this unexpected exception the database's or a worker's moment, not the request's fault?"""
    if isinstance(exc, _TRANSIENT):
        return True
    # Any other driver error while authenticating or reading price overrides is the
    # database's, not the client's (e.g. the schema is being migrated).
    return isinstance(exc, sqlalchemy.exc.DBAPIError)


async def authorize(service: IngestService, authorization: str | None, x_key: str | None) -> Principal:
    """The key's principal if it may ingest (access/ decides); Refused otherwise."""
    try:
        return await key_principal_for(service.keys, authorization, x_key, Permission.INGEST)
    except Denied as refused:
        kind = {401: "unauthenticated", 403: "forbidden"}.get(refused.status, "unavailable")
        raise Refused(kind, refused.message) from None


async def store(service: IngestService, body: bytes, media: str, project_id: int) -> Stored:
    """Decode an inflated body and return once its valid spans are committed."""
    size = len(body)
    if not service.inflight.try_acquire(size):
        raise Refused("unavailable", f"too many request bytes in flight ({service.inflight.used} of "
                                     f"{service.inflight.max_bytes}); retry later")
    try:
        return await _store(service, body, media, project_id)
    finally:
        service.inflight.release(size)


async def _store(service: IngestService, body: bytes, media: str, project_id: int) -> Stored:
    overrides = await to_thread.run_sync(service.overrides, project_id)
    prep_started = time.perf_counter()
    try:
        prepared = await service.prepare(body, media, project_id, overrides)
    except DecodeError as exc:
        raise Refused("invalid", str(exc)) from None
    service.metrics.prepare_seconds.observe(time.perf_counter() - prep_started)
    service.metrics.spans_rejected.inc(prepared.rejected)

    if prepared.rows:
        try:
            future = service.writer.submit(prepared.rows, prepared.edges)
        except QueueFull as exc:
            raise Refused("unavailable", f"ingest queue is full ({exc}); retry later") from None
        except WriterUnavailable as exc:
            raise Refused("unavailable", str(exc)) from None
        try:
            await asyncio.wrap_future(future)
        except WriterUnavailable as exc:
            raise Refused("unavailable", f"{exc}; nothing from this request was stored, retry") from None
        except StorageRefused as exc:
            raise Refused("invalid", f"{exc}; nothing from this request was stored") from None
        service.metrics.spans_received.inc(len(prepared.rows))
    return Stored(prepared.rejected, prepared.error_message)
