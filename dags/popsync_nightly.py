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

* Run configuration: the YAML at `$POPSYNC_CONFIG`, or the `config` param of a manual run
  (left empty: `$POPSYNC_CONFIG`, so Trigger works as it is).
* Run date: the logical date on Vietnam's calendar. Rerunning a date replaces its publication.
  Unpausing the DAG runs the latest missed night at once (catchup is off: only that one).
* Alerts (e-mail to the run config's `alerts.to`, over the Airflow connection `smtp_default`):
  a failed step, a validation gate's stop, a drop of the national or a province's sync rate
  by more than `alerts.rate_drop_points`, and no publication by 06:00 (deadline alert).
* `publish` updates the Asset `popsync://publication`: schedule downstream DAGs on it.
* Intermediate data: Parquet files in `<output.dir>/work/<run date>-r<run id>/`; only paths
  travel through XCom, so tasks may run on any worker that shares the output folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePath

from airflow.sdk import (
    Asset,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from pipelines import alerts
from pipelines.night import NIGHT
from popsync.errors import GateStop, RunStopped

PUBLICATION = Asset("popsync://publication", group="popsync")

DEFAULT_ARGS = {
    "owner": "vss-data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),  # the national night's longest task takes minutes
    "on_failure_callback": alerts.on_task_failure,
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
        try:
            return declared.function(work_dir, *(inputs[n] for n in declared.inputs), **kwargs)
        except (GateStop, RunStopped) as final:  # retrying cannot help
            raise AirflowFailException(str(final)) from final

    template = "{{ piece }}" if declared.over is not None else None
    publishing = declared.name == "publish"
    return task(task_id=declared.name, doc_md=declared.doc, map_index_template=template,
                outlets=[PUBLICATION] if publishing else [],
                on_success_callback=alerts.on_published if publishing else None)(run)


@dag(
    dag_id="popsync_nightly",
    schedule=CronTriggerTimetable("0 1 * * *", timezone="Asia/Ho_Chi_Minh"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=DEFAULT_ARGS,
    tags=["popsync", "vss", "nightly"],
    description="VSS participants reconciled with the population database; rates and lists "
                "published per province",
    doc_md=__doc__,
    params={"config": Param(None, type=["null", "string"],
                            description="run config YAML; empty: $POPSYNC_CONFIG")},
    on_failure_callback=alerts.on_night_failure,
    # the offices open at 07:00: the engineers hear at 06:00 when the night queued at 01:00 has
    # not published. Counted from queuing, not from the logical date: a rerun of a past night
    # (unpausing, a backfill, a morning rerun) gets its 5 hours instead of alerting at once.
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                           interval=timedelta(hours=5),
                           callback=AsyncCallback(alerts.deadline_missed)),
)
def popsync_nightly():
    @task(doc_md="The run's configuration and run date; its work folder, made for the steps.")
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
