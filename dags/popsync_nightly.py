"""
### popsync_nightly

Reconciles the VSS participant registry with the National Population Database every night at
01:00 Asia/Ho_Chi_Minh and publishes per province the synchronization rate, the national
rankings (63 and 34 schemes) and the lists of participants to fix.

Steps (each a function of `pipelines/steps.py`; `popsync run` runs the same ones on one machine):
extract → validate inputs (GX; stops the night, or quarantines rows) and, beside it, plan
birth-year bands → match, one mapped task per band → resolve across bands → validate results
(GX) and, beside it, stage the publication's files → publish (only when both succeeded).

* Run configuration: the YAML at `$POPSYNC_CONFIG`, or the `config` param of a manual run.
* Run date: the logical date on Vietnam's calendar. Rerunning a date replaces its publication.
* Intermediate data: Parquet files in `<output.dir>/work/<run date>-r<run id>/`; only paths
  travel through XCom, so tasks may run on any worker that shares the output folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "vss-data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
}


def _steps():
    from pipelines import steps  # heavy (pandas, GX): import when a task runs, not at parse time

    return steps


def _will_retry() -> bool:
    """Whether Airflow retries this task if it fails now (the run then stays "running")."""
    ti = get_current_context()["ti"]
    return ti.try_number <= ti.max_tries


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
        context = get_current_context()
        when = context.get("logical_date") or context["dag_run"].run_after
        return _steps().start_scheduled_run(context["params"]["config"], when)

    @task
    def extract(work_dir: str) -> str:
        return _steps().extract_sources(work_dir, will_retry=_will_retry())

    @task
    def validate_inputs(work_dir: str) -> str:
        return _steps().validate_inputs(work_dir, will_retry=_will_retry())

    @task
    def plan_partitions(work_dir: str) -> list[str]:
        return _steps().plan_partitions(work_dir, will_retry=_will_retry())

    @task
    def match(work_dir: str, spec_path: str) -> str:
        return _steps().match_partition(
            work_dir, spec_path=spec_path, will_retry=_will_retry()
        )

    @task
    def resolve(work_dir: str, part_paths: list[str]) -> str:
        return _steps().resolve_results(work_dir, list(part_paths), will_retry=_will_retry())

    @task
    def validate_results(work_dir: str) -> str:
        return _steps().validate_results(work_dir, will_retry=_will_retry())

    @task
    def stage(work_dir: str) -> str:
        _steps().stage_publication(work_dir, will_retry=_will_retry())
        return work_dir

    @task
    def publish(work_dir: str, staged: str) -> str:
        del staged  # stage's output: publish waits for both the result checks and the staging
        return _steps().publish_run(work_dir, will_retry=_will_retry())

    extracted = extract(start())
    checked = validate_inputs(extracted)
    parts = match.partial(work_dir=checked).expand(spec_path=plan_partitions(extracted))
    resolved = resolve(checked, parts)
    publish(validate_results(resolved), stage(resolved))


popsync_nightly()
