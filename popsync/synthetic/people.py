"""Draw the people of the population: where they were born and live, age, names, identifiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from popsync.reference.provinces import PROVINCES_63
from popsync.synthetic import names
from popsync.synthetic.strings import digits, join_words, take

# The population extract's snapshot date: ages, deaths and ID issue all count back from it.
REFERENCE_DATE = np.datetime64("2025-07-01", "D")

PROVINCE_CODES = np.array([int(code) for code in PROVINCES_63], dtype=np.int64)
PROVINCE_REGIONS = np.array([p.region for p in PROVINCES_63.values()])
PROVINCE_POPULATION = np.array(
    [p.population_thousands for p in PROVINCES_63.values()], dtype=float
)
_PROVINCE_INDEX = {code: i for i, code in enumerate(PROVINCE_CODES)}

# Population by five-year age group 0-4 ... 95-99, millions (Vietnam, mid-2020s).
AGE_PYRAMID = np.array([
    7.3, 8.0, 8.3, 7.3, 6.9, 7.4, 8.2, 8.0, 7.5, 6.8,
    6.0, 5.3, 4.6, 3.6, 2.4, 1.4, 0.9, 0.6, 0.3, 0.1,
])

# Share of working-age residents born in another province; the industrial south and the two big
# cities draw migrants (about half of Bình Dương's population), elsewhere few.
MIGRANT_SHARE = {79: 0.50, 74: 0.80, 75: 0.45, 1: 0.30, 27: 0.45, 77: 0.25, 48: 0.20,
                 31: 0.15, 22: 0.15, 92: 0.10}
MIGRANT_SHARE_ELSEWHERE = 0.05
# Migrants mostly come from their own part of the country.
REGION_AFFINITY = {
    ("north", "north"): 3.0, ("north", "central"): 1.5, ("north", "south"): 0.3,
    ("central", "north"): 1.0, ("central", "central"): 3.0, ("central", "south"): 1.0,
    ("south", "north"): 0.5, ("south", "central"): 2.0, ("south", "south"): 3.0,
}
# Death probability by age band (the extract keeps deceased people, flagged), upper bounds.
DEATH_RATE_BY_AGE = ((40, 0.004), (60, 0.015), (80, 0.06), (200, 0.20))


@dataclass
class People:
    """Columnar people of one chunk; provinces are integer codes, dates datetime64[D]."""

    birth_province: np.ndarray
    residence: np.ndarray
    female: np.ndarray
    birth: np.ndarray
    age: np.ndarray
    family: pa.Array
    middle: pa.Array
    given: pa.Array
    full_name: pa.Array
    personal_id: np.ndarray
    old_id: np.ndarray  # "" for people who never had an old ID card
    is_deceased: np.ndarray
    death: np.ndarray

    def __len__(self) -> int:
        return len(self.female)

    @property
    def migrant(self) -> np.ndarray:
        return self.birth_province != self.residence


class IdAllocator:
    """Hands out unique personal IDs, old ID numbers and social-insurance codes across chunks.

    Each serial is an affine bijection of a per-prefix counter, so numbers look random, never
    repeat and depend only on the seed and the order of chunks.
    """

    _PERSONAL_MULTIPLIER, _OLD_MULTIPLIER, _VSS_MULTIPLIER = 386_437, 712_345_679, 48_271_593

    def __init__(self, seed: int) -> None:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1_000_003])))
        self._personal_next = np.zeros(100_000, dtype=np.int64)
        self._personal_offset = rng.integers(0, 10**6, size=100_000)
        self._old_next = np.zeros(1, dtype=np.int64)
        self._old_offset = rng.integers(0, 10**9, size=1)
        self._vss_next = np.zeros(100, dtype=np.int64)
        self._vss_offset = rng.integers(0, 10**8, size=100)

    @staticmethod
    def _serials(keys, next_counts, offsets, multiplier, modulus, what: str) -> np.ndarray:
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        positions = np.arange(len(keys))
        is_start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else []
        group_start = np.maximum.accumulate(np.where(is_start, positions, 0))
        rank = np.empty(len(keys), dtype=np.int64)
        rank[order] = positions - group_start
        counter = next_counts[keys] + rank
        next_counts += np.bincount(keys, minlength=len(next_counts))
        if len(keys) and next_counts.max() > modulus:
            raise OverflowError(f"more than {modulus} {what} share one prefix")
        return (multiplier * counter + offsets[keys]) % modulus

    def personal_ids(self, birth_province, female, birth_year) -> np.ndarray:
        """``0PP G YY RRRRRR``: province of birth, century-and-gender digit, year, serial."""
        gender_digit = 2 * ((birth_year // 100) - 19) + female.astype(np.int64)
        year_2d = birth_year % 100
        keys = birth_province * 1000 + gender_digit * 100 + year_2d
        serial = self._serials(keys, self._personal_next, self._personal_offset,
                               self._PERSONAL_MULTIPLIER, 10**6, "personal IDs")
        return digits(keys * 10**6 + serial, 12)

    def old_ids(self, count: int) -> np.ndarray:
        keys = np.zeros(count, dtype=np.int64)
        serial = self._serials(keys, self._old_next, self._old_offset,
                               self._OLD_MULTIPLIER, 10**9, "old ID numbers")
        return digits(serial, 9)

    def vss_codes(self, province: np.ndarray) -> np.ndarray:
        """10 digits: the registering province's code, then an 8-digit serial."""
        serial = self._serials(province, self._vss_next, self._vss_offset,
                               self._VSS_MULTIPLIER, 10**8, "social-insurance codes")
        return digits(province * 10**8 + serial, 10)


def draw(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution by inverse transform."""
    return np.minimum(np.searchsorted(cdf, uniform, side="right"), len(cdf) - 1)


def province_index(codes: np.ndarray) -> np.ndarray:
    lookup = np.zeros(100, dtype=np.int64)
    lookup[PROVINCE_CODES] = np.arange(len(PROVINCE_CODES))
    return lookup[codes]


def draw_people(rng: np.random.Generator, count: int, ids: IdAllocator) -> People:
    """Draw ``count`` people with Vietnam's province sizes, age pyramid, migration and names."""
    age_days = (
        draw(np.cumsum(AGE_PYRAMID / AGE_PYRAMID.sum()), rng.random(count)) * 5
        + 5 * rng.random(count)
    ) * 365.2425
    birth = REFERENCE_DATE - age_days.astype(np.int64)
    birth_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    age = (age_days // 365.2425).astype(np.int64)
    female = rng.random(count) < 0.502

    residence_index = draw(np.cumsum(PROVINCE_POPULATION / PROVINCE_POPULATION.sum()),
                           rng.random(count))
    residence = PROVINCE_CODES[residence_index]
    birth_province = _draw_birth_provinces(rng, residence_index, age)

    family, middle, given = _draw_names(rng, birth_province, female, birth_year)
    full_name = join_words(family, middle, given)

    personal_id = ids.personal_ids(birth_province, female, birth_year)
    old_id_share = np.where(birth_year <= 2000, 0.9, np.where(birth_year <= 2007, 0.6, 0.0))
    has_old_id = rng.random(count) < old_id_share
    old_id = np.full(count, "", dtype="U9")
    old_id[has_old_id] = ids.old_ids(int(has_old_id.sum()))

    death_rate = np.select([age < bound for bound, _ in DEATH_RATE_BY_AGE],
                           [rate for _, rate in DEATH_RATE_BY_AGE])
    is_deceased = rng.random(count) < death_rate
    # Deaths fall in the last five years before the snapshot, never before birth.
    since_death = (rng.random(count) * np.minimum(age_days, 5 * 365.2425)).astype(np.int64)
    death = REFERENCE_DATE - since_death
    return People(birth_province, residence, female, birth, age, family, middle, given, full_name,
                  personal_id, old_id, is_deceased, death)


def _draw_birth_provinces(rng, residence_index: np.ndarray, age: np.ndarray) -> np.ndarray:
    residence = PROVINCE_CODES[residence_index]
    share = np.full(len(PROVINCE_CODES), MIGRANT_SHARE_ELSEWHERE)
    for code, migrant_share in MIGRANT_SHARE.items():
        share[_PROVINCE_INDEX[code]] = migrant_share
    # Children and the old are born where they live more often than working-age adults.
    age_factor = np.where((age >= 18) & (age <= 50), 1.0, 0.5)
    is_migrant = rng.random(len(age)) < share[residence_index] * age_factor
    birth_province = residence.copy()
    uniform = rng.random(len(age))
    migrants = np.flatnonzero(is_migrant)
    for destination in range(len(PROVINCE_CODES)):  # loop over provinces, not people
        rows = migrants[residence_index[migrants] == destination]
        if not len(rows):
            continue
        affinity = np.array([REGION_AFFINITY[(PROVINCE_REGIONS[destination], region)]
                             for region in PROVINCE_REGIONS])
        weights = PROVINCE_POPULATION * affinity
        weights[destination] = 0.0
        birth_province[rows] = PROVINCE_CODES[draw(np.cumsum(weights / weights.sum()),
                                                   uniform[rows])]
    return birth_province


def _draw_names(rng, birth_province, female, birth_year) -> tuple[pa.Array, pa.Array, pa.Array]:
    count = len(female)
    young = birth_year >= 2000

    surnames, surname_cdf = names.table(names.SURNAMES)
    family_index = draw(surname_cdf, rng.random(count))
    region = PROVINCE_REGIONS[province_index(birth_province)]
    variant_draw = rng.random(count)
    for (northern, southern), shares in names.SOUTHERN_SPELLING.items():
        southern_share = np.select([region == r for r in shares], list(shares.values()))
        spelled_south = (family_index == surnames.index(northern)) & (variant_draw < southern_share)
        family_index[spelled_south] = surnames.index(southern)

    # One list per kind of part, "" first, so index 0 means "no such part".
    middle_list, middle_first, middle_second = _part_draws(
        rng, female, young, names.MIDDLE_MALE, names.MIDDLE_FEMALE,
        young_weights=names.MIDDLE_COMMON_WEIGHT_YOUNG,
    )
    given1_list, given1, _ = _part_draws(rng, female, young, names.GIVEN_MALE, names.GIVEN_FEMALE)
    given2_list, given2, _ = _part_draws(rng, female, young, names.GIVEN2_MALE,
                                         names.GIVEN2_FEMALE)

    has_given2 = rng.random(count) < np.where(young, *names.GIVEN2_SHARE[::-1])
    middle_count = draw(np.cumsum(names.MIDDLE_COUNT_SHARES), rng.random(count))
    middle_count = np.where(has_given2, np.minimum(middle_count, 1), middle_count)
    middle = join_words(take(middle_list, np.where(middle_count >= 1, middle_first, 0)),
                        take(middle_list, np.where(middle_count == 2, middle_second, 0)))
    given = pa.array(np.where(has_given2,
                              np.asarray(take(given2_list, given2)),
                              np.asarray(take(given1_list, given1))), pa.string())
    return take(surnames, family_index), middle, given


def _part_draws(rng, female, young, male_weights, female_weights, young_weights=None):
    """Draw a name part for each person from the table of their gender (and generation).

    Returns the combined list ("" first, then male, then female names), a first draw, and a
    second draw that never repeats the table's first (most common) entry.
    """
    combined = [""] + list(male_weights) + list(female_weights)
    first = np.zeros(len(female), dtype=np.int64)
    second = np.zeros(len(female), dtype=np.int64)
    uniform, uniform_second = rng.random(len(female)), rng.random(len(female))
    for is_female, weights, offset in ((False, male_weights, 1),
                                       (True, female_weights, 1 + len(male_weights))):
        for is_young in (False, True):
            group = (female == is_female) & (young == is_young)
            table = dict(weights)
            if is_young and young_weights:
                table.update({k: v for k, v in young_weights.items() if k in table})
            _, cdf = names.table(table)
            first[group] = offset + draw(cdf, uniform[group])
            _, cdf_rest = names.table(dict(list(table.items())[1:]))
            second[group] = offset + 1 + draw(cdf_rest, uniform_second[group])
    return combined, first, second
