"""kill -9 of a real collector leaves none of its child processes behind: the decode workers end
with it (collector/parent_watch.py) and, once they have, multiprocessing's resource tracker."""

from __future__ import annotations

import signal

import psutil
import pytest

from tests.collector.test_parent_watch import wait_gone
from tests.e2e.test_kill9 import free_port, start_server

WORKERS = 3


@pytest.mark.slow
def test_kill_9_of_a_collector_leaves_no_decode_worker(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSELINE_INGEST_PROCESSES", str(WORKERS))
    database_url = pg.fresh_database()
    log = open(tmp_path / "server.log", "wb")
    server = start_server(database_url, free_port(), free_port(), log)
    children = []
    try:
        children = psutil.Process(server.pid).children(recursive=True)
        spawned = [p for p in children if "--multiprocessing-fork" in p.cmdline()]
        assert len(spawned) == WORKERS, [p.cmdline() for p in children]
        identities = [(p.pid, p.create_time()) for p in children]
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        left = wait_gone(identities)
        assert left == [], f"children outlived the killed collector: {left}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for child in children:  # only after a failed assertion
            try:
                child.kill()
            except psutil.Error:
                pass
        log.close()
        pg.drop(database_url)
