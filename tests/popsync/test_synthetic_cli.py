"""``popsync generate`` on the command line: files, determinism, bad input, nothing half-written."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import struct
import subprocess
import sys
import termios

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main as popsync
from popsync.contracts import (
    POPULATION_REQUIRED,
    REGISTRY_OPTIONAL,
    REGISTRY_REQUIRED,
    TRUTH_COLUMNS,
)
from popsync.errors import PopsyncError
from popsync.reference import PROVINCES_63
from popsync.synthetic import ERROR_PROFILES, ERROR_TAGS, generate_nation, write_nation
from popsync.synthetic.nation import generate_chunks, write_chunks

FILES = ("population.parquet", "registry.parquet", "truth.parquet")


def _digest(folder) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def _leftovers(parent) -> list[str]:
    return [p.name for p in parent.iterdir() if "popsync-tmp" in p.name]


def test_same_seed_same_bytes(tmp_path):
    for run in ("a", "b", "c"):
        seed = "8" if run == "c" else "7"
        assert popsync(["generate", "--people", "20000", "--seed", seed,
                        "--out", str(tmp_path / run)]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["population.parquet"] != \
        _digest(tmp_path / "c")["population.parquet"]
    assert pq.read_schema(tmp_path / "a" / "registry.parquet").names == \
        [*REGISTRY_REQUIRED, *REGISTRY_OPTIONAL]


def test_same_seed_same_bytes_over_many_chunks(tmp_path, monkeypatch):
    from popsync.synthetic import nation as nation_module

    monkeypatch.setattr(nation_module, "CHUNK_PEOPLE", 2500)
    for run in ("a", "b"):
        write_chunks(generate_chunks(10_000, seed=7), tmp_path / run)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert pq.ParquetFile(tmp_path / "a" / "population.parquet").metadata.num_row_groups == 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--people", "0"], "--people must be a positive number"),
        (["--people", "-5"], "--people must be a positive number"),
        (["--people", "100", "--profile", "filthy"], "unknown error profile 'filthy'"),
        (["--people", "100", "--seed", "-1"], "--seed must be zero or a positive"),
    ],
)
def test_bad_requests_fail_with_one_line(tmp_path, capsys, arguments, message):
    out = tmp_path / "out"
    code = popsync(["generate", "--seed", "1", "--out", str(out), *arguments])
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and err.count("\n") == 1
    assert not out.exists() and not _leftovers(tmp_path)


def test_non_empty_folder_needs_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's file")
    assert popsync(["generate", "--people", "500", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert popsync(["generate", "--people", "500", "--seed", "1", "--out", str(out),
                    "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "notes.txt"])
    assert not _leftovers(tmp_path)


def test_unwritable_output_fails_with_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert popsync(["generate", "--people", "500", "--seed", "1",
                    "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "not a writable folder" in err and err.count("\n") == 1
    assert popsync(["generate", "--people", "500", "--seed", "1", "--out", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_failure_midway_leaves_nothing(tmp_path):
    def broken_chunks():
        yield from generate_chunks(500, seed=1)
        raise PopsyncError("disk full (simulated by the chunk source)")

    out = tmp_path / "out"
    with pytest.raises(PopsyncError):
        write_chunks(broken_chunks(), out)
    assert not out.exists() and not _leftovers(tmp_path)


def test_write_nation_round_trip(tmp_path):
    nation = generate_nation(3000, seed=4)
    write_nation(nation, tmp_path / "out")
    for name in ("population", "registry", "truth"):
        written = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        pd.testing.assert_frame_equal(written, getattr(nation, name), check_dtype=False)
    with pytest.raises(PopsyncError, match="not empty"):
        write_nation(nation, tmp_path / "out")
    write_nation(nation, tmp_path / "out", force=True)


# The generate subcommand on its own: ``pipelines.cli`` imports every subcommand's module (GX,
# Airflow) to build its parser, which costs tens of seconds per process on this machine.
_GENERATE_ALONE = (
    "import argparse, sys\n"
    "from popsync.synthetic import cli\n"
    "parser = argparse.ArgumentParser()\n"
    "cli.add_arguments(parser)\n"
    "sys.exit(cli.main(parser.parse_args()))\n"
)


def test_progress_bar_only_on_a_terminal(tmp_path):
    command = [sys.executable, "-c", _GENERATE_ALONE, "--people", "3000", "--seed", "1"]
    quiet = subprocess.run([*command, "--out", str(tmp_path / "quiet")], capture_output=True,
                           text=True, check=True)
    assert quiet.stderr == ""
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide; give it a real terminal's size.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        shown = subprocess.Popen([*command, "--out", str(tmp_path / "shown")],
                                 stdout=subprocess.DEVNULL, stderr=terminal)
        os.close(terminal)
        received = b""
        while True:  # read until the child closes the terminal (EIO on Linux)
            try:
                data = os.read(controller, 65536)
            except OSError:
                break
            if not data:
                break
            received += data
        assert shown.wait() == 0
    finally:
        os.close(controller)
    progress = received.decode("utf-8", "replace")
    assert "generate" in progress and "people" in progress and "100%" in progress


@pytest.mark.slow
def test_must_show_200k(tmp_path):
    """The issue's acceptance run, as a user types it."""
    out = tmp_path / "X"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "generate", "--people", "200000", "--seed", "7",
         "--out", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when not on a terminal
    population = pd.read_parquet(out / "population.parquet")
    registry = pd.read_parquet(out / "registry.parquet")
    truth = pd.read_parquet(out / "truth.parquet")
    assert tuple(population.columns) == POPULATION_REQUIRED and len(population) == 200_000
    assert set(REGISTRY_REQUIRED) <= set(registry.columns)
    assert tuple(truth.columns) == TRUTH_COLUMNS
    assert set(population["province_code"]) == set(PROVINCES_63)
    assert set(registry["province_code"]) == set(PROVINCES_63)
    ids = population["personal_id"]
    assert ids.str.fullmatch(r"\d{12}").all() and ids.is_unique
    year = population["birth_date"].str[:4].astype(int)
    digit = 2 * (year // 100 - 19) + (population["gender"] == "F").astype(int)
    assert (ids.str[3].astype(int) == digit).all()
    assert (ids.str[4:6].astype(int) == year % 100).all()
    vss = registry["vss_code"]
    assert vss.is_unique and vss.str.fullmatch(r"\d{10}").all()
    assert (vss.str[:2] == registry["province_code"]).all()
    assert (truth["vss_code"] == vss).all()
    tags = truth["error_tags"].str.split(",").explode().value_counts()
    rows = len(truth)
    for tag in ERROR_TAGS:
        rate = ERROR_PROFILES["default"][tag]
        assert abs(tags.get(tag, 0) - rows * rate) <= 5 * (rows * rate * (1 - rate)) ** 0.5, tag
