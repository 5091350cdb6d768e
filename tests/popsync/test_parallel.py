"""Forked workers give the loop's results in the loop's order, and its errors."""

from __future__ import annotations

import os

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
