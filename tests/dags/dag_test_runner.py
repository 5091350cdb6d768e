"""Run popsync_nightly with dag.test() in this process (a fresh one, so Airflow reads the
environment the test set up: temp AIRFLOW_HOME, SQLite metadata, dags folder, POPSYNC_CONFIG)."""

import json
import sys
from datetime import UTC, datetime

from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session
from sqlalchemy import select

logical_date = datetime.fromisoformat(sys.argv[1]).replace(tzinfo=UTC)
bag = DagBag(dag_folder=sys.argv[2])
dag = bag.dags["popsync_nightly"]
# dag.test() of Airflow 3.3.2 cannot finish a run of a DAG with a deadline alert: it looks the
# alert up by id while its in-memory DAG holds the alert's definition (AttributeError 'dict'
# object has no attribute 'hex'). A scheduler reads the ids from the database; without one no
# deadline can fire anyway. test_dag_integrity checks the deadline itself.
dag.deadline = None
dag_run = dag.test(logical_date=logical_date)
states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
          for ti in dag_run.get_task_instances()}
labels = {ti.task_id + f"[{ti.map_index}]": ti.rendered_map_index
          for ti in dag_run.get_task_instances() if ti.map_index >= 0}
with create_session() as session:
    assets = session.scalars(select(AssetModel.uri).join(
        AssetEvent, AssetEvent.asset_id == AssetModel.id).where(
        AssetEvent.source_run_id == dag_run.run_id)).all()
print("DAGRUN " + json.dumps({"state": str(dag_run.state), "tasks": states, "labels": labels,
                             "asset_events": sorted(assets)}))
