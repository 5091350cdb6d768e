"""Forked workers give the loop's results in the loop's order, and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from popsync.errors import PopsyncError
from popsync.parallel import map_forked


def _square_and_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def _fail_on_three(value: int) -> int:
    if value == 3:
        raise PopsyncError(f"item {value} is bad")
    return value


def test_results_come_back_in_order_from_other_processes():
    results = map_forked(_square_and_pid, range(8), workers=2)
    assert [square for square, _ in results] == [v * v for v in range(8)]
    assert os.getpid() not in {pid for _, pid in results}


def test_one_worker_runs_in_this_process():
    assert {pid for _, pid in map_forked(_square_and_pid, range(3), workers=1)} == {os.getpid()}


def test_a_workers_error_reaches_the_caller_with_its_message():
    with pytest.raises(PopsyncError, match="item 3 is bad"):
        map_forked(_fail_on_three, range(5), workers=2)


_KILLED_PARENT = """
import os, sys, time
from popsync.parallel import map_forked

def work(index):
    with open(os.path.join(sys.argv[1], f"worker-{index}"), "w") as note:
        note.write(str(os.getpid()))
    time.sleep(120)

map_forked(work, range(2), workers=2)
"""


def _alive(pid: int) -> bool:
    """Running, or stopped: anything but gone or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_die_when_their_parent_is_killed(tmp_path):
    """kill -9 of ``popsync run`` runs no cleanup: its workers must not live on (issue 14)."""
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "workers never started"
            time.sleep(0.1)
        time.sleep(0.2)  # the notes are written: their pids are there
        workers = [int(p.read_text()) for p in tmp_path.glob("worker-*")]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in workers if _alive(pid)]
    finally:
        parent.kill()
    for pid in orphans:  # clean up after a failure: they are this test's processes
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers {orphans} outlived their killed parent"
