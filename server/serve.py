"""`causeline serve`: UI + API (+ OTLP) on one port, OTLP alone on the OTLP port, OTLP/gRPC on its
port, one writer; all listeners share one event loop, which starts and stops them together.

Start-up order, so that nobody meets a half-ready server: bind the ports (a busy port
ends here, in one line), start or join the database and migrate it, then, on a first
embedded run, load the demo through a private loopback collector; only then accept
connections on the public ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import uvicorn
from sqlalchemy import func, select

from core.settings import Settings
from db.engine import libpq_url, make_engine, make_sessionmaker
from db.models import Project, TraceRow
from db.queries.auth import create_api_key, revoke_key

from collector.attributor import Attributor
from collector.evaluator import Evaluator
from judge.attribution import JudgeAttributor
from collector.service import IngestService
from collector.writer import BatchWriter
from server.app import PARTS, create_app
from server.bootstrap import Bootstrap, bootstrap
from server.credentials import load_credentials, save_credentials
from server.maintenance import Maintenance
from server.runtime import database
from server.slow_clients import AddressCap, deadline_protocol

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCRIPT = ROOT / "examples" / "demo_agent.py"
DEMO_TIMEOUT_S = 120

Say = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)  # progress must show as it happens, also through a pipe or into a log


class _Server(uvicorn.Server):
    """Signals are handled once for all servers of the process (see _run())."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def run(settings: Settings, *, only: Iterable[str] | None = None, no_migrate: bool = False,
        usage_error: Callable[[str], object] | None = None, say: Say = _print) -> int:
    """The whole `causeline serve` command; returns the exit status."""
    parts = tuple(only or PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        message = f"--only: unknown part {', '.join(unknown)} (choose from {', '.join(PARTS)})"
        if usage_error is not None:
            usage_error(message)
        raise SystemExit(message)
    listeners = bind_listeners(settings, parts)
    with database(settings, say) as (url, embedded):
        if embedded and not no_migrate:
            from db.migrate import upgrade  # Alembic only when it runs: ~8 MB of a collector's memory

            say("Applying database migrations...")
            upgrade(url)
        serve(settings, url, embedded=embedded, parts=parts, listeners=listeners, say=say)
    return 0


GRPC = ("grpc",)  # the parts of the OTLP/gRPC listener


def bind_listeners(settings: Settings, parts: Iterable[str]) -> list[tuple[tuple[str, ...], socket.socket]]:
    """The public listening sockets, each with the parts it serves. Bound before anything
    else starts, so a port in use is reported at once and by the setting that moves it.
    grpcio cannot adopt a socket: the gRPC one only holds the port until the receiver binds it."""
    parts = tuple(parts)
    wanted = [(parts, settings.host, settings.port, "CAUSELINE_PORT")]
    if "collector" in parts and settings.otlp_port and settings.otlp_port != settings.port:
        wanted.append((("collector",), settings.host, settings.otlp_port, "CAUSELINE_OTLP_PORT"))
    if "collector" in parts and grpc_port(settings):
        wanted.append((GRPC, grpc_host(settings).strip("[]"), grpc_port(settings), "CAUSELINE_GRPC_PORT"))
    listeners = []
    try:
        for served, host, port, setting in wanted:
            hint = "" if setting == "CAUSELINE_PORT" else " (0 turns this listener off)"
            listeners.append((served, _bind(host, port, setting, hint)))
    except SystemExit:
        for _, sock in listeners:
            sock.close()
        raise
    return listeners


def grpc_port(settings: Settings) -> int:
    """OTLP/gRPC port; 0 disables it."""
    return settings.grpc_port


def grpc_host(settings: Settings) -> str:
    return settings.grpc_host or settings.host


def _bind(host: str, port: int, setting: str, hint: str = "") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"Causeline could not start its listeners: port {port} on {host} is already in use; "
                             f"stop what uses it or set {setting} to a free port{hint}.") from None
        raise SystemExit(f"Causeline could not start its listeners: {host}:{port} ({exc.strerror or exc}); "
                         f"check CAUSELINE_HOST and {setting}.") from None


def serve(settings: Settings, url: str, *, embedded: bool, parts: Iterable[str] = PARTS,
          listeners: list[tuple[tuple[str, ...], socket.socket]] | None = None, say: Say = _print) -> None:
    parts = tuple(parts)
    if listeners is None:
        listeners = bind_listeners(settings, parts)
    settings = settings.model_copy(update={"database_url": url})
    engine = make_engine(url, pool_size=settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        created = bootstrap(session, settings)
    if created and created.generated and embedded:
        save_credentials(settings.resolved_home(), created)
    credentials = created or (load_credentials(settings.resolved_home()) if embedded else None)

    maintenance = Maintenance.from_settings(sessions, settings)
    maintenance.start()  # partitions ahead of time, retention (server/maintenance.py)
    ingest = attributor = evaluator = judge_attributor = None
    if "collector" in parts:
        ingest = IngestService(settings, sessions, BatchWriter.from_settings(libpq_url(url), settings))
        ingest.start()
        attributor = Attributor.from_settings(sessions, settings)  # started once the demo is in (_run)
        evaluator = Evaluator.from_settings(sessions, settings)
        evaluator.start()
        judge_attributor = JudgeAttributor.from_settings(sessions, settings)  # None unless on and configured
        if judge_attributor is not None:
            judge_attributor.start()

    def app_for(served: tuple[str, ...]):
        return create_app(settings, engine=engine, ingest=ingest, parts=served)

    servers = [
        (_grpc_receiver(ingest, settings) if served == GRPC
         else _Server(uvicorn_config(app_for(served), settings.host, sock)), sock)
        for served, sock in listeners
    ]
    demo = None
    if ingest is not None and _wants_demo(settings, embedded):
        demo = _Demo(settings, sessions, app_for(("collector",)), say, engine=engine)
    try:
        asyncio.run(_run(servers, demo, lambda: _banner(settings, parts, credentials, created, say), attributor))
    finally:
        for _, sock in listeners:
            sock.close()
        if demo is not None:
            demo.join()
        if attributor is not None:
            attributor.stop()
        if evaluator is not None:
            evaluator.stop()
        if judge_attributor is not None:
            judge_attributor.stop()
        maintenance.stop()
        if ingest is not None:
            ingest.stop()
        engine.dispose()
        say("Causeline stopped.")


def uvicorn_config(app, host: str, sock: socket.socket) -> uvicorn.Config:
    """How every HTTP listener is served (also what tests/collector/test_slow_clients.py serves)."""
    # Forwarded headers only from configured proxies: uvicorn's default believes any local peer,
    # which let a client rotate X-Forwarded-For past the login throttle.
    settings = app.state.settings
    trusted = settings.trusted_proxies.strip()
    return uvicorn.Config(app, host=host, port=sock.getsockname()[1], log_level="warning", lifespan="on",
                          proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
                          timeout_keep_alive=5, limit_concurrency=settings.max_connections,
                          http=deadline_protocol(settings.header_timeout_s, settings.body_timeout_s,
                                                 AddressCap(settings.max_connections_per_address, trusted,
                                                            settings.retry_after_s)))


async def _run(servers, demo: _Demo | None, banner: Callable[[], None], attributor: Attributor | None) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        for server, _ in servers:
            server.should_exit = True
        if demo is not None:
            demo.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    if demo is not None:
        await demo.load()
    if stopping.is_set():
        return
    if attributor is not None:
        attributor.start()
    tasks = [asyncio.create_task(_serve_on(server, sock)) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(task.done() for task in tasks):
            stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise SystemExit("Causeline could not start its listeners; see the messages above.")
        await asyncio.sleep(0.05)
    banner()
    await asyncio.gather(*tasks)


def _grpc_receiver(ingest: IngestService, settings: Settings):
    # grpcio is imported only when the gRPC listener is on: 9 MB of a collector's memory.
    from collector.grpc_server import GrpcReceiver

    return GrpcReceiver(ingest, grpc_host(settings), grpc_port(settings))


def _serve_on(server, sock: socket.socket):
    if not isinstance(server, _Server):  # the gRPC receiver
        sock.close()  # grpcio binds the address itself: free the port it was held on
        return server.serve()
    return server.serve(sockets=[sock])


def _banner(settings: Settings, parts, credentials: Bootstrap | None, created: Bootstrap | None, say: Say) -> None:
    base = f"http://{settings.host}:{settings.port}"
    say("")
    say("Causeline is running.")
    if "web" in parts:
        say(f"  UI           {base}/")
    if "api" in parts:
        say(f"  API          {base}/api/traces   (docs: {base}/docs)")
    if "collector" in parts:
        if settings.otlp_port and settings.otlp_port != settings.port:
            say(f"  OTLP/HTTP    http://{settings.host}:{settings.otlp_port}/v1/traces   (also {base}/v1/traces)")
        else:
            say(f"  OTLP/HTTP    {base}/v1/traces")
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


class _Demo:
    """Runs the instrumented example agent once, into an empty first project, through a
    collector listening on a private loopback port: the same HTTP collector and writer as
    the public ports, which open only once the demo is stored."""

    def __init__(self, settings: Settings, sessions, collector_app, say: Say, *, engine=None) -> None:
        self.settings = settings
        self.engine = engine
        self.project_id: int | None = None
        self.sessions = sessions
        self.app = collector_app
        self.say = say
        self._process: asyncio.subprocess.Process | None = None
        self._server: _Server | None = None
        self._stopped = False
        self._alerts_stop = threading.Event()
        self._alerts: threading.Thread | None = None

    def stop(self) -> None:
        self._stopped = True
        self._alerts_stop.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()

    async def load(self) -> None:
        key = await asyncio.to_thread(self._key)
        if key is None:
            return
        started = time.monotonic()
        self.say("Loading the demo data (examples/demo_agent.py through the SDK into this collector)...")
        sock = _bind("127.0.0.1", 0, "")
        self._server = _Server(uvicorn_config(self.app, "127.0.0.1", sock))
        server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        try:
            while not self._server.started and not server_task.done():
                await asyncio.sleep(0.02)
            if self._server.started and not self._stopped:
                port = sock.getsockname()[1]
                if await self._run_agent(f"http://127.0.0.1:{port}", key.secret):
                    # Failure attribution (for /failures) follows in the background, as for any
                    # ingested trace: done here it would hold the UI back by seconds.
                    self.say(f"Demo data stored in {time.monotonic() - started:.1f} s.")
                    await asyncio.to_thread(self._alert_rule)
        finally:
            self._server.should_exit = True
            await asyncio.gather(server_task, return_exceptions=True)
            sock.close()
            await asyncio.to_thread(self._revoke, str(key.id))

    def _key(self):
        with self.sessions.begin() as session:
            project = session.scalars(select(Project).where(Project.slug == self.settings.init_project)).one_or_none()
            if project is None or session.scalar(
                select(func.count()).select_from(TraceRow).where(TraceRow.project_id == project.id)
            ):
                return None
            self.project_id = project.id
            return create_api_key(session, project.id, name="demo loader", scopes=["ingest"])

    def _alert_rule(self) -> None:
        """The demo's alert rule, and its history over the demo week (in the background)."""
        from alerts.demo import add_demo_rule, replay_demo_week

        with self.sessions.begin() as session:
            add_demo_rule(session, self.project_id)
        if self.engine is not None and not self._alerts_stop.is_set():
            self._alerts = threading.Thread(target=replay_demo_week, name="causeline-demo-alerts", daemon=True,
                                            args=(self.engine, self.sessions, self.settings, self._alerts_stop))
            self._alerts.start()

    def join(self, timeout: float = 30.0) -> None:
        """Waits for the alert history replay, which stops between two cycles once stop() is called
        (before the database it reads goes away)."""
        if self._alerts is not None:
            self._alerts_stop.set()
            self._alerts.join(timeout)

    def _revoke(self, key_id: str) -> None:
        with self.sessions.begin() as session:
            revoke_key(session, key_id)

    async def _run_agent(self, endpoint: str, secret: str) -> bool:
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, str(DEMO_SCRIPT), "--endpoint", endpoint, "--api-key", secret, "--history",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(self._process.communicate(), DEMO_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
            self.say(f"The demo agent could not run: {exc!r}; starting without demo data.")
            return False
        if self._stopped:
            return False
        if self._process.returncode != 0:
            detail = err.decode(errors="replace").strip()[-500:]
            self.say(f"The demo agent failed ({self._process.returncode}): {detail}")
            return False
        self.say("  " + out.decode(errors="replace").strip().splitlines()[-1])
        return True
