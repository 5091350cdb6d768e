"""Synchronization by age band and gender, per scheme x line x province: each partition of the
results counted apart (``count_groups``), the small counts added up (``merge_groups``), so memory
stays bounded by a partition. Age and gender are the registry's (its birth year, else its ID's
year), what VSS itself holds about the participant."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines import metrics
from pipelines.context import RunContext
from pipelines.partition import BIRTH_YEAR
from pipelines.steps import LINE_FLAGS, step
from popsync.contracts import AGE_BANDS, BREAKDOWN_COLUMNS, GENDERS, LINES, STATUSES, UNKNOWN

DIMENSIONS = {"age_band": (*AGE_BANDS, UNKNOWN), "gender": (*GENDERS, UNKNOWN)}


def age_band_numbers(birth_year: np.ndarray, run_year: int) -> np.ndarray:
    """Each birth year's position in AGE_BANDS by the age reached in ``run_year``; the position
    of ``unknown`` for a missing (NaN) or future year."""
    age = run_year - np.asarray(birth_year, dtype="float64")
    uppers = [upper for upper in AGE_BANDS.values() if upper is not None]
    band = np.searchsorted(np.array(uppers, dtype="float64"), age, side="left")
    return np.where(np.isnan(age) | (age < 0), len(AGE_BANDS), band).astype(np.int64)


def _gender_numbers(gender: pd.Series) -> np.ndarray:
    codes = pd.Categorical(gender, categories=list(GENDERS)).codes.astype(np.int64)
    return np.where(codes < 0, len(GENDERS), codes)


def group_counts(results: pd.DataFrame, schemes: tuple[str, ...], run_year: int) -> pd.DataFrame:
    """Rows per scheme x line x province x dimension value x status, one row per scheme x line x
    province x dimension x value (one ``bincount`` each): counts of partitions add up."""
    status = metrics._status_numbers(results)
    values = {
        "age_band": age_band_numbers(results[BIRTH_YEAR].to_numpy(dtype="float64",
                                                                  na_value=np.nan), run_year),
        "gender": _gender_numbers(results["gender"]),
    }
    blocks = []
    for scheme in schemes:
        unit, units = metrics._grouping(results, scheme)
        for line in LINES:
            counted = metrics.line_mask(results, line).to_numpy() & (unit >= 0) & (status >= 0)
            for dimension, names in DIMENSIONS.items():
                cells = (unit[counted] * len(names) + values[dimension][counted]) * len(
                    STATUSES) + status[counted]
                table = np.bincount(cells, minlength=len(units) * len(names) * len(STATUSES))
                counts = pd.DataFrame(table.reshape(-1, len(STATUSES)), columns=list(STATUSES))
                counts.insert(0, "value", np.tile(np.array(names, dtype=object), len(units)))
                counts.insert(0, "dimension", dimension)
                counts.insert(0, "province_code", np.repeat(units.astype(object), len(names)))
                counts.insert(0, "line", line)
                counts.insert(0, "scheme", scheme)
                blocks.append(counts)
    return pd.concat(blocks, ignore_index=True)


def breakdowns_from_counts(counts: pd.DataFrame, run_date: str) -> pd.DataFrame:
    """The partitions' ``group_counts`` added up, with participants and sync_rate; groups with
    no participant are left out."""
    keys = ["scheme", "line", "province_code", "dimension", "value"]
    merged = counts.groupby(keys, as_index=False, sort=False)[list(STATUSES)].sum()
    merged["participants"] = merged[list(STATUSES)].sum(axis=1)
    merged = merged[merged["participants"] > 0].copy()
    merged["sync_rate"] = merged[STATUSES[0]] / merged["participants"]
    merged["run_date"] = run_date
    merged = merged[list(BREAKDOWN_COLUMNS)].sort_values(keys, kind="stable")
    return merged.reset_index(drop=True)


@step("count_groups")
def count_groups(work_dir: str, *, piece: str) -> str:
    """One partition's status counts by age band and gender (``piece``: its results file)."""
    ctx = RunContext.load(work_dir)
    columns = ["vss_code", "status", "office_code", "gender", BIRTH_YEAR, *LINE_FLAGS]
    results = pq.read_table(piece, columns=columns).to_pandas()
    counts = group_counts(results, ctx.config.province_schemes,
                          date.fromisoformat(ctx.run_date).year)
    out = ctx.path("counts") / f"{Path(piece).stem}-groups.parquet"
    counts.to_parquet(out, index=False)
    return str(out)


@step("breakdowns")
def merge_groups(work_dir: str, count_groups: list[str]) -> str:
    """The partitions' group counts added up into ``breakdowns.parquet``; returns its path."""
    ctx = RunContext.load(work_dir)
    counts = pd.concat([pd.read_parquet(p) for p in sorted(count_groups)], ignore_index=True)
    out = ctx.path("breakdowns.parquet")
    breakdowns_from_counts(counts, ctx.run_date).to_parquet(out, index=False)
    return str(out)
