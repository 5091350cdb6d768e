"""The DAG folder imports cleanly and popsync_nightly carries its operational settings."""

from __future__ import annotations

import json

from airflow_env import DAGS, airflow_env, python

INSPECT = f"""
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS)!r})
dag = bag.dags.get("popsync_nightly")
print("BAG " + json.dumps({{
    "import_errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dags),
    "owners": sorted({{t.owner for t in dag.tasks}}),
    "retries": sorted({{t.retries for t in dag.tasks}}),
    "retry_delays": sorted({{t.retry_delay.total_seconds() for t in dag.tasks}}),
    "tags": sorted(dag.tags),
    "catchup": dag.catchup,
    "max_active_runs": dag.max_active_runs,
    "timetable": repr(dag.timetable),
    "doc": bool(dag.doc_md),
    "tasks": [t.task_id for t in dag.tasks],
}}))
"""


def test_dag_folder_imports_and_dag_has_retries_tags_owner(tmp_path):
    done = python(["-c", INSPECT], airflow_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("BAG "))
    bag = json.loads(line[4:])
    assert bag["import_errors"] == {}
    assert bag["dag_ids"] == ["popsync_nightly"]
    assert bag["owners"] == ["vss-data-engineering"]
    assert min(bag["retries"]) >= 1 and min(bag["retry_delays"]) >= 60
    assert {"popsync", "nightly"} <= set(bag["tags"])
    assert bag["catchup"] is False and bag["max_active_runs"] == 1
    assert "0 1 * * *" in bag["timetable"] and "Asia/Ho_Chi_Minh" in bag["timetable"]
    assert bag["doc"]
    assert bag["tasks"][0] == "start" and bag["tasks"][-1] == "publish"
