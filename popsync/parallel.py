"""Local parallelism of one machine: run independent pieces of a step, or a step's mapped tasks
in ``popsync run``, in forked worker processes (the work is CPU-bound pandas/Arrow/GX, which
threads would serialize on the GIL).

In Airflow the mapped tasks are spread by the executor; this is for work inside one process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


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


def map_forked(function: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[function(item) for item in items]`` on up to ``workers`` forked processes, in order.

    Falls back to this process when one worker is asked for, there is one item, or forking is
    not allowed here. A worker's exception is raised here, as in the loop.
    """
    items = list(items)
    workers = min(workers, len(items))
    if workers <= 1 or not can_fork():
        return [function(item) for item in items]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(function, items))
