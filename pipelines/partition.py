"""Fan-out of matching: the registry cut into birth-year bands, each band matched against only the
population slice it can link to.

Why birth year, not province: a participant is often registered in another province than the
one they live in (half of Bình Dương's population are migrants), so a province slice of the
population would lose real links. Birth year travels with the person: the errors seen in
registries keep the year (partial dates, day/month swapped) or move it by one, so a band
[lo, hi] is matched against population born in [lo - 1, hi + 1], plus everyone whose personal
ID or old ID number a band row quotes (a wrong birth date with a right ID is still found).
Registry rows without a readable year are matched against the whole population.

Each band holds at most ``max_rows`` registry rows and reads only the population columns
matching uses, with the band's filter pushed down to the Parquet row groups (the population
file is sorted by birth year), so a mapped task's memory is bounded by its band, not the nation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from matching.normalize import BIRTH_YEAR_MAX, BIRTH_YEAR_MIN
from popsync.contracts import POPULATION_REQUIRED, REGISTRY_REQUIRED

BIRTH_YEAR = "birth_year"  # helper column of the work folder's population file
SOURCE_ROW = "source_row"  # helper column: 1-based row of the person in the source
YEAR_MARGIN = 1
POPULATION_ROW_GROUP = 65_536


def birth_year(birth_date) -> pa.Array | pa.ChunkedArray:
    """Year of ``YYYY[-MM[-DD]]`` text (a pandas or Arrow column) within the engine's range, else
    null, as Arrow int16."""
    if isinstance(birth_date, pd.Series):
        birth_date = pa.array(birth_date, type=pa.string(), from_pandas=True)
    head = pc.utf8_slice_codeunits(birth_date, 0, 4)
    readable = pc.fill_null(pc.match_substring_regex(head, r"^\d{4}$"), False)
    year = pc.cast(pc.if_else(readable, head, pa.scalar(None, head.type)), pa.int16())
    known = pc.and_(pc.greater_equal(year, BIRTH_YEAR_MIN), pc.less_equal(year, BIRTH_YEAR_MAX))
    return pc.if_else(known, year, pa.scalar(None, pa.int16()))


def write_population(population: pd.DataFrame, path: Path) -> None:
    """Sorted by birth year with small row groups, so band filters skip most of the file.

    ``source_row`` keeps each person's 1-based row in the source, so that problems found in the
    sorted work file are reported at the row the data engineer can look up.
    """
    if SOURCE_ROW not in population.columns:
        population = population.assign(**{SOURCE_ROW: np.arange(1, len(population) + 1)})
    # ID columns typed as strings even when all null, so the bands' ID filters always apply
    population = population.astype({"personal_id": "string", "old_id_number": "string"})
    years = birth_year(population["birth_date"])
    table = pa.Table.from_pandas(population, preserve_index=False).append_column(BIRTH_YEAR, years)
    table = table.take(pc.array_sort_indices(years))  # stable, unreadable years last
    pq.write_table(table, path, row_group_size=POPULATION_ROW_GROUP)


def plan(registry: pa.Table, max_rows: int, folder: Path) -> list[dict]:
    """Cut the registry into bands of at most ``max_rows`` rows; write each band's rows."""
    folder.mkdir(parents=True, exist_ok=True)
    years = birth_year(registry["birth_date"])
    order = pc.array_sort_indices(years)  # stable, unreadable years last
    ordered, ordered_years = registry.take(order), years.take(order)
    known = len(years) - years.null_count
    bounds = [(start, min(start + max_rows, known)) for start in range(0, known, max_rows)]
    bounds += [
        (start, min(start + max_rows, len(ordered)))
        for start in range(known, len(ordered), max_rows)
    ]
    specs = []
    for index, (start, stop) in enumerate(bounds):
        band_years = ordered_years.slice(start, stop - start)
        path = folder / f"registry-{index:04d}.parquet"
        pq.write_table(ordered.slice(start, stop - start), path)
        specs.append(
            {
                "index": index,
                "registry": str(path),
                "rows": stop - start,
                # None: no readable year in this band, match against the whole population.
                "year_min": None if start >= known else pc.min(band_years).as_py(),
                "year_max": None if start >= known else pc.max(band_years).as_py(),
            }
        )
    return specs


def write_specs(specs: list[dict], folder: Path) -> list[str]:
    paths = []
    for spec in specs:
        path = folder / f"partition-{spec['index']:04d}.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        paths.append(str(path))
    return paths


def read_band(spec: dict, population_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The band's registry rows and the population slice they can link to (needed columns only)."""
    registry = pd.read_parquet(spec["registry"], columns=list(REGISTRY_REQUIRED))
    columns = list(POPULATION_REQUIRED)
    if spec["year_min"] is None:
        return registry, pd.read_parquet(population_path, columns=columns)
    ids = registry["national_id"].dropna().unique().tolist()
    year = ds.field(BIRTH_YEAR)
    wanted = (year >= spec["year_min"] - YEAR_MARGIN) & (year <= spec["year_max"] + YEAR_MARGIN)
    wanted = wanted | year.is_null()  # persons without a readable year may be anyone's match
    if ids:
        wanted = wanted | ds.field("personal_id").isin(ids) | ds.field("old_id_number").isin(ids)
    table = pq.read_table(population_path, columns=columns, filters=wanted)
    return registry, table.to_pandas()
