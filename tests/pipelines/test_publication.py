"""Atomic, idempotent publication: a failure part-way, a database that is down, a crash between the
folder swap and the commit, and a truncated extract all leave the previous publication intact."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa
from pipeline_helpers import copy_of, group_files, read_table, run

from pipelines import night, publish, steps
from pipelines.config import load_config
from popsync import store
from popsync.errors import PopsyncError

RUN_DATE = "2026-11-20"


def _fingerprint(folder):
    """Every file of a publication folder and its content hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _db_state(out):
    return {
        "metrics": read_table(out, store.metrics)
        .sort_values(["run_date", "scheme", "line", "province_code"])
        .reset_index(drop=True),
        "publications": read_table(out, store.publications),
        "reason_counts": len(read_table(out, store.reason_counts)),
    }


def _assert_same_db(before, after):
    pd.testing.assert_frame_equal(before["metrics"], after["metrics"])
    pd.testing.assert_frame_equal(before["publications"], after["publications"])
    assert before["reason_counts"] == after["reason_counts"]


@pytest.fixture
def changed_registry(tmp_path, registry_path):
    """The same registry with a tenth of the IDs removed: a rerun would publish other numbers."""
    registry = pd.read_parquet(registry_path)
    registry.loc[registry.index[::10], "national_id"] = None
    path = tmp_path / "registry_changed.parquet"
    registry.to_parquet(path, index=False)
    return path


def test_failure_half_way_through_publication_keeps_the_previous_one(
    published, tmp_path, registry_path, population_path, changed_registry
):
    out = copy_of(published, tmp_path / "out")
    folder = out / store.publication_path(RUN_DATE)
    files_before, db_before = _fingerprint(folder), _db_state(out)
    # A real failure inside the publication transaction: after the run date's rows are deleted
    # and the new metrics inserted, inserting reason counts fails.
    engine = sa.create_engine(store.default_db_url(out))
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TRIGGER fail_publication BEFORE INSERT ON reason_counts "
                "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
            )
        )
    assert run(out, changed_registry, population_path, RUN_DATE) == 2
    assert _fingerprint(folder) == files_before
    _assert_same_db(db_before, _db_state(out))
    runs = read_table(out, store.runs)
    assert runs["status"].tolist() == ["succeeded", "failed"]
    assert "publish" in runs["message"].iloc[-1]
    assert not list((out / store.PUBLICATIONS_DIR).glob(".replaced-*"))

    with engine.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER fail_publication"))
    engine.dispose()
    assert run(out, changed_registry, population_path, RUN_DATE) == 0
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["run_id"] == 3
    assert read_table(out, store.publications)["run_id"].tolist() == [3]
    after = _db_state(out)["metrics"]
    assert after["participants"].sum() == db_before["metrics"]["participants"].sum()
    assert not _db_state(out)["metrics"].equals(db_before["metrics"])  # the new numbers are in


def test_database_down_at_publish_time(published, tmp_path, registry_path, population_path):
    out = copy_of(published, tmp_path / "out")
    folder = out / store.publication_path(RUN_DATE)
    files_before, db_before = _fingerprint(folder), _db_state(out)
    config = load_config(None, registry=registry_path, population=population_path, out_dir=out)
    work_dir = night.run_night(config, RUN_DATE, until="stage", quiet=True)
    database = out / store.DB_FILE
    database.rename(out / "db-away")
    database.mkdir()  # the database path now cannot be opened: the server is "down"
    with pytest.raises(PopsyncError, match="cannot be reached.*previous publication stays"):
        steps.publish_run(work_dir, work_dir, "staged", *group_files(work_dir))
    database.rmdir()
    (out / "db-away").rename(database)
    assert _fingerprint(folder) == files_before
    _assert_same_db(db_before, _db_state(out))


def test_recovery_after_a_crash_between_folder_swap_and_commit(
    published, tmp_path, registry_path, population_path
):
    out = copy_of(published, tmp_path / "out")
    folder = out / store.publication_path(RUN_DATE)
    files_before = _fingerprint(folder)
    # The state a crash leaves: the old folder set aside, a newer folder in place, no commit.
    replaced = out / store.PUBLICATIONS_DIR / f"{publish.REPLACED_PREFIX}{RUN_DATE}-r2"
    shutil.copytree(folder, replaced)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**manifest, "run_id": 2}), "utf-8")
    done = publish.recover(out, store.engine_for(store.default_db_url(out)))
    assert done and "restored the previous one" in done[0]
    assert _fingerprint(folder) == files_before
    assert not replaced.exists()


def test_volume_drop_stops_the_night_before_publishing(
    published, tmp_path, registry_path, population_path
):
    out = copy_of(published, tmp_path / "out")
    registry = pd.read_parquet(registry_path)
    truncated = tmp_path / "registry_truncated.parquet"
    registry.iloc[: int(len(registry) * 0.6)].to_parquet(truncated, index=False)
    assert run(out, truncated, population_path, "2026-11-21") == 2
    assert read_table(out, store.publications)["run_date"].tolist() == [RUN_DATE]
    assert not (out / store.publication_path("2026-11-21")).exists()
    runs = read_table(out, store.runs)
    assert runs["status"].tolist() == ["succeeded", "failed"]
    assert "volume_drop" in runs["message"].iloc[-1]
    assert runs["stopped_by"].iloc[-1] == "check_keys"  # the gate, for the portal and alerts
    assert f"min_value={math.ceil(len(registry) * (1 - 0.3))}" in runs["message"].iloc[-1]
