"""One run per run date at a time: a second run is refused naming the first, never removes its
staging folder, and a run silent for hours is taken over and can no longer publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pipeline_helpers import group_files, read_table, run

from pipelines import night, runlock, steps
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
    assert runs.loc[1, "status"] == "failed" and "run 2 took" in runs.loc[1, "message"]
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
