"""A population normalized once and linked to many registries: the bands of one birth-year
cohort share its normalization and its blocking passes' sorted keys, and each band takes the
rows it may link to without normalizing or sorting them again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from matching.arrays import argsort_keys, factorize
from matching.blocking import sorted_pass
from matching.normalize import FULL, NO_GENDER, mix64
from matching.tables import Table, prepare_population, text_array

# the population's columns that results quote (suggested corrections), as text
QUOTED = ("personal_id", "full_name", "birth_date", "gender")


class Population:
    """The population side of :func:`matching.link`: its normalized table, and what every
    registry linked to it reuses, computed once on first use: the text of the columns results
    quote, per blocking pass its keys sorted, its personal IDs sorted, its folded names coded.
    A population taken from another (:meth:`take`) derives these from it without sorting or
    hashing again."""

    def __init__(self, table: Table, text: dict[str, pa.Array] | None = None,
                 parent: tuple[Population, np.ndarray, np.ndarray] | None = None):
        self.table = table
        self._text = text
        # (population taken from, our rows in it, each of its rows' position here or -1)
        self._parent = parent
        self._passes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._ids: tuple[np.ndarray, np.ndarray] | None = None
        self._old_ids: tuple[np.ndarray, np.ndarray] | None = None
        self._names: np.ndarray | None = None
        self._combinations: np.ndarray | None = None

    @classmethod
    def of(cls, population: pd.DataFrame) -> Population:
        """Check and normalize a population table (contracts.POPULATION_REQUIRED)."""
        table = prepare_population(population)
        return cls(table, {name: text_array(population[name]) for name in QUOTED})

    def __len__(self) -> int:
        return len(self.table)

    def take(self, rows: np.ndarray) -> Population:
        """The persons at ``rows`` (ascending), in this population's order."""
        rows = np.asarray(rows, np.int64)
        if len(rows) > 1 and not (np.diff(rows) > 0).all():
            raise ValueError("Population.take needs distinct rows in ascending order")
        # int32: gathers through it stay in cache longer (a population is far below 2**31)
        position = np.full(len(self), -1, np.int32)
        position[rows] = np.arange(len(rows), dtype=np.int32)
        return Population(self.table.take(rows), parent=(self, rows, position))

    def text_at(self, column: str, rows: pa.Array) -> pa.Array:
        """The text of a quoted column at ``rows`` (null where ``rows`` is null)."""
        if self._parent is None:
            return self._text[column].take(rows)
        parent, ours, _ = self._parent
        return parent.text_at(column, pa.array(ours).take(rows))

    def blocking_pass(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The pass's keys of the rows that have one, sorted, and those rows. Kept by a
        population others are taken from; derived anew for a taken one (a link reads each pass
        once: keeping them would double the memory of the cohort's population)."""
        if self._parent is not None:  # the parent's sorted rows that are ours keep their order
            parent, _, position = self._parent
            keys, order = parent.blocking_pass(name)
            here = position[order]
            ours = here >= 0
            return keys[ours], here[ours]
        if name not in self._passes:
            keys, order = sorted_pass(self.table, name)
            self._passes[name] = keys, order.astype(np.int32)
        return self._passes[name]

    def person_of(self, personal_ids: np.ndarray) -> np.ndarray:
        """The row of the person holding each 12-digit personal ID number, -1 for none (the
        population's personal IDs are unique: ``prepare_population`` checks it)."""
        if self._parent is not None:
            parent, _, position = self._parent
            found = parent.person_of(personal_ids)
            return np.where(found >= 0, position[np.maximum(found, 0)], -1)
        if self._ids is None:
            order = np.argsort(self.table.ids.number, kind="stable")
            self._ids = self.table.ids.number[order], order
        numbers, order = self._ids
        if not len(numbers):
            return np.full(len(personal_ids), -1, np.int64)
        at = np.minimum(np.searchsorted(numbers, personal_ids), len(numbers) - 1)
        return np.where(numbers[at] == personal_ids, order[at], -1)

    def old_id_holder(self, numbers: np.ndarray) -> np.ndarray:
        """The row of the one person of this population holding each old 9-digit ID number,
        -1 where nobody or several persons hold it (an old number was not unique)."""
        keys, rows = self._old_id_holders()
        if not len(keys):
            return np.full(len(numbers), -1, np.int64)
        repeated = np.zeros(len(keys), bool)
        repeated[1:] = keys[1:] == keys[:-1]
        repeated[:-1] |= repeated[1:]
        keys, rows = keys[~repeated], rows[~repeated]
        if not len(keys):
            return np.full(len(numbers), -1, np.int64)
        at = np.minimum(np.searchsorted(keys, numbers), len(keys) - 1)
        return np.where(keys[at] == numbers, rows[at], -1).astype(np.int64)

    def _old_id_holders(self) -> tuple[np.ndarray, np.ndarray]:
        """The old ID numbers held, sorted, and their holders' rows; a taken population keeps
        the order of the one it was taken from (no sort again)."""
        if self._parent is not None:
            parent, _, position = self._parent
            keys, rows = parent._old_id_holders()
            here = position[rows]
            ours = here >= 0
            return keys[ours], here[ours].astype(np.int64)
        if self._old_ids is None:
            old_id = self.table.old_id
            holders = np.flatnonzero(old_id >= 0)
            order = holders[argsort_keys(old_id[holders])]
            self._old_ids = old_id[order], order
        return self._old_ids

    def name_frequencies(self) -> np.ndarray:
        """Per row, the share of this population's persons with its folded full name."""
        codes = self._codes(Population._name_codes)
        if not len(codes):
            return np.zeros(0)
        return np.bincount(codes)[codes] / len(codes)

    def namesakes(self) -> np.ndarray:
        """Per row, how many of this population's persons share its name (any order of its
        syllables, diacritics folded), full birth date and gender: 0 when one is missing. A
        pair agreeing on all three is found by chance in ``namesakes / len`` of random pairs,
        whatever the size of the population (the independent fields' product is not)."""
        codes = self._codes(Population._combination_codes)
        if not len(codes):
            return np.zeros(0, np.int64)
        counts = np.bincount(np.maximum(codes, 0))
        return np.where(codes >= 0, counts[np.maximum(codes, 0)], 0)

    def _codes(self, coded) -> np.ndarray:
        """Per row, a code that the population taken from computed once (``coded``: a method
        of the root population), so a taken one counts by bincount, never hashing again."""
        if self._parent is None:
            return coded(self)
        parent, ours, _ = self._parent
        return parent._codes(coded)[ours]

    def _combination_codes(self) -> np.ndarray:
        if self._combinations is None:
            names, dates = self.table.names, self.table.dates
            gender = self.table.genders.code
            known = (~names.empty) & (dates.precision == FULL) & (gender != NO_GENDER)
            with np.errstate(over="ignore"):
                day = ((dates.year.astype(np.uint64) * np.uint64(16) + dates.month.astype(
                    np.uint64)) * np.uint64(32) + dates.day.astype(np.uint64)) * np.uint64(
                    4) + gender.astype(np.uint64)
                key = names.tokens ^ mix64(day + np.uint64(0x9E3779B97F4A7C15))
            codes, _ = factorize(key)
            self._combinations = np.where(known, codes, -1)
        return self._combinations

    def _name_codes(self) -> np.ndarray:
        if self._names is None:
            self._names, _ = factorize(self.table.names.folded)
        return self._names
