"""One run per run date at a time: a second run is refused naming the first, never removes its
staging folder, and a run silent for hours is taken over and can no longer publish."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pipeline_helpers import group_files, read_table, run

from pipelines import night, publish, runlock, steps
from pipelines.config import load_config
from popsync import store
from popsync.errors import PopsyncError

RUN_DATE = "2026-11-20"


def _config(out, registry_path, population_path):
    return load_config(None, registry=registry_path, population=population_path, out_dir=out)


def test_a_second_run_is_refused_while_the_first_is_alive_and_the_first_publishes_whole(
    tmp_path, registry_path, population_path, capsys
):
    out = tmp_path / "out"
    config = _config(out, registry_path, population_path)
    first = night.run_night(config, RUN_DATE, until="stage", quiet=True)  # lists written
    # the probe's run B: same output, same date, while A waits to publish
    assert run(out, registry_path, population_path, RUN_DATE) == 2
    message = capsys.readouterr().err
    assert "is being run by run 1" in message and "this run stops" in message
    final = steps.publish_run(first, first, "staged", *group_files(first))
    lists = list((out / store.publication_path(RUN_DATE) / "lists").rglob("*.xlsx"))
    assert str(final).endswith(RUN_DATE) and len(lists) > 50
    runs = read_table(out, store.runs)
    assert runs["status"].tolist() == ["succeeded"]  # B left no attempt behind
    assert read_table(out, store.run_locks).empty  # published: the date is free again
    assert run(out, registry_path, population_path, RUN_DATE) == 0


def test_a_run_silent_for_hours_is_taken_over_and_cannot_publish(
    tmp_path, registry_path, population_path
):
    out = tmp_path / "out"
    config = _config(out, registry_path, population_path)
    first = night.run_night(config, RUN_DATE, until="stage", quiet=True)
    engine = store.engine_for(config.db_url)
    with engine.begin() as connection:
        connection.execute(sa.update(store.run_locks).values(
            heartbeat_at=datetime.now(UTC) - runlock.STALE_AFTER - timedelta(minutes=1)))
    second = steps.start_run(config, RUN_DATE)
    with pytest.raises(PopsyncError, match="no longer holds run date .* run 2 took it over"):
        steps.publish_run(first, first, "staged", *group_files(first))
    assert not (out / store.publication_path(RUN_DATE)).exists()
    runs = read_table(out, store.runs).set_index("run_id")
    assert runs.loc[1, "status"] == "abandoned" and "by run 2" in runs.loc[1, "message"]
    assert runs.loc[2, "status"] == "running"
    assert read_table(out, store.run_locks)["run_id"].tolist() == [2]
    assert second.endswith(f"{RUN_DATE}-r2")


def test_a_run_that_failed_for_good_frees_its_date(tmp_path, population_path):
    out = tmp_path / "out"
    config = _config(out, tmp_path / "missing.parquet", population_path)
    work_dir = steps.start_run(config, RUN_DATE)
    with pytest.raises(PopsyncError, match="no such file"):
        steps.plan_extract(work_dir, will_retry=True)
    assert read_table(out, store.run_locks)["run_id"].tolist() == [1]  # a retry will come
    with pytest.raises(PopsyncError, match="no such file"):
        steps.plan_extract(work_dir, will_retry=False)
    assert read_table(out, store.run_locks).empty
    steps.start_run(config, RUN_DATE)  # not refused


def test_a_killed_run_is_marked_abandoned_by_a_night_of_another_date(
    tmp_path, registry_path, population_path
):
    """A killed attempt (its lock silent for hours) no longer stays ``running`` for ever when
    the next night has another date: marked ``abandoned``, its lock freed, its staging folder
    removed; a live run of a third date is left alone (issue 14)."""
    out = tmp_path / "out"
    config = _config(out, registry_path, population_path)
    steps.start_run(config, "2026-11-18")  # killed with kill -9: nothing more happens
    steps.start_run(config, "2026-11-19")  # alive, on another worker
    staging = publish.staging_folder(out, "2026-11-18", 1)
    staging.mkdir(parents=True)
    engine = store.engine_for(config.db_url)
    with engine.begin() as connection:
        connection.execute(sa.update(store.run_locks).where(store.run_locks.c.run_id == 1).values(
            heartbeat_at=datetime.now(UTC) - runlock.STALE_AFTER - timedelta(minutes=1)))
    steps.start_run(config, "2026-11-20")
    runs = read_table(out, store.runs).set_index("run_id")
    assert runs["status"].to_dict() == {1: "abandoned", 2: "running", 3: "running"}
    assert "run 3" in runs.loc[1, "message"] and runs.loc[1, "finished_at"] is not None
    assert sorted(read_table(out, store.run_locks)["run_id"]) == [2, 3]
    assert not staging.exists()


def test_the_database_cut_mid_run_is_said_plainly_and_the_next_run_records_the_failure(
    tmp_path, registry_path, population_path
):
    """A step whose database goes away raises a message, not a traceback; the failure it could
    not write is recorded by the next run, which is not refused by the dead run's lock."""
    out = tmp_path / "out"
    config = _config(out, registry_path, population_path)
    work_dir = night.run_night(config, RUN_DATE, until="extract", quiet=True)
    # the cut as the run sees it: its database unreadable when its failure is recorded
    database = out / store.DB_FILE
    database.rename(database.with_suffix(".away"))
    (out / store.DB_FILE).mkdir()
    with pytest.raises(PopsyncError, match="cannot be reached"):
        steps.check_keys(work_dir, [[]])
    (out / store.DB_FILE).rmdir()
    database.with_suffix(".away").rename(database)  # the database is back
    assert read_table(out, store.runs)["status"].tolist() == ["running"]
    second = steps.start_run(config, RUN_DATE)  # not refused by the dead run's lock
    runs = read_table(out, store.runs).set_index("run_id")
    assert runs.loc[1, "status"] == "failed" and "check_keys" in runs.loc[1, "message"]
    assert runs.loc[2, "status"] == "running"

    @steps.step("probe")
    def reads_a_database_that_is_gone(work_dir):
        with sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone").connect():
            pass

    with pytest.raises(PopsyncError, match="probe: the publication database .* cannot be "
                       "reached .* nothing was published"):
        reads_a_database_that_is_gone(second)


def test_a_full_disk_is_said_plainly_and_the_failed_runs_files_are_removed(
    tmp_path, registry_path, population_path
):
    out = tmp_path / "out"
    config = _config(out, registry_path, population_path)
    work_dir = night.run_night(config, RUN_DATE, until="stage_employers", quiet=True)
    staging = publish.staging_folder(out, RUN_DATE, 1)
    (staging / "results.parquet").symlink_to("/dev/full")  # writes there: ENOSPC
    resolved = sorted(str(p) for p in (steps.RunContext.load(work_dir).path("results")).glob("*"))
    with pytest.raises(PopsyncError, match="stage: no space left on the disk .* removed"):
        steps.stage_publication(work_dir, [1], resolved,
                                str(steps.RunContext.load(work_dir).path("corrections")), [0])
    assert not staging.exists()
    left = {p.name for p in (out / "work" / f"{RUN_DATE}-r1").iterdir()}
    assert not left & set(steps.INTERMEDIATES) and "run.json" in left
    runs = read_table(out, store.runs)
    assert runs["status"].tolist() == ["failed"] and "no space" in runs["message"].iloc[0]
    assert read_table(out, store.run_locks).empty


def test_two_processes_on_one_output_and_date_publish_once_and_whole(
    tmp_path, registry_path, population_path
):
    """The probe of issue 14 with two real ``popsync run`` processes started together."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipelines.cli", "run", "--registry", str(registry_path),
               "--population", str(population_path), "--out", str(out), "--run-date", RUN_DATE]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    finished = [(r.wait(timeout=600), r.stderr.read()) for r in runs]
    codes = sorted(code for code, _ in finished)
    assert codes == [0, 2], finished
    refusal = next(err for code, err in finished if code == 2)
    assert "this run stops" in refusal and "Traceback" not in refusal
    folder = out / store.publication_path(RUN_DATE)
    manifest = json.loads((folder / publish.MANIFEST).read_text("utf-8"))
    assert manifest["list_files"] == len(list((folder / "lists").rglob("unsynchronized.*")))
    assert (folder / "results.parquet").is_file() and (folder / "validation_report.html").is_file()
    assert read_table(out, store.runs)["status"].tolist() == ["succeeded"]
    assert not list((out / store.PUBLICATIONS_DIR).glob(".*"))  # no staging left behind
