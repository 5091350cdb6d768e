"""popsync_nightly on a real Celery cluster of two workers publishes what ``popsync run`` does.

Takes a copy of the code (every process must run the same code), starts PostgreSQL-backed
Airflow (api-server, scheduler, dag-processor, triggerer) and two Celery workers on this machine
(tests/deploy/airflow_cluster.py), runs the product DAG on a small synthetic nation, then checks
that the mapped matching tasks ran on both workers and that the publication (metrics, reason
counts, results, lists) equals a plain ``popsync run`` of the same code, input and run date.
Everything it starts is stopped and both databases are dropped, pass or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from airflow_cluster import VENV_BIN, AirflowCluster, snapshot_code

from pipelines.lists import HEADERS

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "popsync_nightly"
PEOPLE = 3000
# Bands of 750 registry rows: four mapped matching tasks, enough to keep two workers busy. Each
# task costs ~10-20 s of process start and imports here, so more bands only make the test slower.
BAND_ROWS = 750
CHUNK_ROWS = 1500  # two chunks per source and two person partitions: they fan out too
# 01:00 Asia/Ho_Chi_Minh on 2026-11-21, the nightly schedule's time.
LOGICAL_DATE = "2026-11-20T18:00:00+00:00"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def popsync(code: Path, *args: str) -> None:
    """The ``popsync`` command, running the code at ``code`` (as the cluster's processes do)."""
    pythonpath = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    result = subprocess.run(
        [str(VENV_BIN / "popsync"), *args], capture_output=True, text=True, timeout=300,
        cwd=REPO, env=env,
    )
    assert result.returncode == 0, f"popsync {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def read_publication(db_url: str) -> dict[str, pd.DataFrame]:
    """The published tables, in an order that does not depend on who wrote them."""
    engine = sa.create_engine(db_url)
    tables = {}
    try:
        with engine.connect() as conn:
            for name, keys in {
                "publications": ["run_date"],
                "metrics": ["run_date", "scheme", "line", "province_code"],
                "reason_counts": ["run_date", "scheme", "province_code", "status", "reason"],
            }.items():
                frame = pd.read_sql_table(name, conn)
                tables[name] = frame.sort_values(keys).reset_index(drop=True)
            runs = pd.read_sql_table("runs", conn)
    finally:
        engine.dispose()
    tables["publications"] = tables["publications"][["run_date", "path"]]
    tables["runs"] = runs
    return tables


def assert_explanations_equal(expected: pd.Series, actual: pd.Series) -> None:
    """Explanations are JSON ({"prior": w, "name": [level, w], ...}): the same levels and weights.

    The matching engine prints a weight as ``-2.80`` or ``-2.8`` depending on the code path its
    batch took, and learned weights may differ in the last bits between processes, so compare
    the parsed values, weights to the printed precision.
    """
    assert len(expected) == len(actual)
    for left, right in zip(expected.fillna(""), actual.fillna(""), strict=True):
        if left == right:
            continue
        left_value, right_value = json.loads(left), json.loads(right)
        assert left_value.keys() == right_value.keys(), (left, right)
        for key, value in left_value.items():
            other = right_value[key]
            if isinstance(value, list):
                assert value[0] == other[0], (left, right)
                value, other = value[1], other[1]
            assert abs(value - other) <= 0.011, (left, right)


def assert_same_frames(expected: pd.DataFrame, actual: pd.DataFrame, explanation: str) -> None:
    """Equal frames; the explanation column (when there is one) compared by its values."""
    shown = [explanation] if explanation in actual.columns else []
    pd.testing.assert_frame_equal(expected.drop(columns=shown), actual.drop(columns=shown))
    if shown:
        assert_explanations_equal(expected[explanation], actual[explanation])


def publication_lists(out_dir: Path, path: str) -> dict[str, pd.DataFrame]:
    folder = out_dir / path
    return {
        str(file.relative_to(folder)): pd.read_csv(
            file, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        for file in sorted(folder.rglob("*.csv"))
    }


def sorted_results(out_dir: Path, path: str) -> pd.DataFrame:
    results = pd.read_parquet(out_dir / path / "results.parquet")
    return results.sort_values("vss_code").reset_index(drop=True)


def test_popsync_nightly_fans_out_over_two_celery_workers(tmp_path, postgres_server, redis_url):
    code = snapshot_code(tmp_path / "code")
    nation = tmp_path / "nation"
    popsync(code, "generate", "--people", str(PEOPLE), "--seed", "11", "--out", str(nation))

    cluster = AirflowCluster(
        dags_folder=code / "dags", workdir=tmp_path / "cluster", pg_server_url=postgres_server,
        redis_url=redis_url, workers=2, code_path=code
    )
    airflow_out = tmp_path / "airflow-out"
    config = {
        "registry": {"source": str(nation / "registry.parquet")},
        "population": {"source": str(nation / "population.parquet")},
        "output": {"dir": str(airflow_out), "db_url": cluster.metrics_db_url},
        "partition": {"max_rows": BAND_ROWS, "chunk_rows": CHUNK_ROWS},
    }
    config_path = tmp_path / "popsync.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cluster.extra_env = {"POPSYNC_CONFIG": str(config_path)}

    with cluster:
        cluster.wait_for_dag(DAG_ID)
        run_id = cluster.trigger(DAG_ID, logical_date=LOGICAL_DATE)
        state = cluster.wait_for_run(DAG_ID, run_id, timeout=420)
        task_instances = cluster.task_instances(DAG_ID, run_id)
        assert state == "success", f"{task_instances}\n{cluster.log_tails()}"
        # Read while the metrics database still exists: leaving the block drops it.
        airflow_tables = read_publication(cluster.metrics_db_url)

    mapped = [ti for ti in task_instances if ti["map_index"] >= 0]
    assert len(mapped) >= 4, f"expected a fan-out, got {task_instances}"
    assert all(ti["state"] == "success" for ti in task_instances), task_instances
    # every phase fans out: the mapped tasks of several steps, not only matching, ran on both
    spread = {
        task_id for task_id in {ti["task_id"] for ti in mapped}
        if {ti["hostname"] for ti in mapped if ti["task_id"] == task_id}
        == set(cluster.worker_names)
    }
    assert "match" in spread and len(spread) >= 2, f"only {spread} ran on both: {task_instances}"

    publications = airflow_tables["publications"]
    assert len(publications) == 1
    run_date, path = publications.loc[0, ["run_date", "path"]]
    assert (airflow_tables["runs"]["status"] == "succeeded").sum() == 1

    plain_out = tmp_path / "plain-out"
    popsync(
        code, "run", "--config", str(config_path), "--out", str(plain_out), "--run-date", run_date,
        "--db-url", f"sqlite:///{plain_out / 'popsync.db'}",
    )
    plain_tables = read_publication(f"sqlite:///{plain_out / 'popsync.db'}")

    pd.testing.assert_frame_equal(plain_tables["publications"], publications)
    for name in ("metrics", "reason_counts"):
        assert len(airflow_tables[name]) > 0, name
        pd.testing.assert_frame_equal(plain_tables[name], airflow_tables[name], check_dtype=False)
    assert_same_frames(
        sorted_results(plain_out, path), sorted_results(airflow_out, path), "explanation"
    )
    airflow_lists = publication_lists(airflow_out, path)
    plain_lists = publication_lists(plain_out, path)
    assert len(airflow_lists) > 10
    assert plain_lists.keys() == airflow_lists.keys()
    for name, frame in airflow_lists.items():
        assert_same_frames(plain_lists[name], frame, HEADERS.get("explanation", ""))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
