"""One OTLP trace export, whatever the transport: key check, byte budget, decode, commit.

The HTTP and gRPC receivers read the key and the body their own way, then call authorize(),
charged() and store(). A refusal is a Refused with a transport-neutral kind that each receiver
maps to its own answer (HTTP status / gRPC code); `retry` ones mean "nothing was stored, send it
again later"."""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Iterator, Literal

import psycopg
import sqlalchemy.exc

from access.deps import key_principal_for
from access.resolver import Denied
from core.otlp import DecodeError
from core.permissions import Permission, Principal

from collector.service import Charge, IngestService, PreparationUnavailable, decode_cost
from collector.writer import QueueFull, StorageRefused, WriterUnavailable

Kind = Literal["unauthenticated", "forbidden", "invalid", "too_large", "unavailable"]


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


def _too_large(service: IngestService, size: int, cost: int) -> Refused:
    budget = service.inflight
    return Refused("too_large", f"decoding this {size}-byte body would take about {cost >> 20} MiB, more than "
                                f"the collector's in-flight memory budget ({budget.max_bytes >> 20} MiB): "
                                f"send smaller batches")


def _no_room(service: IngestService) -> str:
    budget = service.inflight
    return f"too many request bytes in flight ({budget.used} of {budget.max_bytes} bytes of memory); retry later"


@contextlib.contextmanager
def charged(service: IngestService, media: str, size: int | None) -> Iterator[Charge]:
    """Holds a request's share of the in-flight budget while it is handled (every OTLP signal goes
    through here), taken before its body is read: the decoding cost of its declared `size` (for a
    compressed body, a lower bound; None, not declared: nothing yet). Taken, not only checked:
    requests arriving together all passed a check, then all read their bodies (256 clients held
    ~100 MB so). fit() then charges the body as received. Refused "too_large" when decoding it
    could never fit, "unavailable" when it does not fit now."""
    cost = decode_cost(size, media) if size else 0
    if cost > service.inflight.max_bytes:
        raise _too_large(service, size, cost)
    charge = service.inflight.try_acquire(cost)
    if charge is None:
        raise Refused("unavailable", _no_room(service))
    try:
        yield charge
    finally:
        charge.release()


def fit(service: IngestService, charge: Charge, media: str, size: int) -> None:
    """Raise `charge` to the decoding cost of the `size` bytes received (an inflated or undeclared
    body costs more than its declared length said); refused as charged() says otherwise."""
    cost = decode_cost(size, media)
    if cost > service.inflight.max_bytes:
        raise _too_large(service, size, cost)
    if cost > charge.nbytes and not service.inflight.try_raise(charge, cost):
        raise Refused("unavailable", _no_room(service))


async def store(service: IngestService, body: bytes, media: str, project_id: int, charge: Charge, *,
                caller_keeps_body: bool = False) -> Stored:
    """Decode an inflated body and return once its valid spans are committed. `charge` (from
    charged()) is fitted to the body's decoding cost, then lowered to its encoded rows until commit.

    The body is let go once decoded: a caller that hands it over (keeps no reference) gets its
    memory back then, not at the commit; under overload hundreds of decoded requests wait for
    their commit, and the body is a third of what each holds. A caller that cannot let go
    (gRPC: the framework holds the request) says so, and the body stays charged until commit."""
    fit(service, charge, media, len(body))
    overrides, redaction = await service.rules(project_id)
    prep_started = time.perf_counter()
    service.writer.expect()
    try:
        try:
            ready = await service.prepare(body, media, project_id, overrides, redaction)
        except DecodeError as exc:
            raise Refused("invalid", str(exc)) from None
        charge.lower(ready.data.nbytes + (len(body) if caller_keeps_body else 0))
        del body
        service.metrics.prepare_seconds.observe(time.perf_counter() - prep_started)
        service.metrics.spans_rejected.inc(ready.rejected)
        if not ready.data.count:
            return Stored(ready.rejected, ready.error_message)
        try:
            future = service.writer.submit(ready.data)
        except QueueFull as exc:
            raise Refused("unavailable", f"ingest queue is full ({exc}); retry later") from None
        except WriterUnavailable as exc:
            raise Refused("unavailable", str(exc)) from None
    finally:
        service.writer.arrived()
    try:
        await asyncio.wrap_future(future)
    except WriterUnavailable as exc:
        raise Refused("unavailable", f"{exc}; nothing from this request was stored, retry") from None
    except StorageRefused as exc:
        raise Refused("invalid", f"{exc}; nothing from this request was stored") from None
    service.metrics.spans_received.inc(ready.data.count)
    return Stored(ready.rejected, ready.error_message)
