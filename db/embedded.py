"""The private PostgreSQL used when no DATABASE_URL is given (pgserver bundles the binaries)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE = "causeline"
# pgserver's list of the processes holding the server (it stops PostgreSQL when the last one leaves).
HANDLES = ".handle_pids.json"
# Ours: pid -> process start time of each Causeline process in HANDLES, so a pid the kernel
# has since given to another process is not mistaken for a live handle.
OWNERS = "causeline-handles.json"


def _pgserver():
    # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def handle_alive(pid: int, started: float | None) -> bool:
    """Whether `pid` is still the process that registered as a handle (started at `started`, if known)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 0.01
    except psutil.NoSuchProcess:
        return False


def postmaster_alive(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a running (not zombie) postgres process serving `pgdata`."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return str(pgdata) in process.cmdline() or str(pgdata.resolve()) in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def clear_stale_pidfile(pgdata: Path) -> int | None:
    """Removes `postmaster.pid` when the postmaster it names is gone; returns that pid.

    A postmaster killed with SIGKILL leaves its pid file behind. Where nothing reaps it (a
    container whose init does not wait for orphans), it stays a zombie: pgserver then takes the
    server for running and PostgreSQL itself refuses to start ("lock file already exists"),
    since a zombie still answers kill(pid, 0). The pid can also have been reused by an unrelated
    process. Either way the file is stale once no live postgres process for this directory has
    that pid, and removing it lets the next start begin afresh (crash recovery replays the WAL)."""
    pidfile = pgdata / "postmaster.pid"
    try:
        # postmaster.pid: pid, data directory, start time, port, socket directory, ...
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if postmaster_alive(pid, pgdata):
        return None
    if len(lines) > 4 and lines[3].strip().isdigit() and lines[4].strip():
        # The socket's lock file names the same dead postmaster and blocks the next start too.
        _remove_lock_of(Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock", pid)
    pidfile.unlink(missing_ok=True)
    return pid


def _remove_lock_of(lockfile: Path, pid: int) -> None:
    try:
        if int(lockfile.read_text().splitlines()[0]) == pid:
            lockfile.unlink(missing_ok=True)
    except (OSError, ValueError, IndexError):
        pass


class EmbeddedPostgres:
    """Starts (or joins) a PostgreSQL server whose data lives in `home/pg`; stops it on close().

    pgserver counts handles per data directory across processes, so a test session
    and the server processes it spawns can share one instance. A process killed with
    SIGKILL never removes its handle, and PostgreSQL would then outlive every later
    clean stop; start() therefore first forgets the handles of processes that are gone,
    then joins the server still running from the crashed process or starts a new one.
    """

    def __init__(self, home: Path) -> None:
        self.pgdata = home / "pg"
        self._server: Any = None

    def start(self) -> str:
        pgserver = _pgserver()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        with self._lock():
            forgotten = self._forget_dead_handles()
            stale = clear_stale_pidfile(self.pgdata)
        if stale:
            log.warning("embedded PostgreSQL: removed the pid file of postmaster %s, which is no longer running", stale)
        if forgotten:
            log.warning("embedded PostgreSQL: forgot handles of exited processes %s", forgotten)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        with self._lock():
            self._record_owner(os.getpid(), _own_start_time())
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        return self._server.get_uri(DATABASE)

    def url(self, database: str = DATABASE) -> str:
        return self._server.get_uri(database)

    def close(self) -> list[int]:
        """Leaves the server, stopping it when no other live process holds it.

        Returns the pids of the processes that still hold it (empty when it was stopped)."""
        if self._server is None:
            return []
        with self._lock():
            # A process killed while we ran left its handle behind: it must not keep PostgreSQL up.
            self._forget_dead_handles()
        self._server.cleanup()
        self._server = None
        with self._lock():
            self._record_owner(os.getpid(), None)
            return self._live_handles()

    # -- handle bookkeeping (always under pgserver's own inter-process lock) ------------

    def _lock(self):
        import fasteners

        return fasteners.InterProcessLock(_pgserver().PostgresServer.lock_path)

    def _handles(self):
        from pgserver.utils import DiskList

        return DiskList(self.pgdata / HANDLES)

    def _owners(self) -> dict[str, float]:
        try:
            return {str(pid): float(t) for pid, t in json.loads((self.pgdata / OWNERS).read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_owners(self, owners: dict[str, float]) -> None:
        path = self.pgdata / OWNERS
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(owners))
        os.replace(tmp, path)

    def _record_owner(self, pid: int, started: float | None) -> None:
        owners = self._owners()
        if started is None:
            owners.pop(str(pid), None)
        else:
            owners[str(pid)] = started
        self._save_owners(owners)

    def _live_handles(self) -> list[int]:
        owners = self._owners()
        return [pid for pid in self._handles().get() if handle_alive(pid, owners.get(str(pid)))]

    def _forget_dead_handles(self) -> list[int]:
        """Removes the handles of processes that are gone; returns their pids."""
        handles = self._handles()
        registered = handles.get()
        live = self._live_handles()
        dead = [pid for pid in registered if pid not in live]
        if dead:
            handles.put(live)
            owners = self._owners()
            self._save_owners({pid: t for pid, t in owners.items() if int(pid) in live})
        return dead


def _own_start_time() -> float:
    import psutil

    return psutil.Process().create_time()
