"""A population normalized once and linked to many registries: the bands of one birth-year
cohort share its normalization and its blocking passes' sorted keys, and each band takes the
rows it may link to without normalizing or sorting them again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from matching.blocking import sorted_pass
from matching.tables import Table, prepare_population, text_array

# the population's columns that results quote (suggested corrections), as text
QUOTED = ("personal_id", "full_name", "birth_date", "gender")


class Population:
    """The population side of :func:`matching.link`: its normalized table, the text of the
    columns results quote, and per blocking pass its keys sorted (computed once, on first use,
    and derived for every subset taken from it)."""

    def __init__(self, table: Table, text: dict[str, pa.Array],
                 parent: tuple[Population, np.ndarray] | None = None):
        self.table = table
        self.text = text
        self._parent = parent  # (population taken from, each of its rows' position here or -1)
        self._passes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

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
        position = np.full(len(self), -1, np.int64)
        position[rows] = np.arange(len(rows))
        index = pa.array(rows)
        return Population(self.table.take(rows),
                          {name: values.take(index) for name, values in self.text.items()},
                          (self, position))

    def blocking_pass(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The pass's keys of the rows that have one, sorted (stable), and those rows."""
        if name not in self._passes:
            if self._parent is None:
                self._passes[name] = sorted_pass(self.table, name)
            else:  # the parent's sorted rows that are ours keep their order: no sort
                parent, position = self._parent
                keys, order = parent.blocking_pass(name)
                here = position[order]
                ours = here >= 0
                self._passes[name] = keys[ours], here[ours]
        return self._passes[name]
