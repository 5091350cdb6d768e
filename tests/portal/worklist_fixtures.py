"""Test helpers of the work list: a real night (``popsync run``) on a generated nation, so the
list holds the rows, reasons and suggestions the engine gives; the next night after offices
corrected some records at source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines import cli
from popsync import store
from popsync.synthetic import generate_nation, write_nation
from popsync.text import folded_name

PEOPLE, SEED = 3000, 1  # province 79 then lists ~37 rows, 11 of them a name to correct only
NIGHTS = ("2026-12-01", "2026-12-02")


def make_nation(folder: Path) -> Path:
    write_nation(generate_nation(PEOPLE, seed=SEED), folder, force=True)
    return folder


def run_night(nation: Path, out: Path, run_date: str, registry: Path | None = None) -> None:
    code = cli.main(["run", "--registry", str(registry or nation / "registry.parquet"),
                     "--population", str(nation / "population.parquet"), "--out", str(out),
                     "--run-date", run_date])
    assert code == 0, f"popsync run {run_date} failed"


def copy_published(published: Path, target: Path) -> Path:
    """A private copy of a published output folder (files and SQLite database)."""
    shutil.copytree(published, target, ignore=shutil.ignore_patterns("work"))
    return target


def name_fixes(out: Path, office: str, count: int) -> list[dict]:
    """Listed rows of an office whose only reason is the name, linked by their exact ID, and
    registered with diacritics (a clerk finds them typing none): the correction at source (the
    population's spelling) makes them synchronized."""
    engine = sa.create_engine(store.default_db_url(out))
    rows = store.worklist_rows
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(rows.c.vss_code, rows.c.full_name, rows.c.suggested_full_name)
            .where(rows.c.province_code == office, rows.c.reasons == "name_mismatch",
                   rows.c.national_id == rows.c.personal_id,
                   rows.c.suggested_full_name.is_not(None))
            .order_by(rows.c.vss_code)).mappings().all()
    engine.dispose()
    found = [r for r in found if folded_name(r["full_name"]) != r["full_name"].lower()][:count]
    assert len(found) == count, "the generated nation has too few names to correct"
    return [dict(r) for r in found]


def corrected_registry(nation: Path, target: Path, names: dict[str, str]) -> Path:
    """The registry with the names of some VSS codes corrected at source."""
    registry = pd.read_parquet(nation / "registry.parquet")
    fixed = registry["vss_code"].isin(names)
    registry.loc[fixed, "full_name"] = registry.loc[fixed, "vss_code"].map(names)
    target.mkdir(parents=True, exist_ok=True)
    registry.to_parquet(target / "registry.parquet", index=False)
    return target / "registry.parquet"
