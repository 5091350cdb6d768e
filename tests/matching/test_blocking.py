"""Blocking passes: they survive single errors, cross provinces, and their caps cut and report."""

import numpy as np
import pytest

from matching.arrays import argsort_keys
from matching.blocking import PASSES, block_pass, candidate_pairs
from matching.population import Population
from matching.settings import DEFAULT_PASSES
from matching.tables import prepare_registry

PERSON = {"personal_id": "079190001234", "full_name": "Nguyễn Thị Thủy",
          "birth_date": "1990-04-15", "gender": "F", "province_code": "79"}


def found(make_registry, make_population, registry_row: dict, passes=DEFAULT_PASSES) -> bool:
    """Does candidate search propose PERSON for this registry row?"""
    others = [{"personal_id": f"0011900{i:05d}", "full_name": f"Trần Văn Nam{i}",
               "birth_date": "1980-01-01", "gender": "M"} for i in range(20)]
    population = make_population([PERSON, *others])
    base = {"full_name": PERSON["full_name"], "birth_date": PERSON["birth_date"],
            "gender": "F", "national_id": None, "province_code": "74"}
    registry = make_registry([{**base, **registry_row}])
    pop = Population.of(population)
    reg = prepare_registry(registry, pop.table)
    r, p, _ = candidate_pairs(reg, np.array([0]), pop, passes, 300, 10_000)
    return 0 in p[r == 0]


@pytest.mark.parametrize(
    "error",
    [
        {},  # registered in another province (74) than the person lives in (79)
        {"full_name": "Nguyen Thi Thuy"},
        {"full_name": "Nguyễn Thị Thủi"},  # typo at the end of the given name
        {"full_name": "Nguyễn Thị Khủy"},  # typo at the start of the given name
        {"full_name": "Ngyễn Thị Thủy"},  # typo in the family name
        {"full_name": "Nguyễn Thủy"},  # dropped middle name
        {"full_name": "Thủy Nguyễn Thị"},  # swapped order
        {"birth_date": "1990"},
        {"birth_date": "1990-04"},
        {"birth_date": "1991-04-15"},  # year off by one
        {"birth_date": "1990-15-04"},  # day/month swapped into an impossible date
        {"gender": "M"},
        {"national_id": "079190002134"},  # transposed ID digits
        {"national_id": "179190001234", "full_name": "Nguyễn Thị Thuy"},  # typo in the ID head
        {"full_name": "Ngyễn Thị Thủy", "birth_date": "1990"},  # family typo + partial date
        {"full_name": "Nguyễn Thủy", "birth_date": "1991-04-15"},  # dropped middle + year off
    ],
)
def test_candidate_search_survives_single_errors_and_crosses_provinces(
        make_registry, make_population, error):
    assert found(make_registry, make_population, error)


def test_no_pass_blocks_on_province_or_on_the_family_name_alone():
    for columns in PASSES.values():
        assert "province" not in columns
        assert set(columns) != {"family"}


def test_block_size_cap_cuts_and_reports(make_registry, make_population):
    # 30 people called Nguyễn Văn An born in 1990: one name_year block of 30
    people = [{"personal_id": f"0010900{i:05d}", "full_name": "Nguyễn Văn An",
               "birth_date": f"1990-01-{i % 28 + 1:02d}", "gender": "M"} for i in range(30)]
    registry = make_registry([{"full_name": "Nguyễn Văn An", "birth_date": "1990",
                               "gender": "M", "national_id": None}])
    pop = Population.of(make_population(people))
    reg = prepare_registry(registry, pop.table)
    block = pop.blocking_pass("name_year")
    rows = np.array([0])
    r, p, outcome = block_pass("name_year", reg, rows, block, 300, 10_000)
    assert len(p) == 30 and outcome.rows_cut == 0 and outcome.largest_block == 30
    r, p, outcome = block_pass("name_year", reg, rows, block, 10, 10_000)
    assert len(p) == 0 and outcome.rows_cut == 1 and outcome.pairs_cut == 30
    r, p, outcome = block_pass("name_year", reg, rows, block, 300, 20)
    assert len(p) == 0 and outcome.pairs_cut == 30


def test_default_settings_run_every_declared_pass():
    from matching.settings import Settings

    assert Settings().blocking_passes == DEFAULT_PASSES == tuple(PASSES)


def test_candidate_search_survives_the_declared_birth_year_margin(make_registry, make_population):
    """The night matches a band against persons born within BIRTH_YEAR_MARGIN years of it: the
    search must find a person whose year is off by that much, and the birth-date comparison
    must still see the pair as close (year_off), not as different."""
    from matching.blocking import BIRTH_YEAR_MARGIN
    from matching.compare import compare, comparisons
    from matching.settings import Settings
    from matching.tables import prepare

    year = 1990 + BIRTH_YEAR_MARGIN
    written = {"full_name": "Nguyễn Thủy", "birth_date": f"{year}-04-15"}
    assert found(make_registry, make_population, written)
    registry = make_registry([{**written, "gender": "F"}])
    reg, pop = prepare(registry, make_population([PERSON]))
    codes = compare(reg, pop, np.array([0]), np.array([0]), Settings())
    assert comparisons(Settings())["birth_date"].level_names[codes["birth_date"][0]] == "year_off"


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 70_000])
def test_argsort_keys_sorts_keys_that_differ_only_below_the_packed_row_bits(n):
    """The fast key sort packs the row into the low bits: keys differing only there, placed in
    descending order, must still come out sorted, and every row exactly once."""
    rng = np.random.default_rng(n)
    high = rng.integers(0, 50, n, dtype=np.uint64) << np.uint64(40)
    low = np.arange(n, dtype=np.uint64)[::-1] % np.uint64(7)  # descending within the block
    keys = high | low
    order = argsort_keys(keys)
    assert np.array_equal(np.sort(order), np.arange(n))
    assert (np.diff(keys[order].astype(np.float64)) >= 0).all()
    assert np.array_equal(keys[order], np.sort(keys))
