"""Publication: swap a fully built staging folder in and commit its rows to the database, so that at
every moment the latest good publication (the ``publications`` row with the greatest run date)
has its files and its rows.

Order, and why it is safe:
1. everything is built and validated in ``publications/.staging-<date>-r<run>`` (same disk, so
   renames are atomic);
2. the database is checked to be reachable before any file moves;
3. an existing folder of the same run date is renamed aside to ``.replaced-<date>-r<run>``, the
   staging folder renamed to ``publications/<date>``;
4. one transaction replaces the run date's metrics, reason_counts, breakdowns, coverage and
   publications rows, settles the work list's statuses (``popsync.worklist.settle``: the rows
   the run loaded before are seen from now on) and marks the run succeeded;
5. on failure in 3-4 the renames are undone; after success the replaced folder is removed.
A crash between 3 and 4 leaves a ``.replaced-`` folder: ``recover`` (run at the start of every
run) compares the folder's manifest with the database and puts back whichever the database
references.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines import runlock
from popsync import store, worklist
from popsync.errors import PopsyncError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
REPLACED_PREFIX = ".replaced-"


def staging_folder(out_dir: Path, run_date: str, run_id: int) -> Path:
    return out_dir / store.PUBLICATIONS_DIR / f"{STAGING_PREFIX}{run_date}-r{run_id}"


def _replaced_folder(out_dir: Path, run_date: str, run_id: int) -> Path:
    return out_dir / store.PUBLICATIONS_DIR / f"{REPLACED_PREFIX}{run_date}-r{run_id}"


def manifest_of(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def published_run_id(engine: sa.Engine, run_date: str) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(store.publications.c.run_id).where(store.publications.c.run_date == run_date)
        ).scalar()


def previous_publication(engine: sa.Engine, run_date: str) -> dict | None:
    """The latest publication before ``run_date`` (the one a night compares itself with)."""
    table = store.publications
    with engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(table)
                .where(table.c.run_date < run_date)
                .order_by(table.c.run_date.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def previous_metrics(engine: sa.Engine, run_date: str) -> pd.DataFrame | None:
    previous = previous_publication(engine, run_date)
    if previous is None:
        return None
    with engine.connect() as connection:
        return pd.read_sql(
            sa.select(store.metrics).where(store.metrics.c.run_date == previous["run_date"]),
            connection,
        )


def _records(frame: pd.DataFrame) -> list[dict]:
    """Plain Python values (NaN -> None) for a bulk insert."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _commit(
    engine: sa.Engine,
    run_id: int,
    run_date: str,
    path: str,
    metrics: pd.DataFrame,
    reason_counts: pd.DataFrame,
    summary: dict,
    groups: dict[str, pd.DataFrame],
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for table in (store.metrics, store.reason_counts, store.breakdowns, store.coverage,
                      store.publications):
            connection.execute(sa.delete(table).where(table.c.run_date == run_date))
        if len(metrics):
            connection.execute(sa.insert(store.metrics), _records(metrics))
        if len(reason_counts):
            connection.execute(sa.insert(store.reason_counts), _records(reason_counts))
        for name, frame in groups.items():
            if len(frame):
                connection.execute(sa.insert(store.metadata.tables[name]), _records(frame))
        connection.execute(
            sa.insert(store.publications),
            {"run_date": run_date, "run_id": run_id, "published_at": now, "path": path},
        )
        connection.execute(
            sa.update(store.runs)
            .where(store.runs.c.run_id == run_id)
            .values(status="succeeded", finished_at=now, message=None, **summary)
        )
        started_at = connection.execute(
            sa.select(store.runs.c.started_at).where(store.runs.c.run_id == run_id)).scalar()
        worklist.settle(connection, run_id, run_date, started_at or now, now)
        runlock.release(connection, run_date, run_id)


def publish(
    out_dir: Path,
    engine: sa.Engine,
    run_id: int,
    run_date: str,
    staging: Path,
    metrics: pd.DataFrame,
    reason_counts: pd.DataFrame,
    summary: dict,
    groups: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Make ``staging`` the publication of ``run_date``; returns its final folder. ``groups``:
    rows of the ``breakdowns`` and ``coverage`` tables, committed with the metrics."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise PopsyncError(
            f"{store.unreachable(engine.url, exc)}; nothing was published, the previous "
            "publication stays; rerun this run date when the database is back"
        ) from None
    relative = store.publication_path(run_date)
    final = out_dir / relative
    replaced = _replaced_folder(out_dir, run_date, run_id)
    had_previous = final.exists()
    moved_previous = moved_new = False
    try:
        if had_previous:
            os.rename(final, replaced)
            moved_previous = True
        os.rename(staging, final)
        moved_new = True
        _commit(engine, run_id, run_date, relative, metrics, reason_counts, summary,
                groups or {})
    except Exception as exc:
        if moved_new:
            os.rename(final, staging)
        if moved_previous:
            os.rename(replaced, final)
        first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise PopsyncError(
            f"publishing run date {run_date} to the database failed ({first_line}); the previous "
            "publication stays; rerun this run date"
        ) from exc
    if had_previous:
        shutil.rmtree(replaced, ignore_errors=True)
    return final


def recover(out_dir: Path, engine: sa.Engine) -> list[str]:
    """Finish or undo a publication a crash interrupted; returns what was done, for the log."""
    folder = out_dir / store.PUBLICATIONS_DIR
    done: list[str] = []
    if not folder.exists():
        return done
    for replaced in sorted(folder.glob(f"{REPLACED_PREFIX}*")):
        run_date = replaced.name.removeprefix(REPLACED_PREFIX).rsplit("-r", 1)[0]
        final = folder / run_date
        committed = published_run_id(engine, run_date)
        current = manifest_of(final) if final.exists() else None
        if current and current.get("run_id") == committed:
            shutil.rmtree(replaced)
            done.append(
                f"{run_date}: interrupted publication was committed; removed the old folder"
            )
            continue
        if final.exists():
            shutil.rmtree(final)
        os.rename(replaced, final)
        done.append(
            f"{run_date}: interrupted publication was not committed; restored the previous one"
        )
    with engine.connect() as connection:
        running = set(
            connection.execute(
                sa.select(store.runs.c.run_id).where(store.runs.c.status == "running")
            ).scalars()
        )
    for staging in folder.glob(f"{STAGING_PREFIX}*"):
        if int(staging.name.rsplit("-r", 1)[1]) in running:
            continue  # another attempt is still building it
        shutil.rmtree(staging)
        done.append(f"removed unfinished staging folder {staging.name}")
    return done
