"""A worker process that ends with the process that started it, however that one ends (kill -9 too).

A ProcessPoolExecutor worker waits on its call queue, a pipe whose write end the worker holds
itself, so it never sees end-of-file when the collector dies: without this, every kill -9 left the
decode workers running forever, adopted by init.

Not prctl(PR_SET_PDEATHSIG): Linux sends that signal when the *thread* that created the child
ends, and a ProcessPoolExecutor starts workers from whichever thread submits (an event loop in a
thread, a request thread); a worker would die with it."""

from __future__ import annotations

import os
import select
import threading
import time

POLL_S = 1.0  # only where pidfd_open() is missing (not Linux, or a kernel before 5.3)
EXIT_STATUS = 70  # EX_SOFTWARE: nobody waits for it, but a trace of why in a core dump or strace


def exit_with_parent(parent: int) -> None:
    """End this process as soon as `parent` has exited. `parent` is the pid the parent passed
    itself (not os.getppid() read here): if the parent died before this runs, the child has
    already been adopted, and the difference shows it."""
    watched = _pidfd(parent)
    if os.getppid() != parent:  # died before we could watch it (or the pidfd names a reused pid)
        os._exit(EXIT_STATUS)
    threading.Thread(target=_wait, args=(parent, watched), name="causeline-parent-watch", daemon=True).start()


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or the parent is gone already (getppid tells)
        return None


def _wait(parent: int, watched: int | None) -> None:
    if watched is not None:
        select.select([watched], [], [])  # readable once the whole parent process has exited
    else:
        while os.getppid() == parent:
            time.sleep(POLL_S)
    # os._exit, not sys.exit: the main thread is blocked in the pool's queue; whatever task it
    # runs has nobody left to answer.
    os._exit(EXIT_STATUS)
