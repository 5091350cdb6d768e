"""Comparison levels of registry/population pairs, one rule at a time."""

import unicodedata

import numpy as np
import pytest

from matching.compare import compare, comparisons, gender_year_digits, one_edit_apart
from matching.settings import Settings
from matching.tables import prepare

PERSON = {"personal_id": "079090001234", "full_name": "Nguyễn Thị Thủy",
          "birth_date": "1990-04-15", "gender": "F", "old_id_number": "023456789"}


@pytest.fixture
def level_of(make_registry, make_population):
    return lambda *args: _level_of(make_registry, make_population, *args)


def _level_of(registry_table, population_table, field: str, registry_row: dict,
              person: dict | None = None) -> str:
    """The level of ``field`` for one registry row against one person."""
    base = {"full_name": PERSON["full_name"], "birth_date": PERSON["birth_date"],
            "gender": PERSON["gender"], "national_id": PERSON["personal_id"]}
    registry = registry_table([{**base, **registry_row}])
    population = population_table([{**PERSON, **(person or {})}])
    reg, pop = prepare(registry, population)
    settings = Settings()
    codes = compare(reg, pop, np.array([0]), np.array([0]), settings)
    return comparisons(settings)[field].level_names[codes[field][0]]


@pytest.mark.parametrize(
    ("written", "level"),
    [
        ("Nguyễn Thị Thủy", "exact"),
        ("NGUYỄN THỊ THUỶ", "exact"),  # upper case, old tone style
        (unicodedata.normalize("NFD", "Nguyễn Thị Thủy"), "exact"),
        ("Nguyen Thi Thuy", "folded"),  # without diacritics: must be corrected
        ("Thủy Nguyễn Thị", "reordered"),
        ("Nguyễn Thủy", "family_given"),  # dropped middle name
        ("Nguyễn Thị Thùy", "folded"),  # wrong tone on the given name
        ("Ngyuễn Thị Thủy", "jaro_winkler>=0.94"),  # typo in the family name
        ("Nguyễn Thị Thanh", "jaro_winkler>=0.88"),  # another person: the given name tells
        ("Trần Văn Nam", "different"),
        ("", "missing"),
    ],
)
def test_full_name_levels(written, level, level_of):
    assert level_of("full_name", {"full_name": written}) == level


@pytest.mark.parametrize(
    ("written", "level"),
    [("Nguyễn Thị Thuỷ", "exact"), ("Nguyễn Thị Thuy", "folded"), ("Nguyễn Thị Thủi", "one_edit"),
     ("Nguyễn Thị Thủyy", "one_edit"), ("Nguyễn Thị Lan", "different")],
)
def test_given_name_levels(written, level, level_of):
    assert level_of("given_name", {"full_name": written}) == level


@pytest.mark.parametrize(
    ("written", "level"),
    [
        ("1990-04-15", "exact"),
        ("1990-15-04", "partial_compatible"),  # no date, but its year is usable
        ("15/04/1990", "missing"),  # not a date in the contract's format: unparsable
        ("1990-04", "partial_compatible"),
        ("1990", "partial_compatible"),
        ("1991-04-15", "year_off"),
        ("1989", "year_off"),
        ("1990-05", "different"),
        ("1990-03-15", "different"),
        ("", "missing"),
    ],
)
def test_birth_date_levels(written, level, level_of):
    assert level_of("birth_date", {"birth_date": written}) == level


def test_day_and_month_swapped(level_of):
    person = {"birth_date": "1990-04-11"}
    assert level_of("birth_date", {"birth_date": "1990-11-04"}, person) == "day_month_swapped"
    # 1990-04-04 swapped is itself: exact, never "swapped"
    same = {"birth_date": "1990-04-04"}
    assert level_of("birth_date", {"birth_date": "1990-04-04"}, same) == "exact"


@pytest.mark.parametrize(
    ("written", "level"),
    [
        ("079090001234", "exact"),
        ("023456789", "old_exact"),
        ("023456780", "old_different"),
        ("079090001233", "one_edit"),  # one mistyped digit
        ("079090002134", "one_edit"),  # two adjacent digits transposed
        ("079190555555", "gender_year_consistent"),  # female born 1990: digits 4-6 = 190
        ("079090555555", "different"),  # gender digit says male
        (None, "missing"),
        ("07909000123A", "missing"),  # letters: not comparable
    ],
)
def test_national_id_levels(written, level, level_of):
    person = {"personal_id": "079190001234"}  # female born 1990 (G=1, YY=90)
    if written == "079090001234":
        written = person["personal_id"]
    elif written in ("079090001233", "079090002134"):
        written = "0791" + written[4:]
    assert level_of("national_id", {"national_id": written}, person) == level


def test_gender_and_province_levels(level_of):
    assert level_of("gender", {"gender": "F"}) == "agree"
    assert level_of("gender", {"gender": "M"}) == "different"
    assert level_of("gender", {"gender": "?"}) == "missing"
    assert level_of("province", {"province_code": "79"}) == "same"
    assert level_of("province", {"province_code": "74"}) == "different"


def test_one_edit_apart_is_one_substitution_or_one_adjacent_transposition():
    a = np.array([79090001234, 79090001234, 79090001234, 79090001234], np.int64)
    b = np.array([79090001235, 79090002134, 79090002143, 79090001234], np.int64)
    assert list(one_edit_apart(a, b)) == [True, True, False, False]


def test_gender_year_digits_follow_the_personal_id_rule():
    assert list(gender_year_digits(np.array([1, 2, 1, 2]), np.array([1990, 1990, 2005, 2005]))) \
        == [90, 190, 205, 305]


def test_comparisons_are_declared_as_ordered_levels_with_priors_and_sets():
    declared = comparisons(Settings(full_name_bands=(0.9,)))
    for comparison in declared.values():
        assert comparison.level_names[-1] == "missing"
        assert len(set(comparison.level_names)) == len(comparison.level_names)
        prior = comparison.m_prior()
        assert prior[-1] == 0 and (prior[:-1] > 0).all() and abs(prior.sum() - 1) < 1e-12
    assert "jaro_winkler>=0.9" in declared["full_name"].level_names  # bands from the settings
    # what the results call "agrees": one level per compared field
    for field, level in {"full_name": "exact", "birth_date": "exact", "gender": "agree",
                         "national_id": "exact"}.items():
        codes = declared[field].codes_in("equal")
        assert [declared[field].level_names[i] for i in codes] == [level]
    full, given, name = declared["full_name"], declared["given_name"], declared["name"]
    assert len(name.levels) == (len(full.levels) - 1) * (len(given.levels) - 1) + 1
    assert [c.name for c in declared.values() if c.scored] == [
        "name", "birth_date", "gender", "national_id", "province"]
