"""Helpers of the pipeline tests: run ``popsync run`` in-process, read the publication database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines import cli
from popsync import store


def run(out: Path, registry: Path, population: Path, run_date: str, *extra: str) -> int:
    return cli.main(
        [
            "run",
            "--registry",
            str(registry),
            "--population",
            str(population),
            "--out",
            str(out),
            "--run-date",
            run_date,
            *extra,
        ]
    )


def read_table(out: Path, table: sa.Table, db_url: str | None = None) -> pd.DataFrame:
    engine = sa.create_engine(db_url or store.default_db_url(out))
    try:
        with engine.connect() as connection:
            return pd.read_sql(sa.select(table), connection)
    finally:
        engine.dispose()


def copy_of(published: Path, out: Path) -> Path:
    """A private copy of a published output folder (files, SQLite database): cheaper than a run."""
    shutil.copytree(published, out, ignore=shutil.ignore_patterns("work"))
    return out


def group_files(work_dir: str) -> tuple[str, str]:
    """The breakdowns and coverage files a night run ``until="stage"`` left for publish_run."""
    return str(Path(work_dir) / "breakdowns.parquet"), str(Path(work_dir) / "coverage.parquet")
