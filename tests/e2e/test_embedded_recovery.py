"""After any crash of `causeline serve` on the embedded PostgreSQL, the next start adopts or
restarts that PostgreSQL and the next clean stop stops it: no postgres process outlives it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from db.embedded import clear_stale_pidfile, handle_alive
from tests.e2e.test_kill9 import free_port

REPO = Path(__file__).resolve().parents[2]


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Every process of the PostgreSQL server of this data directory: the postmaster (started
    with `-D <pgdata>`) and its children."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(pgdata) in (process.info["cmdline"] or []) and "postgres" in Path(process.info["cmdline"][0]).name:
            found.append(process)
            try:
                found.extend(process.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def postmaster_pids(pgdata: Path) -> set[int]:
    return {p.pid for p in postgres_processes(pgdata) if "-D" in p.cmdline()}


class Serve:
    def __init__(self, home: Path, log: Path) -> None:
        self.port, self.otlp_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUSELINE_") and k != "DATABASE_URL"}
        env.update(CAUSELINE_HOME=str(home), CAUSELINE_PORT=str(self.port), CAUSELINE_OTLP_PORT=str(self.otlp_port),
                   CAUSELINE_GRPC_PORT=str(free_port()),
                   CAUSELINE_DEMO="off", CAUSELINE_INIT_ADMIN_PASSWORD="recovery-admin")
        self.log = log
        self.process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=REPO, env=env,
                                        stdout=log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited during start-up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.process.kill()
        raise AssertionError(f"serve did not start:\n{log.read_text()[-3000:]}")

    def kill_9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


@pytest.fixture
def home():
    # Not pytest's tmp_path: its 0700 parents keep out the `pgserver` user postgres runs as under root.
    path = Path(tempfile.mkdtemp(prefix="causeline-recovery-"))
    yield path
    for process in postgres_processes(path / "pg"):  # only after a failed assertion
        process.kill()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_after_kill_9_the_next_start_adopts_postgres_and_the_next_stop_stops_it(home):
    pgdata, log = home / "pg", home / "serve.log"
    first = Serve(home, log)
    postmaster = postmaster_pids(pgdata)
    assert len(postmaster) == 1
    first.kill_9()
    assert postmaster_pids(pgdata) == postmaster, "PostgreSQL should outlive the killed server"
    assert first.process.pid in pgserver_handles(pgdata), "the killed server's handle should be left behind"

    second = Serve(home, log)
    assert postmaster_pids(pgdata) == postmaster  # adopted, not a second server
    second.stop()
    assert second.process.returncode == 0, log.read_text()[-3000:]
    assert log.read_text().rstrip().endswith("Causeline stopped.")
    assert postgres_processes(pgdata) == [], log.read_text()[-3000:]
    assert pgserver_handles(pgdata) == []


PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def unreaped_orphans():
    """Makes this process the reaper of its orphaned descendants and leaves them unreaped while
    the test runs: the killed postmaster then stays a zombie, as in a container whose init never
    waits for orphans (where a zombie's pid file once made the next start fail)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")
    adopted: set[int] = set()
    yield adopted
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    for pid in adopted:  # reap only the postmasters this test made ours
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.mark.slow
def test_after_postgres_is_killed_too_the_next_start_restarts_it_and_the_next_stop_stops_it(home, unreaped_orphans):
    pgdata, log = home / "pg", home / "serve.log"
    first = Serve(home, log)
    (postmaster,) = postmaster_pids(pgdata)
    unreaped_orphans.add(postmaster)
    first.kill_9()
    psutil.Process(postmaster).kill()
    psutil.wait_procs([p for p in postgres_processes(pgdata) if p.pid != postmaster], timeout=30)
    assert postgres_processes(pgdata) == []
    if psutil.Process(postmaster).ppid() == os.getpid():
        assert psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE  # the case under test

    second = Serve(home, log)
    restarted = postmaster_pids(pgdata)
    unreaped_orphans.update(restarted)
    assert len(restarted) == 1 and restarted != {postmaster}
    second.stop()
    assert second.process.returncode == 0, log.read_text()[-3000:]
    assert postgres_processes(pgdata) == [], log.read_text()[-3000:]


def test_a_pid_file_naming_a_zombie_or_another_process_is_stale(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    pidfile = pgdata / "postmaster.pid"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        for pid in (zombie.pid, os.getpid()):  # an exited, unreaped child; a live process that is not postgres
            pidfile.write_text(f"{pid}\n{pgdata}\n1764600000\n5432\n{pgdata}\n\n")
            (pgdata / ".s.PGSQL.5432.lock").write_text(f"{pid}\n{pgdata}\n")
            assert clear_stale_pidfile(pgdata) == pid
            assert not pidfile.exists() and not (pgdata / ".s.PGSQL.5432.lock").exists()
    finally:
        zombie.wait()
    assert clear_stale_pidfile(pgdata) is None  # no pid file: nothing to do


def pgserver_handles(pgdata: Path) -> list[int]:
    """pgserver's list of processes holding the server."""
    import json

    path = pgdata / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


def test_a_handle_is_alive_only_while_its_process_is_the_one_that_registered():
    me = psutil.Process()
    assert handle_alive(me.pid, me.create_time())
    assert handle_alive(me.pid, None)
    assert not handle_alive(me.pid, me.create_time() - 60)  # the pid now names another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not handle_alive(child.pid, None)
