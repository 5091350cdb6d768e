"""The night's steps. Each takes the run's work folder (and the outputs of the steps it follows,
and, when it fans out, one piece: a source, a chunk, a band, a partition, a province group) and
returns paths; ``pipelines.night`` declares their order and fan-out once for the Airflow DAG,
``popsync run`` and the benchmarks.

Every step's memory is bounded by a chunk, a band or a partition, never by the nation: sources
are extracted in chunks of ``partition.chunk_rows``, each chunk's rows in year order; what needs
the whole nation (unique keys, counting the registry's rows per chunk and year to cut bands,
joining quoted IDs, repartitioning results by person, joining the rows to fix with their
registry fields) is done by DuckDB over the Parquet datasets with a memory limit
(``partition.sql_memory``), spilling to the work folder.

Work folder ``<out>/work/<run_date>-r<run_id>/``:
  sources/<source>/part-*.parquet   extracted chunks (canonical columns, source_row, birth_year),
                                   rows in year order (a cohort reads a few row groups of each)
  quarantine/*.parquet             rows each chunk's checks set aside
  unlinkable.parquet               population rows no link can name
  quoted/band=N/                   persons a band quotes by ID from other years
  bands/cohort-N.json              a cohort's bands: their years and where their rows start
  parts/results-N.json             each band's matching report (kept for the figures)
  persons/part=K/cohort-N.parquet  each cohort's results of the persons of partition K
  results/part-K.parquet           resolved results (one person, one registration)
  counts/part-K.*                  each partition's status and reason counts
  listed/unit=U/                   rows to fix with their registry fields, per province group
  validation/*.json, timings/*.json, run.json, config.yaml
"""

from __future__ import annotations

import errno
import functools
import gc
import logging
import math
import os
import re
import resource
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from expectations import inputs as input_suites
from expectations import nation as nation_checks
from expectations import report as validation_report
from expectations import results as result_suites
from expectations.nation import files_sql
from expectations.runner import HARD, ROW, SuiteOutcome
from pipelines import lists, metrics, partition, publish, runlock, runrecord
from pipelines.config import RunConfig
from pipelines.context import CONFIG_FILE, RunContext, read_json, write_json
from pipelines.extract import describe, extract_batches
from pipelines.extract import pieces as extract_pieces
from pipelines.mapping import DATE_COLUMNS
from pipelines.night import SOURCES
from popsync import decisions as review_decisions
from popsync import store
from popsync.contracts import RESULT_COLUMNS, STATUSES, SYNCHRONIZED
from popsync.errors import GateStop, PopsyncError, RunStopped
from popsync.reference.provinces import SCHEME_63_TO_34

log = logging.getLogger("popsync.run")

KEYS = {"registry": "vss_code", "population": "personal_id"}
LINE_FLAGS = ("scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui")
QUARANTINE_COLUMNS = ("source", "row", "key", "column", "reason", "value")
# The registry's gender and birth year (else its ID's year) carried in the results, for the
# breakdowns by gender and age band (pipelines/breakdowns.py).
REGISTRY_GROUPS = ("gender", partition.BIRTH_YEAR)
# Intermediate files: fast to write and read, a third of their uncompressed size.
_PARQUET = {"compression": "zstd", "compression_level": 1}


def step(name: str):
    """Time a step into ``timings/`` (wall and CPU time, start and end) and, when it fails,
    record the failure in the runs table. What the step leaves behind is collected before the
    worker takes its next task.

    ``will_retry=True`` (the DAG passes it when Airflow has attempts left): the run stays
    ``running`` with the error as its message, so the portal does not call a night failed that
    its next attempt may still publish.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(work_dir, *args, will_retry: bool = False, **kwargs):
            started, wall = time.time(), time.perf_counter()
            cpu = _cpu_seconds()
            piece = kwargs.get("piece")
            where = Path(str(piece)) if piece is not None else None
            # a chunk's folder names its source: registry and population chunks share names
            label = name if where is None else "-".join(
                p for p in (name, where.parent.name, where.stem) if p)
            ctx = None
            try:
                ctx = RunContext.load(work_dir)
                runlock.renew(ctx.db_url, ctx.run_date, ctx.run_id)
                result = function(work_dir, *args, **kwargs)
            except Exception as exc:
                failure = _explained(work_dir, name, exc, will_retry)
                if ctx is not None:
                    runrecord.task(ctx.db_url, ctx.run_id, name, label, started, time.time(),
                                   _cpu_seconds() - cpu, _first_line(failure))
                # final: the same data would stop a gate again; a stopped run stays stopped
                final = isinstance(exc, (GateStop, RunStopped))
                _record_failure(work_dir, name, failure, will_retry and not final)
                if failure is exc:
                    raise
                raise failure from exc
            finally:
                # Great Expectations leaves each validated frame in reference cycles that only a
                # full collection frees: a worker that ran ~118 chunks in a row grew to 6 GiB.
                # Arrow's allocator keeps what was freed until asked to give it back.
                gc.collect()
                pa.default_memory_pool().release_unused()
            timing = {
                "step": name,
                "label": label,
                "seconds": time.perf_counter() - wall,
                "cpu_seconds": _cpu_seconds() - cpu,
                "started": started,
                "finished": time.time(),
            }
            write_json(Path(work_dir) / "timings" / f"{label}.json", timing)
            runrecord.task(ctx.db_url, ctx.run_id, name, label, started, timing["finished"],
                           timing["cpu_seconds"], None)
            return result

        return wrapper

    return decorate


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (forked helpers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _disk_full(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) says the disk is full: an OSError, or
    DuckDB's and Arrow's own errors quoting the system's message."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
                "No space left on device" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _explained(work_dir, name: str, exc: Exception, will_retry: bool) -> Exception:
    """A failure the operator can act on, said in a sentence instead of a traceback: the
    publication database gone, or the disk full (then, when no retry follows, this run's
    intermediates and staging folder are removed: no later run reads them, and a full disk
    should not stay full because of a night that failed)."""
    if isinstance(exc, PopsyncError) or not (store.database_down(exc) or _disk_full(exc)):
        return exc
    try:
        ctx = RunContext.load(work_dir)
    except Exception:  # the work folder itself unreadable: the step's own error says more
        return exc
    if store.database_down(exc):
        return PopsyncError(
            f"{name}: {store.unreachable(ctx.db_url, exc)}; nothing was published, the "
            "previous publication stays; rerun when the database is back")
    if will_retry:
        done = "Airflow retries the task; free space before it does"
    else:
        _remove(ctx, *INTERMEDIATES)
        shutil.rmtree(publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id),
                      ignore_errors=True)
        done = (f"this run's intermediates in {ctx.path()} and its staging folder were "
                "removed; the previous publication stays; free space and rerun")
    return PopsyncError(f"{name}: no space left on the disk ({store.first_line(exc)}); " + done)


# A failure the database could not take (it was what failed) waits here in the work folder for
# the next run to record it (see start_run).
UNRECORDED_FAILURE = "failed.json"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _record_failure(work_dir, name: str, exc: Exception, will_retry: bool) -> None:
    message = f"{name}: {_first_line(exc)}"
    if will_retry:
        values = {"message": f"{message[:1900]} (Airflow retries the task)"}
    else:
        values = {"status": "failed", "finished_at": datetime.now(UTC), "message": message[:2000],
                  "stopped_by": exc.gate if isinstance(exc, GateStop) else None}
    try:
        ctx = RunContext.load(work_dir)
        with ctx.engine.begin() as connection:
            # an attempt another run declared abandoned keeps that verdict and its message
            connection.execute(
                sa.update(store.runs)
                .where(store.runs.c.run_id == ctx.run_id, store.runs.c.status == "running")
                .values(**values)
            )
            if not will_retry:  # failed for good: the run date is free for the next run
                runlock.release(connection, ctx.run_date, ctx.run_id)
    except Exception as secondary:  # the database may be what failed; the step's error matters
        log.warning("could not record the failure of %s in the runs table: %s", name,
                    store.first_line(secondary))
        if not will_retry:
            write_json(Path(work_dir) / UNRECORDED_FAILURE, {
                "message": message[:2000], "finished_at": values["finished_at"].isoformat()})


def _record_unrecorded_failures(connection: sa.Connection, out_dir: Path) -> None:
    """Attempts still ``running`` whose last step failed for good while the database was away:
    recorded failed now, their run dates freed."""
    runs = store.runs
    for run_id, run_date in connection.execute(
            sa.select(runs.c.run_id, runs.c.run_date).where(runs.c.status == "running")).all():
        note = out_dir / store.work_path(run_date, run_id) / UNRECORDED_FAILURE
        if not note.is_file():
            continue
        failure = read_json(note)
        connection.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
            status="failed", finished_at=datetime.fromisoformat(failure["finished_at"]),
            message=failure["message"]))
        runlock.release(connection, run_date, run_id)


def _read_results(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Results with ``reasons`` as an Arrow list column (no million Python lists to build)."""
    table = pq.read_table(path, columns=columns)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_list(t) else None)


def _fresh(folder: Path) -> Path:
    """An empty folder (what an earlier attempt of the step left is removed: a retry redoes)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _flat(nested) -> list[str]:
    return [str(p) for group in nested for p in group]


# --- start ------------------------------------------------------------------------------------


def iso_date(text: str, where: str = "run date") -> str:
    """``YYYY-MM-DD`` exactly (zero-padded, a real day), else a PopsyncError."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        raise PopsyncError(f"{where} {text!r} is not a date written YYYY-MM-DD") from None


def start_scheduled_run(config_path: str | None, logical_date: datetime) -> str:
    """The DAG's first step: the config of the run (its param, else ``$POPSYNC_CONFIG``) and the
    run date of the logical date on Vietnam's calendar; returns the work folder."""
    from pipelines.config import load_config

    path = config_path or os.environ.get("POPSYNC_CONFIG")
    if not path:
        raise PopsyncError(
            "no run configuration: set POPSYNC_CONFIG to a YAML file, or pass the run's "
            "'config' param"
        )
    return start_run(load_config(path), run_date_of(logical_date))


def start_run(config: RunConfig, run_date: str) -> str:
    """Record the attempt in ``runs``, repair an interrupted publication, make the work folder."""
    run_date = iso_date(run_date)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = store.engine_for(config.db_url)
        with engine.begin() as connection:
            run_id = connection.execute(
                sa.insert(store.runs).values(
                    run_date=run_date, started_at=datetime.now(UTC), status="running"
                )
            ).inserted_primary_key[0]
            _record_unrecorded_failures(connection, config.out_dir)
            # Refused (and this attempt not recorded) while a live run holds the date.
            runlock.acquire(connection, run_date, run_id)
            # Attempts still "running" that hold no live lock died unseen (a killed worker),
            # or fell silent for hours: of this date (and lost it just now) or another.
            abandoned = runlock.abandon_dead_runs(connection, run_id)
    except sa.exc.SQLAlchemyError as exc:
        raise PopsyncError(store.unreachable(config.db_url, exc)) from None
    if abandoned:
        log.warning("runs %s abandoned: still 'running' without a live lock", abandoned)
    for line in publish.recover(config.out_dir, engine):
        log.warning("recovery: %s", line)
    work_dir = config.out_dir / store.work_path(run_date, run_id)
    work_dir.mkdir(parents=True)
    config.dump(work_dir / CONFIG_FILE)
    RunContext(work_dir, run_id, run_date, config.out_dir, config.db_url).save(
        datetime.now(UTC).isoformat()
    )
    return str(work_dir)


# --- extract and input checks -------------------------------------------------------------------


@step("plan_extract")
def plan_extract(work_dir: str) -> list[str]:
    """Each source cut into pieces extracted apart (a Parquet file by runs of row groups of
    about ``chunk_rows`` rows; another source is one piece); returns their spec files."""
    ctx = RunContext.load(work_dir)
    folder = _fresh(ctx.path("sources"))
    specs = []
    for name in SOURCES:
        source = getattr(ctx.config, name)
        write_json(folder / f"{name}.json", {"source": describe(source)})
        for spec in extract_pieces(source, ctx.config.chunk_rows):
            specs.append(folder / "pieces" / f"{name}-{spec['index']:05d}.json")
            write_json(specs[-1], spec)
    return [str(p) for p in specs]


@step("extract")
def extract_source(work_dir: str, *, piece: str) -> list[str]:
    """One piece of a source (``piece``: its spec from plan_extract), streamed in chunks of
    ``chunk_rows``, mapped to canonical columns; returns its chunk files."""
    ctx = RunContext.load(work_dir)
    spec = read_json(Path(piece))
    source = getattr(ctx.config, spec["source"])
    folder = _folder(ctx.path("sources", spec["source"]))
    paths, rows = [], 0
    batches = extract_batches(source, ctx.config.chunk_rows, spec["row_groups"])
    for index, frame in enumerate(batches):
        # named in source order: piece, then chunk within it
        path = folder / f"part-{spec['index']:05d}-{index:04d}.parquet"
        pq.write_table(partition.chunk_table(frame, spec["first_row"] + rows), path,
                       row_group_size=partition.CHUNK_ROW_GROUP, **_PARQUET)
        paths.append(str(path))
        rows += len(frame)
    write_json(Path(piece).with_suffix(".rows.json"), {"rows": rows, "chunks": paths})
    log.info("extract %s piece %d: %d rows in %d chunks", spec["source"], spec["index"], rows,
             len(paths))
    return paths


def _extracted(ctx: RunContext, source: str) -> list[dict]:
    return [read_json(p) for p in sorted(ctx.path("sources", "pieces").glob(
        f"{source}-*.rows.json"))]


def _source_rows(ctx: RunContext, source: str) -> int:
    return sum(piece["rows"] for piece in _extracted(ctx, source))


def _chunks(ctx: RunContext, source: str) -> list[str]:
    return [chunk for piece in _extracted(ctx, source) for chunk in piece["chunks"]]


def _previous_rows(ctx: RunContext) -> dict:
    previous = publish.previous_publication(ctx.engine, ctx.run_date)
    if previous is None:
        return {}
    manifest = publish.manifest_of(ctx.out_dir / previous["path"]) or {}
    return manifest.get("rows", {})


def _finding_text(finding: dict, samples: bool = True) -> str:
    """A failed expectation in a message: reason, column, and rows (samples masked);
    ``samples=False``: counts only, no row's values (for alerts)."""
    where = f" column {finding['column']}" if finding["column"] else ""
    detail = (
        f"{finding['unexpected_count']:,} rows, e.g. {', '.join(finding['samples'])}"
        if samples and finding["unexpected_count"] and finding["samples"]
        else f"observed {finding['observed']}, expected {finding['expected']}"
    )
    if not samples and finding["unexpected_count"]:
        detail = f"{finding['unexpected_count']:,} rows"
    return f"{finding['reason']}{where} ({detail})"


def _hard_failure_message(outcome: dict, samples: bool = True) -> str:
    """A failed suite's hard failures in one line (``samples``: see ``_finding_text``)."""
    parts = [_finding_text(f, samples) for f in outcome["findings"]
             if not f["success"] and f["severity"] == HARD]
    return f"{outcome['suite']} failed validation: " + "; ".join(parts)


def _quarantine_causes(outcome: dict, source: str) -> str:
    """The row checks that quarantined most rows: a column of the wrong kind (dates stored as
    numbers) shows as one reason on nearly every row."""
    failed = sorted((f for f in outcome["findings"] if not f["success"] and f["severity"] == ROW),
                    key=lambda f: -f["unexpected_count"])[:3]
    parts = []
    for finding in failed:
        text = _finding_text(finding)
        if finding["column"] in DATE_COLUMNS and finding["reason"].endswith("_format"):
            text += (f"; if the source writes {finding['column']} another way, give its format "
                     f"as {source}.mapping.{finding['column']}.format (e.g. yyyymmdd, "
                     "dd/mm/yyyy)")
        parts.append(text)
    return "; ".join(parts)


def _gate(ctx: RunContext, name: str, stopped: str, outcomes: list[dict],
          other: list[str] = (), suites: list[dict] | None = None,
          extra: dict | None = None) -> None:
    """Pass, or stop the night (GateStop) when an outcome failed or ``other`` failures are
    given, with its HTML report written in the work folder (a failed night publishes nothing,
    and its report is what tells why) over ``suites`` (default: ``outcomes``). Either way the
    outcome goes to the run's record, with ``extra`` figures."""
    failed = [o for o in outcomes if not o["success"]]
    figures = [*(_hard_failure_message(o, samples=False) for o in failed), *other]
    runrecord.gate(ctx.db_url, ctx.run_id, name, not figures, outcomes, figures, extra)
    if not failed and not other:
        log.info("%s: gate passed (%s)", name, ", ".join(
            f"{o['suite']} {o['rows']:,} rows" for o in outcomes))
        return
    log.error("%s: gate stopped the night: %s", name, " | ".join(figures))
    failures = [*(_hard_failure_message(o) for o in failed), *other]
    report = ctx.path("validation_report.html")
    report.write_text(validation_report.render(
        {"run_date": ctx.run_date, "run_id": ctx.run_id, "verdict": stopped,
         "why": " | ".join(failures)}, outcomes if suites is None else suites), "utf-8")
    raise GateStop(f"{stopped}: " + " | ".join(failures) + f" -- validation report: {report}",
                   name, figures)


@step("check_keys")
def check_keys(work_dir: str, extract: list[list[str]]) -> list[str]:
    """The input checks that need a whole source: unique keys and no volume drop against the
    previous publication (DuckDB over the chunks). Stops the night on a failure; returns every
    chunk, for the row checks."""
    ctx = RunContext.load(work_dir)
    previous = _previous_rows(ctx)
    outcomes = []
    with ctx.sql() as sql:
        for source in SOURCES:
            rows = _source_rows(ctx, source)
            minimum = input_suites.minimum_rows(previous.get(source), ctx.config.volume_drop_max)
            outcomes.append(nation_checks.input_keys(
                sql, source, _chunks(ctx, source), KEYS[source], rows, minimum).as_dict())
    write_json(ctx.path("validation", "keys.json"), outcomes)
    _gate(ctx, "check_keys", "input validation stopped the night", outcomes)
    return _flat(extract)


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
                    "row": frame[partition.SOURCE_ROW].to_numpy()[rows],
                    "key": frame[key].to_numpy()[rows],
                    "column": finding.column,
                    "reason": finding.reason,
                    "value": frame[finding.column].astype("str").to_numpy()[rows],
                }
            )
        )
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in QUARANTINE_COLUMNS}).astype(
            {"row": "int64"}
        )
    return pd.concat(blocks, ignore_index=True).astype({"row": "int64"})


@step("validate_chunk")
def validate_chunk(work_dir: str, *, piece: str) -> str:
    """Great Expectations on one chunk of a source: its outcome and its quarantined rows."""
    ctx = RunContext.load(work_dir)
    chunk = Path(piece)
    source = chunk.parent.name
    frame = pd.read_parquet(chunk)
    if source == "registry":
        outcome = input_suites.validate_registry(
            frame.assign(office_code=metrics.office_code(frame)), ctx.run_date)
    else:
        outcome = input_suites.validate_population(frame, ctx.run_date)
    quarantined = _quarantine(outcome, frame, KEYS[source])
    name = f"{source}-{chunk.stem}"
    quarantined.to_parquet(_folder(ctx.path("quarantine")) / f"{name}.parquet", index=False)
    report = ctx.path("validation", "chunks", f"{name}.json")
    by_reason = {str(r): int(n) for r, n in quarantined.groupby("reason")["row"].nunique().items()}
    write_json(report, {"source": source, "outcome": outcome.as_dict(),
                        "quarantined_rows": int(quarantined["row"].nunique()),
                        "quarantined_by_reason": by_reason})
    log.info("validate_chunk %s: %d rows checked, %d quarantined%s", name, len(frame),
             quarantined["row"].nunique(), _by_reason(by_reason))
    return str(report)


def _by_reason(rows: dict[str, int]) -> str:
    """`` (reason: rows, ...)`` for a log line, most rows first; empty when none."""
    ordered = sorted(rows.items(), key=lambda item: -item[1])
    return f" ({', '.join(f'{r}: {n:,}' for r, n in ordered)})" if ordered else ""


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# Population rows quarantined for these reasons cannot be a link target (the engine keys persons
# by a 12-digit personal ID): they stay in the quarantine file and are left out of matching.
# Registry rows are never left out: each gets a result.
UNLINKABLE_PERSON_REASONS = ("personal_id_format",)


@step("gate_inputs")
def gate_inputs(work_dir: str, validate_chunk: list[str]) -> str:
    """The chunks' outcomes as one per source: a hard failure, or more rows quarantined than
    ``validation.quarantine_max``, stops the night; else the quarantine file is written."""
    ctx = RunContext.load(work_dir)
    reports = [read_json(Path(p)) for p in validate_chunk]
    outcomes, failures, quarantined = [], [], {}
    for source in SOURCES:
        mine = [r for r in reports if r["source"] == source]
        outcome = nation_checks.merge(source, [r["outcome"] for r in mine])
        outcomes.append(outcome)
        quarantined[source] = sum(r["quarantined_rows"] for r in mine)
        share = quarantined[source] / max(_source_rows(ctx, source), 1)
        if share > ctx.config.quarantine_max:
            failures.append(
                f"{source}: {share:.1%} of rows quarantined, more than "
                f"validation.quarantine_max = {ctx.config.quarantine_max:.0%}; most for "
                + _quarantine_causes(outcome, source)
            )
    quarantine: dict[str, dict] = {}
    for source in SOURCES:
        by_reason: dict[str, int] = {}
        for r in reports:
            for reason, rows in r["quarantined_by_reason"].items() if r["source"] == source else ():
                by_reason[reason] = by_reason.get(reason, 0) + rows
        log.info("gate_inputs %s: %d rows, %d quarantined%s", source, _source_rows(ctx, source),
                 quarantined[source], _by_reason(by_reason))
        quarantine[source] = {"rows": _source_rows(ctx, source), "quarantined": quarantined[source],
                              "by_reason": by_reason}
    keys = read_json(ctx.path("validation", "keys.json"))
    write_json(ctx.path("validation", "inputs.json"), [*keys, *outcomes])
    write_json(ctx.path("validation", "quarantined.json"), quarantined)
    _gate(ctx, "gate_inputs", "input validation stopped the night", outcomes, failures,
          [*keys, *outcomes], {"quarantine": quarantine})
    with ctx.sql() as sql:
        sql.execute(
            f"COPY (SELECT * FROM read_parquet('{ctx.path('quarantine')}/*.parquet') "
            f"ORDER BY source DESC, row, reason) TO '{ctx.path('quarantine.parquet')}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    return work_dir


@step("prepare_population")
def prepare_population(work_dir: str, gate_inputs: str, plan_bands: list[str]) -> str:
    """The population rows no link can name (quarantined for an unlinkable reason), and per band
    the persons its rows quote by ID from other years (DuckDB joins)."""
    del gate_inputs  # the population is prepared once it passed the input checks
    ctx = RunContext.load(work_dir)
    bands = [band for p in plan_bands for band in read_json(Path(p))["bands"]]
    quoted = _fresh(ctx.path("quoted"))
    reasons = ", ".join(f"'{r}'" for r in UNLINKABLE_PERSON_REASONS)
    with ctx.sql() as sql:
        sql.execute(
            f"COPY (SELECT DISTINCT row AS {partition.SOURCE_ROW} FROM "
            f"'{ctx.path('quarantine.parquet')}' WHERE source = 'population' "
            f"AND reason IN ({reasons})) TO '{ctx.path('unlinkable.parquet')}' (FORMAT parquet)")
        partition.quoted_persons(sql, bands, _chunks(ctx, "registry"),
                                 _chunks(ctx, "population"), quoted,
                                 ctx.path("unlinkable.parquet"), ctx.path(DECISIONS_FILE))
    return work_dir


# --- matching ---------------------------------------------------------------------------------

DECISIONS_FILE = "decisions.parquet"  # the standing review decisions the night applies


@step("plan_bands")
def plan_bands(work_dir: str, extract: list[list[str]]) -> list[str]:
    """The registry cut into birth-year bands of at most ``partition.max_rows`` rows, grouped
    into cohorts of at most ``partition.cohort_persons`` persons (one mapped matching task
    each); returns the cohorts' spec files."""
    del extract  # the registry's chunks, listed in the work folder
    ctx = RunContext.load(work_dir)
    folder = _fresh(ctx.path("bands"))
    with ctx.sql() as sql:
        bands = partition.plan(sql, _chunks(ctx, "registry"), ctx.config.partition_max_rows)
        persons = dict(sql.execute(
            f"SELECT {partition.BIRTH_YEAR}, count(*) FROM "
            f"read_parquet({files_sql(_chunks(ctx, 'population'))}) GROUP BY ALL").fetchall())
    # the person partitions results are written into by the matching tasks (see split_results)
    _fresh(ctx.path("persons"))
    partitions = max(1, math.ceil(sum(b["rows"] for b in bands) / ctx.config.chunk_rows))
    cohorts = partition.cohorts(bands, persons, ctx.config.cohort_persons)
    # the reviewers' decisions as they stand now, one copy that matching and resolve both read
    review_decisions.standing(ctx.engine).to_parquet(ctx.path(DECISIONS_FILE), index=False)
    sizes = [b["rows"] for b in bands]
    log.info("plan_bands: %d registry rows in %d birth-year bands (%d to %d rows) and %d "
             "cohorts", sum(sizes), len(bands), min(sizes, default=0), max(sizes, default=0),
             len(cohorts))
    return partition.write_specs([{**c, "partitions": partitions} for c in cohorts], folder)


@step("match")
def match_cohort(work_dir: str, prepare_population: str, *, piece: str) -> list[str]:
    """Link the bands of one cohort to its population slice, normalized once for them all, and
    write their results into the person partitions (``persons/part=K/cohort-N.parquet``);
    returns the partitions written."""
    del prepare_population  # the quoted and unlinkable persons, in the work folder
    import matching

    ctx = RunContext.load(work_dir)
    cohort = read_json(Path(piece))
    frame, reads = partition.read_cohort(cohort, _chunks(ctx, "population"), ctx.path("quoted"),
                                         ctx.path("unlinkable.parquet"))
    population = matching.Population.of(frame)
    del frame
    pa.default_memory_pool().release_unused()  # the read's buffers, for the links to reuse
    registries = partition.cohort_registry(cohort)
    settings = matching.Settings.from_mapping(ctx.config.matching)
    decisions = pd.read_parquet(ctx.path(DECISIONS_FILE))  # each band applies its rows'
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for spec in cohort["bands"]:
            registry = registries.pop(spec["index"]).to_pandas()
            rows = reads[spec["index"]]
            mine = population if len(rows) == len(population) else population.take(rows)
            linked = matching.link(registry, mine, settings, decisions)
            results = _with_registry_fields(linked.results, registry)
            _write_by_person(results, cohort, writers, ctx.path("persons"))
            write_json(_folder(ctx.path("parts")) / f"results-{spec['index']:05d}.json", {
                "rows": spec["rows"], "cohort": cohort["index"], "population_rows": len(mine),
                "report": linked.report})
            statuses = linked.report["status_counts"]
            log.info("match band %d: %d registry rows against %d persons: %d linked "
                     "(%s)", spec["index"], spec["rows"], len(mine),
                     int(linked.results["personal_id"].notna().sum()),
                     ", ".join(f"{s} {n:,}" for s, n in statuses.items()))
            del mine, linked, registry, results
    finally:
        for writer in writers.values():
            writer.close()
    return [str(ctx.path("persons", f"part={k}")) for k in sorted(writers)]


def _write_by_person(results: pd.DataFrame, cohort: dict, writers: dict, folder: Path) -> None:
    """A band's results into the person partitions, one row group per band in each partition's
    file of the cohort: the rows of one person (by linked personal ID, else VSS code) land in
    one partition whichever band linked them."""
    part = partition.person_partition(results, cohort["partitions"])
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(cohort["partitions"] + 1))
    # one gather in partition order; each partition's rows are then a zero-copy slice of it
    table = pa.Table.from_pandas(results, schema=_results_schema(), preserve_index=False).take(
        pa.array(order))
    for k in range(cohort["partitions"]):
        if bounds[k] == bounds[k + 1]:
            continue
        rows = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        if k not in writers:
            path = _folder(folder / f"part={k}") / f"cohort-{cohort['index']:05d}.parquet"
            writers[k] = pq.ParquetWriter(path, rows.schema, compression="zstd",
                                          compression_level=1)
        writers[k].write_table(rows)


@functools.cache
def _results_schema() -> pa.Schema:
    """The bands' results as written (one schema for every band, even one whose column is all
    empty)."""
    def kind(name: str) -> pa.DataType:
        if name == "reasons":
            return pa.list_(pa.string())
        if name.startswith("match_"):
            return pa.float64()
        if name.endswith("_agrees") or name in LINE_FLAGS:
            return pa.bool_()
        if name == partition.BIRTH_YEAR:
            return pa.int16()
        return pa.string()

    return pa.schema([(name, kind(name)) for name in (*RESULT_COLUMNS, *LINE_FLAGS,
                                                      "office_code", *REGISTRY_GROUPS)])


def _with_registry_fields(results: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """The published results: the engine's columns, then the registry's line flags, office,
    gender and birth year (``link`` returns one result per registry row in the registry's
    order: no join needed)."""
    if not np.array_equal(
        results["vss_code"].to_numpy(dtype=object), registry["vss_code"].to_numpy(dtype=object)
    ):
        raise RuntimeError("matching.link returned results out of the registry's row order")
    fields = registry[list(LINE_FLAGS)].assign(
        office_code=metrics.office_code(registry),
        gender=registry["gender"], **{partition.BIRTH_YEAR: partition.stated_year(registry)})
    return pd.concat(
        [results[list(RESULT_COLUMNS)].reset_index(drop=True), fields.reset_index(drop=True)],
        axis=1,
    )


# --- results ------------------------------------------------------------------------------------


@step("split_results")
def split_results(work_dir: str, match: list[list[str]], residents: str) -> list[str]:
    """Every cohort matched: the person partitions its tasks wrote the results into (by hash of
    the linked personal ID; rows linked to nobody by their VSS code), so that one person, one
    registration is decided per partition; returns the partitions."""
    del residents  # copied out of the population (pipelines/coverage.py) before it goes
    ctx = RunContext.load(work_dir)
    # what only matching read goes, to keep the work folder small
    _remove(ctx, "unlinkable.parquet", "quoted", "bands", "sources/population")
    return sorted(set(_flat(match)))


@step("resolve")
def resolve_partition(work_dir: str, *, piece: str) -> str:
    """One person, one registration within a partition of persons; its status and reason counts
    and its Great Expectations outcome; returns its resolved results file."""
    import matching

    ctx = RunContext.load(work_dir)
    name = Path(piece).name.replace("=", "-")
    parts = _read_results(Path(piece))
    results = matching.resolve(parts, matching.Settings.from_mapping(ctx.config.matching),
                               pd.read_parquet(ctx.path(DECISIONS_FILE)))
    out = _folder(ctx.path("results")) / f"{name}.parquet"
    results.to_parquet(out, index=False, **_PARQUET)
    schemes = ctx.config.province_schemes
    counts = _folder(ctx.path("counts"))
    metrics.status_counts(results, schemes).to_parquet(counts / f"{name}-status.parquet")
    metrics.compute_reason_counts(results, ctx.run_date, schemes).to_parquet(
        counts / f"{name}-reasons.parquet")
    statuses = results["status"].value_counts()
    write_json(counts / f"{name}.json", {
        "rows": len(results),
        "statuses": {s: int(statuses.get(s, 0)) for s in STATUSES},
        "lines": metrics.national_totals(results),
        "expected_errors": metrics.expected_errors(results),
    })
    log.info("resolve %s: %d results (%s)", name, len(results),
             ", ".join(f"{s} {int(statuses.get(s, 0)):,}" for s in STATUSES))
    outcome = result_suites.validate_results(results, metrics.reasons_text(results["reasons"]))
    write_json(ctx.path("validation", "partitions", f"{name}.json"), outcome.as_dict())
    return str(out)


@step("check_results")
def check_results(work_dir: str, resolve: list[str]) -> str:
    """Metrics from the partitions' counts; the result checks (each partition's, one result per
    registry row across them, the metrics'); any failure stops publication."""
    ctx = RunContext.load(work_dir)
    names = [Path(p).stem for p in sorted(str(p) for p in resolve)]
    counts = ctx.path("counts")
    status = pd.concat([pd.read_parquet(counts / f"{n}-status.parquet") for n in names])
    previous = publish.previous_metrics(ctx.engine, ctx.run_date)
    night = metrics.metrics_from_counts(status, ctx.run_date, previous)
    night.to_parquet(ctx.path("metrics.parquet"), index=False)
    metrics.merge_reason_counts(
        [pd.read_parquet(counts / f"{n}-reasons.parquet") for n in names]
    ).to_parquet(ctx.path("reason_counts.parquet"), index=False)
    totals: dict[str, int] = {}
    for n in names:
        for line, rows in read_json(counts / f"{n}.json")["lines"].items():
            totals[line] = totals.get(line, 0) + rows
    partitions = nation_checks.merge(
        "results", [read_json(ctx.path("validation", "partitions", f"{n}.json")) for n in names])
    with ctx.sql() as sql:
        covered = nation_checks.results_cover_registry(
            sql, [str(p) for p in resolve], _chunks(ctx, "registry"),
            _source_rows(ctx, "registry"))
    outcomes = [
        partitions,
        covered.as_dict(),
        result_suites.validate_metrics(night, totals).as_dict(),
    ]
    write_json(ctx.path("validation", "results.json"), outcomes)
    national = night[(night["line"] == "all") & (night["scheme"] == night["scheme"].iloc[0])]
    log.info("check_results: sync rate %.2f%% (%d of %d participants, %d provinces)",
             100 * national[SYNCHRONIZED].sum() / max(national["participants"].sum(), 1),
             national[SYNCHRONIZED].sum(), national["participants"].sum(), len(national))
    _gate(ctx, "check_results", "result validation stopped publication", outcomes,
          suites=[*read_json(ctx.path("validation", "inputs.json")), *outcomes])
    return work_dir


# --- lists and publication ----------------------------------------------------------------------


def _group_of(office: str, schemes: tuple[str, ...]) -> str:
    """The province group whose lists one task writes: the 34-scheme unit of a 63-scheme office
    (so a unit's list and its offices' lists come from the same rows), or the office."""
    return SCHEME_63_TO_34.get(office, office) if "34" in schemes else office


def _batches(rows: dict[str, int], size: int) -> list[list[str]]:
    """Province groups dealt into about ``rows / size`` batches of even rows, biggest first."""
    count = max(1, min(len(rows), math.ceil(sum(rows.values()) / size)))
    batches: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for group in sorted(rows, key=lambda g: (-rows[g], g)):
        lightest = load.index(min(load))
        batches[lightest].append(group)
        load[lightest] += rows[group]
    return [sorted(b) for b in batches if b]


@step("gather_lists")
def gather_lists(work_dir: str, resolve: list[str]) -> list[str]:
    """The rows to fix, joined with their registry fields, partitioned by province group (DuckDB
    joins the nation's rows to fix with the registry out of core); makes the staging folder;
    returns batches of groups of about ``chunk_rows`` rows to fix, one list-writing task each."""
    ctx = RunContext.load(work_dir)
    schemes = ctx.config.province_schemes
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    _fresh(staging)  # left by an attempt that died: a retry redoes it
    _remove(ctx, "persons")  # every partition is resolved
    folder = _fresh(ctx.path("listed"))
    results = files_sql(resolve)
    wanted = [c for c in lists.HEADERS if c in RESULT_COLUMNS]
    with ctx.sql() as sql:
        offices = sorted(o for o, in sql.execute(
            f"SELECT DISTINCT office_code FROM read_parquet({results}) "
            "WHERE office_code IS NOT NULL").fetchall())
        groups = {o: _group_of(o, schemes) for o in offices}
        sql.execute("CREATE TEMP TABLE grouping (office_code VARCHAR, unit VARCHAR)")
        sql.executemany("INSERT INTO grouping VALUES (?, ?)", list(groups.items()))
        sql.execute(
            f"COPY (SELECT {', '.join('r.' + c for c in wanted)}, r.office_code, g.unit, "
            "f.full_name, f.birth_date, f.gender, f.national_id "
            f"FROM read_parquet({results}) r JOIN grouping g USING (office_code) "
            f"LEFT JOIN read_parquet({files_sql(_chunks(ctx, 'registry'))}) f USING (vss_code) "
            f"WHERE r.status <> '{SYNCHRONIZED}') TO '{folder}' "
            "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (unit))"
        )
        rows = dict.fromkeys(groups.values(), 0) | dict(sql.execute(
            f"SELECT unit, count(*) FROM read_parquet('{folder}/*/*.parquet', "
            # as text: units all without a leading zero ('79', '92') would be read as numbers
            "hive_partitioning=true, hive_types={'unit': VARCHAR}) GROUP BY unit").fetchall())
    batches = _batches(rows, ctx.config.chunk_rows)
    write_json(folder / "batches.json", [
        {unit: [o for o, g in groups.items() if g == unit] for unit in batch}
        for batch in batches
    ])
    return [str(i) for i in range(len(batches))]


@step("stage_lists")
def stage_lists(work_dir: str, *, piece: str) -> int:
    """The lists of one batch of province groups into the staging folder, each group's rows
    streamed in slices in list order (DuckDB sorts them out of core); returns files written."""
    ctx = RunContext.load(work_dir)
    folder = ctx.path("listed")
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    columns = ", ".join([*lists.HEADERS, "office_code"])
    written = 0
    for unit, offices in read_json(folder / "batches.json")[int(piece)].items():
        rows = folder / f"unit={unit}"
        with ctx.sql() as sql:
            slices: Iterable[pd.DataFrame] = ()  # nobody to fix in this group: empty files
            if rows.exists():
                reader = sql.sql(  # a relation's reader streams; an execute() result would not
                    f"SELECT {columns} FROM read_parquet('{rows}/*.parquet') "
                    "ORDER BY office_code, vss_code").to_arrow_reader(batch_size=lists.SLICE_ROWS)
                slices = (batch.to_pandas() for batch in reader)
            written += lists.write_lists(slices, offices, staging, ctx.config.province_schemes,
                                         scratch=ctx.work)
    log.info("stage_lists batch %s: %d files for %d province groups", piece, written,
             len(read_json(folder / "batches.json")[int(piece)]))
    return written


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


def _summary(ctx: RunContext) -> dict:
    partitions = [read_json(p) for p in ctx.path("counts").glob("*.json")]
    counts = {s: sum(p["statuses"][s] for p in partitions) for s in STATUSES}
    results_rows = sum(p["rows"] for p in partitions)
    quarantined = read_json(ctx.path("validation", "quarantined.json"))
    return {
        "rows": {s: _source_rows(ctx, s) for s in SOURCES},
        "quarantined": {s: int(quarantined[s]) for s in SOURCES},
        "statuses": counts,
        "sync_rate": float(counts[STATUSES[0]] / max(results_rows, 1)),
        "decisions": _decision_figures(ctx),
        # the night's false- and missed-link rates estimated from its own probabilities
        "error_estimates": metrics.error_rates([p.get("expected_errors", {})
                                                for p in partitions]),
    }


def _decision_figures(ctx: RunContext) -> dict:
    """The reviewers' decisions the bands applied, and the engine's own decision scored on the
    decided pairs as labels (precision and recall), added up over the bands' reports."""
    from matching.decisions import precision_recall

    reports = [read_json(p)["report"].get("decisions", {})
               for p in sorted(ctx.path("parts").glob("results-*.json"))]
    figures = {key: sum(r.get(key, 0) for r in reports) for key in (
        "confirmed", "rejected", "not_in_population", "links_confirmed", "kept_unmatched",
        "contradicted")}
    labels = {key: sum(r.get("labels", {}).get(key, 0) for r in reports) for key in (
        "confirmed_pairs", "rejected_pairs", "true_links", "false_links", "missed_links")}
    return {**figures, "labels": {**labels, **precision_recall(labels)}}


def _write_tablefiles_sql(paths: list[str], target: Path) -> None:
    """Partition files as one Parquet file, a partition at a time."""
    writer = None
    try:
        for path in paths:
            table = pq.read_table(path)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def _write_quarantine_csv(source: Path, target: Path) -> None:
    """quarantine.csv for spreadsheets (UTF-8 with BOM, text neutralized), a batch at a time."""
    parquet = pq.ParquetFile(source)
    with open(target, "w", encoding="utf-8-sig", newline="") as out:
        header = True
        for batch in parquet.iter_batches(batch_size=500_000):
            lists.neutralize_frame(batch.to_pandas()).to_csv(out, index=False, header=header)
            header = False
        if header:
            out.write(",".join(QUARANTINE_COLUMNS) + "\n")


@step("stage")
def stage_publication(work_dir: str, stage_lists: list[int], resolve: list[str],
                      corrections: str, stage_employers: list[int]) -> str:
    """Every file of the publication but the validation report into the staging folder the
    lists went to (results as one file, quarantine, rankings, corrections feed, manifest)."""
    ctx = RunContext.load(work_dir)
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    for name in ("corrections.parquet", "corrections.csv"):
        shutil.copyfile(Path(corrections) / name, staging / name)
    _write_tablefiles_sql(sorted(str(p) for p in resolve), staging / "results.parquet")
    shutil.copyfile(ctx.path("quarantine.parquet"), staging / "quarantine.parquet")
    _write_quarantine_csv(ctx.path("quarantine.parquet"), staging / "quarantine.csv")
    _rankings(pd.read_parquet(ctx.path("metrics.parquet"))).to_csv(
        staging / "rankings.csv", index=False, encoding="utf-8-sig"
    )
    write_json(
        staging / publish.MANIFEST,
        {
            "run_id": ctx.run_id,
            "run_date": ctx.run_date,
            **_summary(ctx),
            "list_files": int(sum(stage_lists)),
            "corrections": pq.ParquetFile(staging / "corrections.parquet").metadata.num_rows,
            "employer_workbooks": int(sum(stage_employers)),
            "files": {
                "results": "results.parquet",
                "quarantine": "quarantine.parquet",
                "rankings": "rankings.csv",
                "corrections": "corrections.{parquet,csv}",
                "employers": "employers/<scheme>/<province_code>/employers.{zip,csv}",
                "validation_report": "validation_report.html",
                "lists": "lists/<scheme>/<province_code>/unsynchronized.{xlsx,csv}",
                "uninsured": "coverage/<scheme>/<province_code>/uninsured.{xlsx,csv}",
            },
        },
    )
    return str(staging)


def _write_validation_report(ctx: RunContext, staging: Path, summary: dict) -> None:
    """The night's GX outcomes, input and result suites, as JSON and as an offline HTML page."""
    suites = [
        *read_json(ctx.path("validation", "inputs.json")),
        *read_json(ctx.path("validation", "results.json")),
    ]
    (staging / "validation_report.html").write_text(
        validation_report.render(
            {
                "run_date": ctx.run_date,
                "run_id": ctx.run_id,
                **summary["rows"],
                "quarantined": sum(summary["quarantined"].values()),
            },
            suites,
        ),
        "utf-8",
    )
    write_json(staging / "validation.json", suites)


# The work folder's big intermediates, removed once the night is published (most go earlier,
# as soon as no later step reads them).
INTERMEDIATES = ("sources", "quarantine", "unlinkable.parquet", "quoted", "bands", "persons",
                 "results", "listed", DECISIONS_FILE, "residents", "uninsured", "corrections",
                 "employers")


def _remove(ctx: RunContext, *names: str) -> None:
    """Remove intermediates of the work folder."""
    for name in names:
        path = ctx.path(name)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@step("publish")
def publish_run(work_dir: str, check_results: str, stage: str, breakdowns: str,
                coverage: str, worklist: str | None = None) -> str:
    """Swap the staged publication in and commit its rows; returns the publication folder."""
    # all must have succeeded: their files are in the work folder, the work list's rows in the
    # database under this run
    del check_results, stage, worklist
    ctx = RunContext.load(work_dir)
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    summary = publish.manifest_of(staging)
    if summary is None:
        raise PopsyncError(f"staging folder {staging} is missing or incomplete; rerun the night")
    _write_validation_report(ctx, staging, summary)
    final = publish.publish(
        ctx.out_dir,
        ctx.engine,
        ctx.run_id,
        ctx.run_date,
        staging,
        pd.read_parquet(ctx.path("metrics.parquet")),
        pd.read_parquet(ctx.path("reason_counts.parquet")),
        {
            "participants": summary["rows"]["registry"],
            "quarantined": summary["quarantined"]["registry"],
            "sync_rate": summary["sync_rate"],
        },
        {"breakdowns": pd.read_parquet(breakdowns), "coverage": pd.read_parquet(coverage)},
    )
    log.info("publish %s: %s; %d participants, %d quarantined, sync rate %.2f%%",
             ctx.run_date, final, summary["rows"]["registry"], summary["quarantined"]["registry"],
             100 * summary["sync_rate"])
    # Published: the big intermediates go; run.json, timings and validation results stay.
    _remove(ctx, *INTERMEDIATES)
    return str(final)


def run_date_of(logical_date: datetime, timezone: str = "Asia/Ho_Chi_Minh") -> str:
    """The run date of a scheduled night: its logical date on Vietnam's calendar."""
    import zoneinfo

    return logical_date.astimezone(zoneinfo.ZoneInfo(timezone)).date().isoformat()

