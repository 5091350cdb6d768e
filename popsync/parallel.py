"""Local parallelism of one machine: run independent pieces of a step, or a step's mapped tasks
in ``popsync run``, in forked worker processes (the work is CPU-bound pandas/Arrow/GX, which
threads would serialize on the GIL).

In Airflow the mapped tasks are spread by the executor; this is for work inside one process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, wait
from typing import TypeVar

from popsync.errors import PopsyncError

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def default_workers() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    # A daemonic process (a Celery or multiprocessing pool worker) may not start children.
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def _die_with_parent(parent: int) -> None:
    """A worker's first act: die when the process that forked it dies. A ``kill -9`` of
    ``popsync run`` runs no cleanup, and its workers (hundreds of MB each) would otherwise live
    on under init, still working on a night nobody waits for (issue 14)."""
    if sys.platform.startswith("linux"):
        # the kernel sends the signal whatever way the parent dies
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the request above took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def map_forked(function: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[function(item) for item in items]`` on up to ``workers`` forked processes, in order.

    Falls back to this process when one worker is asked for, there is one item, or forking is
    not allowed here. A worker's exception is raised here once every item is done: the first
    PopsyncError (said for the user: a full disk, a database gone) before any other, which may
    only be a consequence of it in a sibling task. The workers die with this process, however
    it dies.
    """
    items = list(items)
    workers = min(workers, len(items))
    if workers <= 1 or not can_fork():
        return [function(item) for item in items]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(function, item) for item in items]
        wait(futures)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise next((e for e in errors if isinstance(e, PopsyncError)), errors[0])
    return [f.result() for f in futures]
