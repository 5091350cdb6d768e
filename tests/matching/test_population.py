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


def test_an_old_id_number_names_its_holder_only_where_one_person_holds_it():
    """Old 9-digit numbers were not unique: a number two persons hold names nobody, unless the
    band's population leaves one of them out, as that band's own table would decide."""
    nation = generate_nation(300, seed=6)
    population = nation.population.copy()
    population["old_id_number"] = None
    population.loc[[10, 20], "old_id_number"] = "023456789"  # held twice
    population.loc[30, "old_id_number"] = "034567890"
    cohort = matching.Population.of(population)
    numbers = np.array([23456789, 34567890, 45678901])
    assert cohort.old_id_holder(numbers).tolist() == [-1, 30, -1]
    rows = np.flatnonzero(np.arange(len(population)) != 20)  # the band leaves person 20 out
    assert cohort.take(rows).old_id_holder(numbers).tolist() == [10, 29, -1]
    own = matching.Population.of(population.iloc[rows].reset_index(drop=True))
    assert own.old_id_holder(numbers).tolist() == [10, 29, -1]
