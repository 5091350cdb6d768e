"""Candidate pairs from blocking passes declared as data, with capped block sizes.

No pass uses the province, so candidates cross provinces (migrants register where they work);
no pass uses the family name alone (the top 14 surnames cover 90 % of people).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from matching.arrays import argsort_keys, sorted_distinct
from matching.normalize import FULL, MONTH, YEAR
from matching.tables import Table

if TYPE_CHECKING:
    from matching.population import Population

# pass name -> key columns; each pass survives errors the others do not (see PASS_SURVIVES)
PASSES: dict[str, tuple[str, ...]] = {
    "name_year": ("given", "family", "year"),
    "tokens_year": ("tokens", "year"),
    "name_month_day": ("given", "family", "month", "day"),
    "given_middle_year": ("given", "middle", "year"),
    "date_given": ("date", "given"),
    "date_family_initial": ("date", "family", "given_initial"),
    "date_family_final": ("date", "family", "given_final"),
    "id_prefix_given": ("id_prefix", "given"),
    "id_suffix": ("id_suffix",),
}
# The widest birth-year difference between a registry row and its person that candidate search
# must survive: the name_month_day pass finds a birth year off by one (the birth-date level
# ``year_off``). The night matches a band of birth years [lo, hi] against the persons born in
# [lo - BIRTH_YEAR_MARGIN, hi + BIRTH_YEAR_MARGIN] only (pipelines.partition), so a pass meant to
# survive a wider difference needs this margin widened with it.
BIRTH_YEAR_MARGIN = 1
PASS_SURVIVES = {
    "name_year": "ID errors, diacritics, middle name, partial or day/month-swapped date, gender",
    "tokens_year": "swapped name order, partial date",
    "name_month_day": "birth year off (with a middle-name error)",
    "given_middle_year": "family-name typo with a partial birth date",
    "date_given": "family-name typo, name order within the middle",
    "date_family_initial": "given-name typo after its first letter",
    "date_family_final": "given-name typo in its first letter",
    "id_prefix_given": "name typo in the family name with a mistyped ID tail",
    "id_suffix": "mistyped ID head, any name and date error",
}


def key_column(table: Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One blocking key column as int64 values and the mask of rows that have it."""
    names, dates, ids = table.names, table.dates, table.ids
    if name in ("given", "family"):
        values = getattr(names, name).astype(np.int64)
        return values, values >= 0
    if name == "tokens":
        return names.tokens.view(np.int64), names.n_syllables > 0
    if name == "middle":
        return names.middle.view(np.int64), names.n_syllables >= 3
    if name in ("given_initial", "given_final"):
        vocab = names.syllable_vocab
        at = 0 if name == "given_initial" else -1
        letters = np.array([ord(s[at]) if s else 0 for s in vocab] or [0], np.int64)
        values = np.where(names.given >= 0, letters[np.maximum(names.given, 0)], 0)
        return values, values > 0
    if name == "year":
        return dates.year.astype(np.int64), dates.precision >= YEAR
    if name == "month":
        return dates.month.astype(np.int64), dates.precision >= MONTH
    if name == "day":
        return dates.day.astype(np.int64), dates.precision == FULL
    if name == "date":
        values = (dates.year.astype(np.int64) * 100 + dates.month) * 100 + dates.day
        return values, dates.precision == FULL
    if name == "id_prefix":
        return ids.number // 10**6, ids.twelve_digits
    if name == "id_suffix":
        return ids.number % 10**6, ids.twelve_digits
    raise KeyError(f"unknown blocking key {name!r}")


def pass_key(table: Table, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The combined key of a pass (a 64-bit mix of its columns) and the rows that have it."""
    key = np.zeros(len(table), np.uint64)
    valid = np.ones(len(table), bool)
    with np.errstate(over="ignore"):
        for column in columns:
            values, has = key_column(table, column)
            key = (key ^ (values.view(np.uint64) + np.uint64(0x9E3779B97F4A7C15))) * np.uint64(
                0xBF58476D1CE4E5B9
            )
            key ^= key >> np.uint64(31)
            valid &= has
    return key, valid


@dataclass
class PassOutcome:
    name: str
    pairs: int
    registry_rows: int
    rows_cut: int  # registry rows whose block exceeded max_block_size
    pairs_cut: int  # pairs those blocks (and the max_pairs_per_pass cut) would have produced
    largest_block: int

    def as_dict(self) -> dict:
        return {k: int(v) if k != "name" else v for k, v in self.__dict__.items()}


def _expand(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated ranges start..start+size for every (start, size)."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(sizes)
    offsets = np.repeat(starts - (ends - sizes), sizes)
    return np.arange(total, dtype=np.int64) + offsets


def sorted_pass(table: Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A pass's keys of the rows that have one, sorted, and those rows. The order of rows within
    a block does not matter (a pass yields the set of its pairs): no stable sort is needed."""
    key, valid = pass_key(table, PASSES[name])
    index = np.flatnonzero(valid)
    order = index[argsort_keys(key[index])]
    return key[order], order


def block_pass(
    name: str,
    registry: Table,
    rows: np.ndarray,
    population_pass: tuple[np.ndarray, np.ndarray],
    max_block_size: int,
    max_pairs: int,
) -> tuple[np.ndarray, np.ndarray, PassOutcome]:
    """Pairs (registry row, population row) whose keys of one pass agree, blocks capped;
    ``population_pass``: the population's :func:`sorted_pass`."""
    sorted_keys, order = population_pass
    key, valid = pass_key(registry, PASSES[name])
    rows = rows[valid[rows]]
    lo = np.searchsorted(sorted_keys, key[rows], side="left")
    hi = np.searchsorted(sorted_keys, key[rows], side="right")
    sizes = hi - lo
    oversized = sizes > max_block_size
    pairs_cut = int(sizes[oversized].sum())
    rows_cut = int((oversized & (sizes > 0)).sum())
    sizes = np.where(oversized, 0, sizes)
    if sizes.sum() > max_pairs:
        # cut the largest blocks first until the pass fits
        by_size = np.argsort(-sizes, kind="stable")
        running = np.cumsum(sizes[by_size][::-1])[::-1]
        drop = by_size[running > max_pairs]
        pairs_cut += int(sizes[drop].sum())
        rows_cut += int((sizes[drop] > 0).sum())
        sizes[drop] = 0
    registry_rows = np.repeat(rows, sizes)
    population_rows = order[_expand(lo, sizes)]
    outcome = PassOutcome(name, len(registry_rows), len(rows), rows_cut, pairs_cut,
                          int(sizes.max()) if len(sizes) else 0)
    return registry_rows, population_rows, outcome


def candidate_pairs(
    registry: Table,
    rows: np.ndarray,
    population: Population,
    passes: tuple[str, ...],
    max_block_size: int,
    max_pairs: int,
) -> tuple[np.ndarray, np.ndarray, list[PassOutcome]]:
    """Distinct candidate pairs of the given registry rows over all passes."""
    found_r, found_p, outcomes = [], [], []
    for name in passes:
        r, p, outcome = block_pass(name, registry, rows, population.blocking_pass(name),
                                   max_block_size, max_pairs)
        found_r.append(r)
        found_p.append(p)
        outcomes.append(outcome)
    r = np.concatenate(found_r) if found_r else np.zeros(0, np.int64)
    p = np.concatenate(found_p) if found_p else np.zeros(0, np.int64)
    n = len(population)
    pair = sorted_distinct(r.astype(np.int64) * n + p)
    return pair // n, pair % n, outcomes
