"""The night's steps, in order: each takes paths and returns paths, so the Airflow DAG (one task per
step, matching fanned out over partitions) and ``popsync run`` (one process) run the very same code.

A run's work folder ``<out>/work/<run_date>-r<run_id>/`` holds ``run.json`` (run id, date, the
config snapshot) and every intermediate file; nothing passes between steps in memory.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from expectations import inputs as input_suites
from expectations import report as validation_report
from expectations import results as result_suites
from expectations.runner import SuiteOutcome
from pipelines import lists, metrics, partition, publish
from pipelines.config import RunConfig, load_config
from pipelines.extract import describe, extract
from popsync import parallel, store
from popsync.contracts import RESULT_COLUMNS, STATUSES, SYNCHRONIZED
from popsync.errors import PopsyncError

log = logging.getLogger("popsync.run")

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
LINE_FLAGS = ("scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui")
QUARANTINE_COLUMNS = ("source", "row", "key", "column", "reason", "value")


# --- the run's state on disk ------------------------------------------------------------------


def _state(work_dir: str | Path) -> dict:
    return json.loads((Path(work_dir) / RUN_FILE).read_text("utf-8"))


def _config(work_dir: str | Path) -> RunConfig:
    return load_config(Path(work_dir) / CONFIG_FILE)


def _engine(state: dict) -> sa.Engine:
    return store.engine_for(state["db_url"])


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1, default=str), "utf-8")
    tmp.replace(path)


def step(name: str):
    """Time a step into ``timings/`` and, when it fails, record the failure in the runs table.

    ``will_retry=True`` (the DAG passes it when Airflow has attempts left): the run stays
    ``running`` with the error as its message, so the portal does not call a night failed that
    its next attempt may still publish.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(work_dir, *args, will_retry: bool = False, **kwargs):
            started = time.perf_counter()
            try:
                result = function(work_dir, *args, **kwargs)
            except Exception as exc:
                _record_failure(work_dir, name, exc, will_retry)
                raise
            label = (
                name if not kwargs.get("spec_path") else f"{name}-{Path(kwargs['spec_path']).stem}"
            )
            _write_json(
                Path(work_dir) / "timings" / f"{label}.json",
                {"step": name, "label": label, "seconds": time.perf_counter() - started},
            )
            return result

        return wrapper

    return decorate


def _record_failure(work_dir, name: str, exc: Exception, will_retry: bool) -> None:
    message = f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if will_retry:
        values = {"message": f"{message[:1900]} (Airflow retries the task)"}
    else:
        values = {"status": "failed", "finished_at": datetime.now(UTC), "message": message[:2000]}
    try:
        state = _state(work_dir)
        with _engine(state).begin() as connection:
            connection.execute(
                sa.update(store.runs).where(store.runs.c.run_id == state["run_id"]).values(**values)
            )
    except Exception as secondary:  # the database may be what failed; the step's error matters
        log.warning("could not record the failure of %s in the runs table: %s", name, secondary)


def _read_results(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Results with ``reasons`` as an Arrow list column (no million Python lists to build)."""
    table = pq.read_table(path, columns=columns)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_list(t) else None)


# --- steps ------------------------------------------------------------------------------------


def start_scheduled_run(config_path: str | None, logical_date: datetime) -> str:
    """The DAG's first step: the config of the run (its param, else ``$POPSYNC_CONFIG``) and the
    run date of the logical date on Vietnam's calendar; returns the work folder."""
    import os

    path = config_path or os.environ.get("POPSYNC_CONFIG")
    if not path:
        raise PopsyncError(
            "no run configuration: set POPSYNC_CONFIG to a YAML file, or pass the run's "
            "'config' param"
        )
    return start_run(load_config(path), run_date_of(logical_date))


def start_run(config: RunConfig, run_date: str) -> str:
    """Record the attempt in ``runs``, repair an interrupted publication, make the work folder."""
    try:
        datetime.strptime(run_date, "%Y-%m-%d")
    except ValueError:
        raise PopsyncError(f"run date {run_date!r} is not YYYY-MM-DD") from None
    config.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = store.engine_for(config.db_url)
        with engine.begin() as connection:
            # An attempt still "running" for this date died without a word (a killed worker):
            # this attempt supersedes it. (Its own publish, if it ever came, would still win.)
            connection.execute(
                sa.update(store.runs)
                .where(store.runs.c.run_date == run_date, store.runs.c.status == "running")
                .values(
                    status="failed",
                    finished_at=datetime.now(UTC),
                    message="abandoned: a newer attempt of this run date started",
                )
            )
            run_id = connection.execute(
                sa.insert(store.runs).values(
                    run_date=run_date, started_at=datetime.now(UTC), status="running"
                )
            ).inserted_primary_key[0]
    except sa.exc.SQLAlchemyError as exc:
        raise PopsyncError(
            "publication database "
            f"{sa.make_url(config.db_url).render_as_string(hide_password=True)}"
            f" is unreachable: {str(exc.orig or exc).splitlines()[0]}"
        ) from None
    for line in publish.recover(config.out_dir, engine):
        log.warning("recovery: %s", line)
    work_dir = config.out_dir / "work" / f"{run_date}-r{run_id}"
    work_dir.mkdir(parents=True)
    config.dump(work_dir / CONFIG_FILE)
    _write_json(
        work_dir / RUN_FILE,
        {
            "run_id": run_id,
            "run_date": run_date,
            "out_dir": str(config.out_dir),
            "db_url": config.db_url,
            "started_at": datetime.now(UTC).isoformat(),
        },
    )
    return str(work_dir)


def _extract_source(work_dir: str, name: str) -> dict:
    """One source, mapped to canonical columns, into the work folder; its row count and origin."""
    source = getattr(_config(work_dir), name)
    frame = extract(source)
    if name == "registry":
        frame.to_parquet(Path(work_dir) / "registry.parquet", index=False)
    else:
        partition.write_population(frame, Path(work_dir) / "population.parquet")
    return {f"{name}_rows": len(frame), f"{name}_source": describe(source)}


@step("extract")
def extract_sources(work_dir: str) -> str:
    """Both sources, mapped to canonical columns, into the work folder (each in its own process
    when there are two CPUs)."""
    extracted = parallel.map_forked(
        functools.partial(_extract_source, work_dir),
        ("registry", "population"),
        _config(work_dir).workers,
    )
    _write_json(Path(work_dir) / "extract.json", {k: v for e in extracted for k, v in e.items()})
    return work_dir


def _previous_rows(state: dict) -> dict:
    previous = publish.previous_publication(_engine(state), state["run_date"])
    if previous is None:
        return {}
    manifest = publish.manifest_of(Path(state["out_dir"]) / previous["path"]) or {}
    return manifest.get("rows", {})


def _quarantine(outcome: SuiteOutcome, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per (source row, failed row expectation): where, what and why."""
    blocks = []
    for finding in outcome.row_failures:
        rows = finding.rows
        blocks.append(
            pd.DataFrame(
                {
                    "source": outcome.suite,
                    # 1-based data row of the source (CSV line = row + 1)
                    "row": (
                        frame[partition.SOURCE_ROW].to_numpy()[rows]
                        if partition.SOURCE_ROW in frame.columns
                        else rows + 1
                    ),
                    "key": frame[key].to_numpy()[rows],
                    "column": finding.column,
                    "reason": finding.reason,
                    "value": frame[finding.column].astype("str").to_numpy()[rows],
                }
            )
        )
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in QUARANTINE_COLUMNS})
    return pd.concat(blocks, ignore_index=True).astype({"row": "int64"})


def _hard_failure_message(outcome: SuiteOutcome) -> str:
    parts = []
    for finding in outcome.hard_failures:
        where = f" column {finding.column}" if finding.column else ""
        detail = (
            f"{finding.unexpected_count:,} rows, e.g. {', '.join(finding.samples)}"
            if finding.unexpected_count
            else f"observed {finding.observed}, expected {finding.expected}"
        )
        parts.append(f"{finding.reason}{where} ({detail})")
    return f"{outcome.suite} failed validation: " + "; ".join(parts)


def _validate_source(work_dir: str, name: str) -> tuple[SuiteOutcome, pd.DataFrame, int]:
    """GX on one extracted source: its outcome, its quarantine rows and its row count."""
    state, config, work = _state(work_dir), _config(work_dir), Path(work_dir)
    previous = _previous_rows(state).get(name)
    frame = pd.read_parquet(work / f"{name}.parquet")
    if name == "registry":
        outcome = input_suites.validate_registry(
            frame.assign(office_code=metrics.office_code(frame)), previous, config.volume_drop_max
        )
        key = "vss_code"
    else:
        outcome = input_suites.validate_population(frame, previous, config.volume_drop_max)
        key = "personal_id"
    return outcome, _quarantine(outcome, frame, key), len(frame)


@step("validate_inputs")
def validate_inputs(work_dir: str) -> str:
    """GX on both sources: hard failures stop the night, bad rows go to quarantine.

    The two sources are validated at once, each in its own process when there are two CPUs.
    """
    config, work = _config(work_dir), Path(work_dir)
    checked = parallel.map_forked(
        functools.partial(_validate_source, work_dir), ("registry", "population"), config.workers
    )
    outcomes = [outcome for outcome, _, _ in checked]
    _write_json(work / "validation" / "inputs.json", [o.as_dict() for o in outcomes])
    failures = [_hard_failure_message(o) for o in outcomes if o.hard_failures]
    for outcome, rows_quarantined, rows in checked:
        share = rows_quarantined["row"].nunique() / rows
        if share > config.quarantine_max:
            failures.append(
                f"{outcome.suite}: {share:.1%} of rows quarantined, more than "
                f"validation.quarantine_max = {config.quarantine_max:.0%}"
            )
    if failures:
        raise PopsyncError("input validation stopped the night: " + " | ".join(failures))
    quarantine = pd.concat([q for _, q, _ in checked], ignore_index=True)
    quarantine.to_parquet(work / "quarantine.parquet", index=False)
    _drop_unlinkable_persons(quarantine, work / "population.parquet")
    return work_dir


# Population rows quarantined for these reasons cannot be a link target (the engine keys persons
# by a 12-digit personal ID): they stay in the quarantine file and are left out of matching.
# Registry rows are never left out: each gets a result.
UNLINKABLE_PERSON_REASONS = ("personal_id_format",)


def _drop_unlinkable_persons(quarantine: pd.DataFrame, path: Path) -> None:
    bad = quarantine.loc[
        (quarantine["source"] == "population")
        & quarantine["reason"].isin(UNLINKABLE_PERSON_REASONS),
        "row",
    ]
    if bad.empty:
        return
    population = pd.read_parquet(path)
    persons = population.loc[~population[partition.SOURCE_ROW].isin(bad)]
    partition.write_population(persons.drop(columns=[partition.BIRTH_YEAR]), path)


@step("plan_partitions")
def plan_partitions(work_dir: str) -> list[str]:
    """Registry bands for the mapped matching tasks; returns their spec files."""
    config, work = _config(work_dir), Path(work_dir)
    registry = pq.read_table(work / "registry.parquet")
    specs = partition.plan(registry, config.partition_max_rows, work / "partitions")
    return partition.write_specs(specs, work / "partitions")


@step("match")
def match_partition(work_dir: str, spec_path: str) -> str:
    """Link one band of the registry; returns the band's results file."""
    import matching

    config, work = _config(work_dir), Path(work_dir)
    spec = json.loads(Path(spec_path).read_text("utf-8"))
    registry, population = partition.read_band(spec, work / "population.parquet")
    linked = matching.link(registry, population, matching.Settings.from_mapping(config.matching))
    out = work / "parts" / f"results-{spec['index']:04d}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    _with_registry_fields(linked.results, registry).to_parquet(out, index=False)
    _write_json(
        out.with_suffix(".json"),
        {"rows": spec["rows"], "population_rows": len(population), "report": linked.report},
    )
    return str(out)


def _with_registry_fields(results: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """The published results: the engine's columns, then the registry's line flags and office
    (``link`` returns one result per registry row in the registry's order: no join needed)."""
    if not np.array_equal(
        results["vss_code"].to_numpy(dtype=object), registry["vss_code"].to_numpy(dtype=object)
    ):
        raise RuntimeError("matching.link returned results out of the registry's row order")
    fields = registry[list(LINE_FLAGS)].assign(office_code=metrics.office_code(registry))
    return pd.concat(
        [results[list(RESULT_COLUMNS)].reset_index(drop=True), fields.reset_index(drop=True)],
        axis=1,
    )


@step("resolve")
def resolve_results(work_dir: str, part_paths: list[str]) -> str:
    """One person, one registration across bands; metrics and reason counts computed."""
    import matching

    state, config, work = _state(work_dir), _config(work_dir), Path(work_dir)
    parts = pd.concat([_read_results(Path(p)) for p in sorted(part_paths)], ignore_index=True)
    results = matching.resolve(parts, matching.Settings.from_mapping(config.matching))
    # Writing the results (Arrow encoding and compression, mostly outside the GIL) overlaps
    # counting the metrics from the same, no longer changing, frame.
    with ThreadPoolExecutor(1) as writer:
        written = writer.submit(results.to_parquet, work / "results.parquet", index=False)
        previous = publish.previous_metrics(_engine(state), state["run_date"])
        metrics.compute_metrics(
            results, state["run_date"], config.province_schemes, previous
        ).to_parquet(work / "metrics.parquet", index=False)
        metrics.compute_reason_counts(
            results, state["run_date"], config.province_schemes
        ).to_parquet(work / "reason_counts.parquet", index=False)
        written.result()
    return work_dir


@step("validate_results")
def validate_results(work_dir: str) -> str:
    """Great Expectations on results and metrics; any failure stops publication."""
    config, work = _config(work_dir), Path(work_dir)
    results = _read_results(work / "results.parquet")
    registry_codes = pd.read_parquet(work / "registry.parquet", columns=["vss_code"])["vss_code"]
    night_metrics = pd.read_parquet(work / "metrics.parquet")
    outcomes = [
        result_suites.validate_results(
            results, metrics.reasons_text(results["reasons"]), registry_codes, config.workers
        ),
        result_suites.validate_metrics(night_metrics, metrics.national_totals(results)),
    ]
    _write_json(work / "validation" / "results.json", [o.as_dict() for o in outcomes])
    failures = [_hard_failure_message(o) for o in outcomes if o.hard_failures]
    if failures:
        raise PopsyncError("result validation stopped publication: " + " | ".join(failures))
    return work_dir


def _rankings(night_metrics: pd.DataFrame) -> pd.DataFrame:
    from popsync.reference.provinces import province_name

    names = {
        (s, c): province_name(c, s)
        for s, c in night_metrics[["scheme", "province_code"]]
        .drop_duplicates()
        .itertuples(index=False)
    }
    return night_metrics.assign(
        province_name=[
            names[key]
            for key in zip(night_metrics["scheme"], night_metrics["province_code"], strict=True)
        ]
    )


def _summary(work: Path) -> dict:
    results = pd.read_parquet(work / "results.parquet", columns=["status"])
    counts = results["status"].value_counts().reindex(list(STATUSES), fill_value=0)
    extracted = json.loads((work / "extract.json").read_text("utf-8"))
    quarantine = pd.read_parquet(work / "quarantine.parquet", columns=["source", "row"])
    return {
        "rows": {
            "registry": extracted["registry_rows"],
            "population": extracted["population_rows"],
        },
        "quarantined": {
            s: int(quarantine.loc[quarantine["source"] == s, "row"].nunique())
            for s in ("registry", "population")
        },
        "statuses": {s: int(n) for s, n in counts.items()},
        "sync_rate": float(counts[STATUSES[0]] / max(len(results), 1)),
    }


def listed_results(work: Path) -> pd.DataFrame:
    """What the province lists are written from: every result row with the lists' columns and
    its office, and the registry's fields (name, birth date, ...) on the rows to fix."""
    # the lists' columns only (the engine's explanations are most of the file's bytes)
    results = _read_results(
        work / "results.parquet",
        [*(c for c in lists.HEADERS if c in RESULT_COLUMNS), "office_code"],
    )
    # The registry's fields of the rows to fix only (a tenth of the nation).
    to_fix = (results["status"] != SYNCHRONIZED).to_numpy()
    registry = pq.read_table(
        work / "registry.parquet",
        columns=["vss_code", "full_name", "birth_date", "gender", "national_id"],
    )
    wanted = pa.array(results["vss_code"].to_numpy()[to_fix], pa.string())
    fields = registry.filter(pc.is_in(registry["vss_code"], value_set=wanted)).to_pandas()
    return pd.concat(
        [results[~to_fix], results[to_fix].merge(fields, on="vss_code", how="left")],
        ignore_index=True,
    )


@step("stage")
def stage_publication(work_dir: str) -> str:
    """Every file of the publication but the validation report, in a staging folder next to its
    final place. Needs the resolved results only, so it runs beside ``validate_results``."""
    state, config, work = _state(work_dir), _config(work_dir), Path(work_dir)
    staging = publish.staging_folder(Path(state["out_dir"]), state["run_date"], state["run_id"])
    shutil.rmtree(staging, ignore_errors=True)  # left by an attempt that died: a retry redoes it
    staging.mkdir(parents=True)
    shutil.copyfile(work / "results.parquet", staging / "results.parquet")
    shutil.copyfile(work / "quarantine.parquet", staging / "quarantine.parquet")
    quarantine = pd.read_parquet(work / "quarantine.parquet")
    lists.neutralize_frame(quarantine).to_csv(
        staging / "quarantine.csv", index=False, encoding="utf-8-sig"
    )
    _rankings(pd.read_parquet(work / "metrics.parquet")).to_csv(
        staging / "rankings.csv", index=False, encoding="utf-8-sig"
    )
    listed = listed_results(work)
    files = lists.write_lists(listed, staging, config.province_schemes, config.workers)
    summary = _summary(work)
    _write_json(
        staging / publish.MANIFEST,
        {
            "run_id": state["run_id"],
            "run_date": state["run_date"],
            **summary,
            "list_files": files,
            "files": {
                "results": "results.parquet",
                "quarantine": "quarantine.parquet",
                "rankings": "rankings.csv",
                "validation_report": "validation_report.html",
                "lists": "lists/<scheme>/<province_code>/unsynchronized.{xlsx,csv}",
            },
        },
    )
    return str(staging)


def _write_validation_report(work: Path, staging: Path, state: dict, summary: dict) -> None:
    """The night's GX outcomes, input and result suites, as JSON and as an offline HTML page
    (written at publish time: staging runs beside the result checks)."""
    suites = [
        *json.loads((work / "validation" / "inputs.json").read_text("utf-8")),
        *json.loads((work / "validation" / "results.json").read_text("utf-8")),
    ]
    (staging / "validation_report.html").write_text(
        validation_report.render(
            {
                "run_date": state["run_date"],
                "run_id": state["run_id"],
                **summary["rows"],
                "quarantined": sum(summary["quarantined"].values()),
            },
            suites,
        ),
        "utf-8",
    )
    _write_json(staging / "validation.json", suites)


@step("publish")
def publish_run(work_dir: str) -> str:
    """Swap the staged publication in and commit its rows; returns the publication folder."""
    state, work = _state(work_dir), Path(work_dir)
    out_dir = Path(state["out_dir"])
    staging = publish.staging_folder(out_dir, state["run_date"], state["run_id"])
    summary = publish.manifest_of(staging)
    if summary is None:
        raise PopsyncError(f"staging folder {staging} is missing or incomplete; rerun the night")
    _write_validation_report(work, staging, state, summary)
    try:
        engine = _engine(state)
    except sa.exc.SQLAlchemyError as exc:
        raise PopsyncError(
            f"publication database unreachable ({exc.__class__.__name__}); "
            "the previous publication stays"
        ) from None
    final = publish.publish(
        out_dir,
        engine,
        state["run_id"],
        state["run_date"],
        staging,
        pd.read_parquet(work / "metrics.parquet"),
        pd.read_parquet(work / "reason_counts.parquet"),
        {
            "participants": summary["rows"]["registry"],
            "quarantined": summary["quarantined"]["registry"],
            "sync_rate": summary["sync_rate"],
        },
    )
    # Published: the big intermediates go; run.json, timings and validation results stay.
    for name in (
        "registry.parquet",
        "population.parquet",
        "results.parquet",
        "partitions",
        "parts",
    ):
        path = work / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return str(final)


def run_date_of(logical_date: datetime, timezone: str = "Asia/Ho_Chi_Minh") -> str:
    """The run date of a scheduled night: its logical date on Vietnam's calendar."""
    import zoneinfo

    return logical_date.astimezone(zoneinfo.ZoneInfo(timezone)).date().isoformat()
