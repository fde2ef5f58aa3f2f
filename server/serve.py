"""`causeline serve`: UI + API (+ OTLP) on one port, OTLP alone on the OTLP port, OTLP/gRPC on its
port, one writer; all listeners share one event loop, which starts and stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable

import uvicorn
from sqlalchemy import func, select

from core.settings import Settings
from db.engine import libpq_url, make_engine, make_sessionmaker
from db.models import Project, TraceRow
from db.queries.auth import create_api_key, revoke_key

from collector.attributor import Attributor
from collector.grpc_server import GrpcReceiver
from collector.service import IngestService
from collector.writer import BatchWriter
from server.app import PARTS, create_app
from server.bootstrap import Bootstrap, bootstrap
from server.credentials import load_credentials, save_credentials

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCRIPT = ROOT / "examples" / "demo_agent.py"
log = logging.getLogger("causeline")


class _Server(uvicorn.Server):
    """Signals are handled once for all servers of the process (see serve())."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def serve(settings: Settings, url: str, *, embedded: bool, parts: Iterable[str] = PARTS,
          say: Callable[[str], None] = print) -> None:
    parts = tuple(parts)
    settings = settings.model_copy(update={"database_url": url})
    engine = make_engine(url, pool_size=settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        created = bootstrap(session, settings)
    if created and created.generated and embedded:
        save_credentials(settings.resolved_home(), created)
    credentials = created or (load_credentials(settings.resolved_home()) if embedded else None)

    ingest = attributor = None
    if "collector" in parts:
        ingest = IngestService(settings, sessions, BatchWriter.from_settings(libpq_url(url), settings))
        ingest.start()
        attributor = Attributor.from_settings(sessions, settings)
        attributor.start()

    servers = [_Server(uvicorn.Config(
        create_app(settings, engine=engine, ingest=ingest, parts=parts),
        host=settings.host, port=settings.port, log_level="warning", lifespan="off",
    ))]
    if ingest is not None and settings.otlp_port and settings.otlp_port != settings.port:
        servers.append(_Server(uvicorn.Config(
            create_app(settings, engine=engine, ingest=ingest, parts=("collector",)),
            host=settings.host, port=settings.otlp_port, log_level="warning", lifespan="off",
        )))
    if ingest is not None and grpc_port(settings):
        servers.append(GrpcReceiver(ingest, grpc_host(settings), grpc_port(settings)))
    try:
        asyncio.run(_run(servers, settings, parts, credentials, created, sessions, embedded, say))
    finally:
        if attributor is not None:
            attributor.stop()
        if ingest is not None:
            ingest.stop()
        engine.dispose()
        say("Causeline stopped.")


def grpc_port(settings: Settings) -> int:
    """OTLP/gRPC port; 0 disables it."""
    return settings.grpc_port


def grpc_host(settings: Settings) -> str:
    return settings.grpc_host or settings.host


async def _run(servers, settings, parts, credentials, created, sessions, embedded, say) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):  # a port in use, for instance
            stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise SystemExit("Causeline could not start its listeners (is the port in use?)")
        await asyncio.sleep(0.05)
    _banner(settings, parts, credentials, created, say)
    if "collector" in parts and _wants_demo(settings, embedded):
        threading.Thread(target=_load_demo, args=(settings, sessions, say), daemon=True).start()
    await asyncio.gather(*tasks)


def _banner(settings: Settings, parts, credentials: Bootstrap | None, created: Bootstrap | None, say) -> None:
    base = f"http://{settings.host}:{settings.port}"
    say("")
    say("Causeline is running.")
    if "web" in parts:
        say(f"  UI           {base}/")
    if "api" in parts:
        say(f"  API          {base}/api/traces   (docs: {base}/docs)")
    if "collector" in parts:
        otlp = f"http://{settings.host}:{settings.otlp_port}/v1/traces" if settings.otlp_port else f"{base}/v1/traces"
        say(f"  OTLP/HTTP    {otlp}   (also {base}/v1/traces)")
        if grpc_port(settings):
            say(f"  OTLP/gRPC    {grpc_host(settings)}:{grpc_port(settings)}")
    if credentials is not None:
        say(f"  Login        {credentials.admin_email} / {credentials.admin_password}")
        say(f"  Ingest key   {credentials.api_key}")
        if created is not None and created.generated:
            say("  (generated on first run; also saved in CAUSELINE_HOME/credentials.json, mode 0600)")
    else:
        say("  Login and key: as set by CAUSELINE_INIT_* on first run (`causeline keys create` makes more).")
    say("Press Ctrl-C to stop.")
    say("")


def _wants_demo(settings: Settings, embedded: bool) -> bool:
    return settings.demo == "on" or (settings.demo == "auto" and embedded)


def _load_demo(settings: Settings, sessions, say) -> None:
    """Run the instrumented example agent against our own OTLP endpoint, once, into an empty project."""
    with sessions.begin() as session:
        project = session.scalars(select(Project).where(Project.slug == settings.init_project)).one_or_none()
        if project is None or session.scalar(
            select(func.count()).select_from(TraceRow).where(TraceRow.project_id == project.id)
        ):
            return
        key = create_api_key(session, project.id, name="demo loader", scopes=["ingest"])
    port = settings.otlp_port or settings.port
    try:
        result = subprocess.run(
            [sys.executable, str(DEMO_SCRIPT), "--endpoint", f"http://{settings.host}:{port}",
             "--api-key", key.secret],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode == 0:
            say("Demo traces loaded (examples/demo_agent.py through the SDK and this collector).")
        else:
            say(f"Demo agent failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"Demo agent could not run: {exc}")
    finally:
        with sessions.begin() as session:
            revoke_key(session, str(key.id))

