"""Run popsync_nightly with dag.test() in this process (a fresh one, so Airflow reads the
environment the test set up: temp AIRFLOW_HOME, SQLite metadata, dags folder, POPSYNC_CONFIG)."""

import json
import sys
from datetime import UTC, datetime

from airflow.dag_processing.dagbag import DagBag

logical_date = datetime.fromisoformat(sys.argv[1]).replace(tzinfo=UTC)
bag = DagBag(dag_folder=sys.argv[2])
dag = bag.dags["popsync_nightly"]
dag_run = dag.test(logical_date=logical_date)
states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
          for ti in dag_run.get_task_instances()}
labels = {ti.task_id + f"[{ti.map_index}]": ti.rendered_map_index
          for ti in dag_run.get_task_instances() if ti.map_index >= 0}
print("DAGRUN " + json.dumps({"state": str(dag_run.state), "tasks": states, "labels": labels}))
