"""A population normalized once and taken from for each band links exactly as that band's own
population table would."""

import numpy as np
import pandas as pd

import matching
from popsync.synthetic import generate_nation


def test_a_taken_population_links_as_its_own_table_would():
    nation = generate_nation(3000, seed=5)
    registry, population = nation.registry, nation.population
    cohort = matching.Population.of(population)
    # drop every seventh person, as a band leaves out the persons other bands quote
    rows = np.flatnonzero(np.arange(len(population)) % 7 != 3)
    for part in (registry.iloc[:1200], registry.iloc[1200:]):  # two bands, one cohort
        part = part.reset_index(drop=True)
        taken = matching.link(part, cohort.take(rows)).results
        own = matching.link(part, population.iloc[rows].reset_index(drop=True)).results
        assert (taken["status"] == "synchronized").sum() > len(part) // 2
        pd.testing.assert_frame_equal(taken, own)
