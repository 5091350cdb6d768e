"""Check the input tables and turn them into normalized column arrays, once per run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.normalize import (
    ID_OLD,
    BirthDates,
    Genders,
    Identifiers,
    Names,
    clean_ids,
    normalize_names,
    parse_birth_dates,
    parse_genders,
    province_codes,
)
from popsync.contracts import POPULATION_REQUIRED, REGISTRY_REQUIRED
from popsync.errors import PopsyncError
from popsync.reference.identifiers import mask


class InputError(PopsyncError, ValueError):
    """An input table the engine cannot work on (missing column, duplicate keys)."""


@dataclass
class Table:
    """One input table as normalized arrays aligned with its rows."""

    names: Names
    dates: BirthDates
    genders: Genders
    ids: Identifiers
    province: np.ndarray  # int16 63-scheme code, -1 when missing/unknown
    province_unknown: np.ndarray  # bool: a code was given but is not a province
    old_id: np.ndarray  # int64 old 9-digit ID number, -1 when none
    deceased: np.ndarray  # bool (always False for the registry)

    def __len__(self) -> int:
        return len(self.province)

    def take(self, rows: np.ndarray) -> Table:
        """The same table for a subset of rows (vocabulary shared)."""
        return Table(self.names.take(rows), self.dates.take(rows), self.genders.take(rows),
                     self.ids.take(rows), self.province[rows], self.province_unknown[rows],
                     self.old_id[rows], self.deceased[rows])


def check_columns(table: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, not {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(f"{what} table is missing required column(s): {', '.join(missing)}")


def check_registry(registry: pd.DataFrame) -> None:
    check_columns(registry, REGISTRY_REQUIRED, "registry")
    codes = registry["vss_code"]
    if codes.isna().any():
        rows = np.flatnonzero(codes.isna().to_numpy())[:5]
        raise InputError(f"registry has empty vss_code in row(s) {', '.join(map(str, rows))}")
    if pc.count_distinct(text_array(codes)).as_py() == len(codes):
        return  # one Arrow hash pass; the slower pandas path only names the offenders
    duplicated = codes[codes.duplicated(keep=False)]
    if len(duplicated):
        shown = sorted(set(duplicated.astype(str)))[:10]
        raise InputError(
            f"registry has {duplicated.nunique()} duplicate vss_code(s), "
            f"e.g. {', '.join(shown)}: one row per social-insurance code is required"
        )


def check_population(population: pd.DataFrame, ids: Identifiers) -> None:
    check_columns(population, POPULATION_REQUIRED, "population")
    known = ids.number[ids.twelve_digits]
    if pd.Index(known).has_duplicates:
        repeated = np.unique(known[pd.Index(known).duplicated()])
        shown = [mask(f"{v:012d}") for v in repeated[:5]]
        raise InputError(
            f"population has {len(repeated)} duplicate personal_id(s), e.g. "
            f"{', '.join(shown)} (masked): one row per person is required"
        )
    if (~ids.twelve_digits).any():
        rows = np.flatnonzero(~ids.twelve_digits)[:5]
        raise InputError(
            f"population column personal_id is not a 12-digit number in "
            f"{(~ids.twelve_digits).sum()} row(s), e.g. rows {', '.join(map(str, rows))}"
        )


def text_array(column: pd.Series) -> pa.Array:
    """A column as an Arrow string array (numbers become text, missing values null)."""
    array = pa.array(column.astype("string"), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string())


def _table(frame: pd.DataFrame, names: Names, ids: Identifiers, old_id: np.ndarray,
           deceased: np.ndarray) -> Table:
    province, province_unknown = province_codes(text_array(frame["province_code"]))
    return Table(names, parse_birth_dates(text_array(frame["birth_date"])),
                 parse_genders(text_array(frame["gender"])), ids, province, province_unknown,
                 old_id, deceased)


def prepare_population(population: pd.DataFrame) -> Table:
    """Check the population table and normalize it."""
    check_columns(population, POPULATION_REQUIRED, "population")
    ids = clean_ids(text_array(population["personal_id"]))
    check_population(population, ids)
    old = clean_ids(text_array(population["old_id_number"]))
    return _table(population, normalize_names(text_array(population["full_name"])), ids,
                  np.where(old.kind == ID_OLD, old.number, -1),
                  population["is_deceased"].fillna(False).astype(bool).to_numpy())


def prepare_registry(registry: pd.DataFrame, population: Table) -> Table:
    """Check the registry table and normalize it, its names coded against the population's."""
    check_registry(registry)
    ids = clean_ids(text_array(registry["national_id"]))
    names = normalize_names(text_array(registry["full_name"]), against=population.names)
    return _table(registry, names, ids, np.where(ids.kind == ID_OLD, ids.number, -1),
                  np.zeros(len(registry), bool))


def prepare(registry: pd.DataFrame, population: pd.DataFrame) -> tuple[Table, Table]:
    """Check both tables and normalize them; names share one vocabulary across the two."""
    pop = prepare_population(population)
    return prepare_registry(registry, pop), pop
