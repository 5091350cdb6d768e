"""dag.test() runs the whole popsync_nightly on a small synthetic nation and publishes exactly what
``popsync run`` publishes from the same input."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from airflow_env import DAGS, airflow_env, migrate, python

from pipelines import cli
from popsync import store
from popsync.synthetic import generate_nation, write_nation

LOGICAL_DATE = "2026-11-20T18:00:00"  # 01:00 on 21 November in Hồ Chí Minh City
RUN_DATE = "2026-11-21"


def _task_log(output: str, task_id: str) -> str:
    """The lines dag.test() prints while it runs ``task_id`` (its first instance)."""
    lines = output.splitlines()
    start = next(i for i, x in enumerate(lines) if f"starting task_id={task_id} " in x)
    end = next(i for i, x in enumerate(lines) if f"end task task_id={task_id} " in x)
    return "\n".join(lines[start:end + 1])


def _metrics(out, table=store.metrics):
    engine = sa.create_engine(store.default_db_url(out))
    with engine.connect() as connection:
        frame = pd.read_sql(sa.select(table), connection)
    engine.dispose()
    return frame.sort_values([c.name for c in table.primary_key]).reset_index(drop=True)


@pytest.mark.slow
def test_dag_test_publishes_the_same_as_popsync_run(tmp_path):
    nation = generate_nation(1500, seed=5)
    write_nation(nation, tmp_path / "nation", force=True)
    config = {
        "registry": {"source": str(tmp_path / "nation" / "registry.parquet")},
        "population": {"source": str(tmp_path / "nation" / "population.parquet")},
        "output": {"dir": str(tmp_path / "out-dag")},
        "partition": {"max_rows": 400},  # several mapped matching tasks
    }
    config_path = tmp_path / "popsync.yaml"
    config_path.write_text(yaml.safe_dump(config), "utf-8")
    env = airflow_env(tmp_path / "airflow", POPSYNC_CONFIG=str(config_path))
    migrate(env)
    runner = str(DAGS.parent / "tests" / "dags" / "dag_test_runner.py")
    done = python([runner, LOGICAL_DATE, str(DAGS)], env, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("DAGRUN "))
    dag_run = json.loads(line[len("DAGRUN "):])
    assert dag_run["state"] == "success", dag_run
    assert sum(task.startswith("match[") for task in dag_run["tasks"]) >= 3
    # mapped tasks are labelled in the UI by their piece, not by a bare index
    labels = dag_run["labels"]
    assert {labels["extract[0]"], labels["extract[1]"]} == {"pieces/registry-00000",
                                                         "pieces/population-00000"}
    assert labels["match[0]"] == "bands/cohort-00000"
    # triggered with the default params (no config typed: $POPSYNC_CONFIG), it published the
    # Asset downstream DAGs are scheduled on
    assert dag_run["asset_events"] == ["popsync://publication/"]

    # each step's log says what it did, in figures; Great Expectations' registration noise
    # and personal data stay out
    assert "great_expectations" not in done.stdout
    assert re.search(r"validate_chunk (registry|population)-part-\d+-\d+: \d+ rows checked, "
                     r"\d+ quarantined",
                     _task_log(done.stdout, "validate_chunk"))
    gate = _task_log(done.stdout, "gate_inputs")
    assert re.search(r"gate_inputs registry: 1,?\d{3} rows, \d+ quarantined", gate)
    assert "gate_inputs: gate passed" in gate
    assert re.search(r"plan_bands: \d+ registry rows in \d+ birth-year bands",
                     _task_log(done.stdout, "plan_bands"))
    assert re.search(r"match band \d+: \d+ registry rows against \d+ persons: \d+ linked",
                     _task_log(done.stdout, "match"))
    assert re.search(r"check_results: sync rate \d+\.\d\d%",
                     _task_log(done.stdout, "check_results"))
    assert "check_results: gate passed" in done.stdout
    for column in ("full_name", "national_id", "vss_code"):
        values = nation.registry[column].dropna().head(200)
        assert not [v for v in values if v and v in done.stdout], column

    out_dag = tmp_path / "out-dag"
    assert (out_dag / store.publication_path(RUN_DATE) / "manifest.json").is_file()
    out_cli = tmp_path / "out-cli"
    assert cli.main(["run", "--config", str(config_path), "--out", str(out_cli),
                     "--run-date", RUN_DATE]) == 0
    for table in (store.metrics, store.breakdowns, store.coverage):
        assert len(_metrics(out_cli, table)), table.name
        pd.testing.assert_frame_equal(_metrics(out_dag, table), _metrics(out_cli, table))
    dag_lists = out_dag / store.publication_path(RUN_DATE) / "lists"
    cli_lists = out_cli / store.publication_path(RUN_DATE) / "lists"
    csv_files = sorted(p.relative_to(dag_lists) for p in dag_lists.rglob("*.csv"))
    assert csv_files == sorted(p.relative_to(cli_lists) for p in cli_lists.rglob("*.csv"))
    metrics = _metrics(out_cli)
    assert len(csv_files) == (metrics["line"] == "all").sum()  # a list per province and scheme
    for relative in csv_files:
        assert (dag_lists / relative).read_bytes() == (cli_lists / relative).read_bytes(), relative
