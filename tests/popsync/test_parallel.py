"""Forked workers give the loop's results in the loop's order, and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from popsync.errors import PopsyncError
from popsync.parallel import map_forked
from popsync.synthetic import generate_nation, write_nation


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
import time
from popsync.parallel import map_forked
map_forked(time.sleep, [120, 120], workers=2)
"""


def _alive(pid: int) -> bool:
    """Running, or stopped: anything but gone or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def _orphans_after_kill_9(parent: subprocess.Popen) -> list[int]:
    """Wait for two forked workers of ``parent``, kill it with SIGKILL (no cleanup runs), and
    return the workers still alive 10 s later (then killed: they are the test's own)."""
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2:
            assert parent.poll() is None and time.monotonic() < deadline, "no workers seen"
            workers = _children(parent.pid)
            time.sleep(0.05)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in workers if _alive(pid)]
    finally:
        parent.kill()
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    return orphans


def test_workers_die_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT])
    assert not _orphans_after_kill_9(parent)


def test_kill_9_of_popsync_run_leaves_no_worker_behind(tmp_path):
    """The probe of issue 14: ``kill -9`` of ``popsync run`` while its forked workers run."""
    write_nation(generate_nation(1500, seed=11), tmp_path / "nation", force=True)
    run = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--registry",
         str(tmp_path / "nation" / "registry.parquet"), "--population",
         str(tmp_path / "nation" / "population.parquet"), "--out", str(tmp_path / "out"),
         "--run-date", "2026-11-20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not _orphans_after_kill_9(run)


def _fail_soon_or_plainly(value: int) -> int:
    if value == 0:  # what a sibling task hits once the failing one cleaned up after itself
        time.sleep(0.5)
        raise FileNotFoundError("part-00000.parquet")
    raise PopsyncError("stage: no space left on the disk")


def test_the_error_said_for_the_user_wins_over_a_siblings_consequence():
    with pytest.raises(PopsyncError, match="no space left"):
        map_forked(_fail_soon_or_plainly, [0, 1], workers=2)
