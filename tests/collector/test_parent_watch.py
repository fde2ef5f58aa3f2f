"""A decode worker ends with the collector that started it, also when the collector is killed -9
(collector/parent_watch.py): processes whose parent dies are checked for real, through /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from collector.parent_watch import EXIT_STATUS

REPO = Path(__file__).resolve().parents[2]
GENEROUS_S = 60  # a bound for a loaded machine, not a timing assertion

# The worker: watches the parent it was given, says so, then waits as a pool worker does.
WORKER = """
import os, sys, time
if sys.argv[1] == "poll":
    del os.pidfd_open  # as on a system without pidfd: the getppid() loop
from collector.parent_watch import exit_with_parent
exit_with_parent(int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid())
print(os.getpid(), flush=True)
time.sleep(600)
"""
# Its parent: starts it, passes on its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
print(worker.stdout.readline().decode().strip(), flush=True)
time.sleep(600)
"""


def gone(pid: int, created: float) -> bool:
    """No such process any more, or only its zombie (init here need not reap orphans)."""
    try:
        process = psutil.Process(pid)
        return process.create_time() != created or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[tuple[int, float]]) -> list[int]:
    deadline = time.monotonic() + GENEROUS_S
    while time.monotonic() < deadline:
        left = [pid for pid, created in processes if not gone(pid, created)]
        if not left:
            return []
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("watch", ["pidfd", "poll"])
def test_a_worker_ends_when_its_parent_is_killed_9(watch):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, WORKER, watch], cwd=REPO, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    worker = None
    try:
        worker = psutil.Process(int(parent.stdout.readline()))
        worker_id = (worker.pid, worker.create_time())
        assert worker.ppid() == parent.pid
        time.sleep(0.2)
        assert not gone(*worker_id), "the worker ended while its parent lives"
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        assert wait_gone([worker_id]) == [], f"worker {worker.pid} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if worker is not None and worker.is_running():
            worker.kill()


def test_a_worker_whose_parent_died_before_it_watched_exits_at_once():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    worker = subprocess.run([sys.executable, "-c", WORKER, "pidfd", str(dead.pid)], cwd=REPO, capture_output=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=GENEROUS_S)
    assert worker.returncode == EXIT_STATUS and worker.stdout == b""
