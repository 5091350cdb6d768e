"""
### popsync_nightly

Reconciles the VSS participant registry with the National Population Database every night at
01:00 Asia/Ho_Chi_Minh and publishes per province the synchronization rate, the national
rankings (63 and 34 schemes) and the lists of participants to fix.

The tasks are the steps declared once in `pipelines/night.py` (the same declaration
`popsync run` runs on one machine): extract each piece of the sources (Parquet row groups) →
key checks → row checks per chunk → input gate → persons quoted by ID; registry bands grouped
in cohorts → match per cohort → resolve per person partition → result checks, and beside them
the lists per province group → stage → publish (only when the checks and the staging
succeeded). Every step that can be split is a mapped task, so more workers shorten every phase.

* Run configuration: the YAML at `$POPSYNC_CONFIG`, or the `config` param of a manual run.
* Run date: the logical date on Vietnam's calendar. Rerunning a date replaces its publication.
* Intermediate data: Parquet files in `<output.dir>/work/<run date>-r<run id>/`; only paths
  travel through XCom, so tasks may run on any worker that shares the output folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePath

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from pipelines.night import NIGHT

DEFAULT_ARGS = {
    "owner": "vss-data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
}


def _will_retry() -> bool:
    """Whether Airflow retries this task if it fails now (the run then stays "running")."""
    ti = get_current_context()["ti"]
    return ti.try_number <= ti.max_tries


def _task(declared):
    """One Airflow task for a declared step; ``inputs`` maps input step names to outputs."""

    def run(work_dir: str, inputs: dict, piece=None):
        kwargs = {"will_retry": _will_retry()}
        if piece is not None:
            kwargs["piece"] = piece
            # the UI labels a mapped task by its piece: "pieces/registry-00003",
            # "bands/cohort-00012", ...
            where = PurePath(str(piece))
            get_current_context()["piece"] = "/".join(
                p for p in (where.parent.name, where.stem) if p)
        return declared.function(work_dir, *(inputs[n] for n in declared.inputs), **kwargs)

    template = "{{ piece }}" if declared.over is not None else None
    return task(task_id=declared.name, doc_md=declared.doc, map_index_template=template)(run)


@dag(
    dag_id="popsync_nightly",
    schedule=CronTriggerTimetable("0 1 * * *", timezone="Asia/Ho_Chi_Minh"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["popsync", "vss", "nightly"],
    doc_md=__doc__,
    params={"config": Param("", type="string", description="config YAML, else $POPSYNC_CONFIG")},
)
def popsync_nightly():
    @task
    def start() -> str:
        from pipelines import steps  # heavy (pandas, GX): import when a task runs

        context = get_current_context()
        when = context.get("logical_date") or context["dag_run"].run_after
        return steps.start_scheduled_run(context["params"]["config"], when)

    work_dir = start()
    outputs = {}
    for declared in NIGHT:
        inputs = {name: outputs[name] for name in declared.inputs}
        if declared.over is None:
            outputs[declared.name] = _task(declared)(work_dir, inputs)
        else:
            pieces = outputs[declared.over] if isinstance(declared.over, str) else list(
                declared.over)
            outputs[declared.name] = _task(declared).partial(
                work_dir=work_dir, inputs=inputs).expand(piece=pieces)


popsync_nightly()
