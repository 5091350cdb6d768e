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
    "description": dag.description,
    "dagrun_timeout": dag.dagrun_timeout.total_seconds(),
    "execution_timeouts": sorted({{t.execution_timeout.total_seconds() for t in dag.tasks}}),
    "task_docs": sorted(t.task_id for t in dag.tasks if not t.doc_md),
    "params": {{k: dag.params.get_param(k).resolve(suppress_exception=True)
                for k in dag.params}},
    "config_types": dag.params.get_param("config").schema["type"],
    "deadlines": [[type(d.reference).__name__, d.interval.total_seconds(), d.callback.path]
                  for d in dag.deadline or []],
    "outlets": {{t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}},
    "tasks": [t.task_id for t in dag.tasks],
    "upstream": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
    "mapped": sorted(t.task_id for t in dag.tasks if "Mapped" in type(t).__name__),
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
    assert bag["doc"] and bag["description"]
    assert bag["task_docs"] == []  # every task says what it does
    # the night must end before the offices open; a stuck task must not hold the night
    assert 0 < bag["dagrun_timeout"] <= 8 * 3600
    assert bag["execution_timeouts"] and 0 < max(bag["execution_timeouts"]) <= bag[
        "dagrun_timeout"]
    # Trigger works without typing: the config param defaults to None ($POPSYNC_CONFIG)
    assert bag["params"] == {"config": None} and "null" in bag["config_types"]
    # not published by 06:00 in Hồ Chí Minh City = 5 hours after the 01:00 logical date
    assert bag["deadlines"] == [["DagRunQueuedAtDeadline", 5 * 3600,
                                 "pipelines.alerts.deadline_missed"]]
    assert bag["outlets"] == {"publish": ["popsync://publication/"]}
    assert bag["tasks"][0] == "start" and bag["tasks"][-1] == "publish"


def test_dag_is_the_declared_night(tmp_path):
    """The DAG's tasks, their dependencies and which of them fan out are those of
    pipelines.night.NIGHT, the declaration popsync run also runs: they cannot diverge."""
    from pipelines.night import NIGHT

    done = python(["-c", INSPECT], airflow_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    bag = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("BAG "))[4:])
    assert bag["tasks"] == ["start", *(s.name for s in NIGHT)]
    assert bag["upstream"] == {
        "start": [],
        **{s.name: sorted({"start", *s.upstream}) for s in NIGHT},
    }
    assert bag["mapped"] == sorted(s.name for s in NIGHT if s.over is not None)
    # every phase of the night fans out, not only matching
    assert {"extract", "validate_chunk", "match", "resolve", "stage_lists"} <= set(bag["mapped"])
