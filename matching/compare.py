"""Per-field comparison levels of candidate pairs, declared as data, computed over pair arrays."""

from __future__ import annotations

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

from matching.arrays import factorize, first_rows
from matching.normalize import (
    FEMALE,
    FULL,
    ID_MISSING,
    ID_OLD,
    NO_DATE,
    NO_GENDER,
    YEAR,
    mix64,
)
from matching.settings import Settings
from matching.tables import Table

MISSING = "missing"  # the null level of every comparison: it weighs nothing


def comparison_levels(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The level names of every comparison, most to least similar, ``missing`` last."""
    full_bands = tuple(f"jaro_winkler>={band:g}" for band in settings.full_name_bands)
    given_bands = tuple(f"jaro_winkler>={band:g}" for band in settings.given_name_bands)
    full_name = ("exact", "folded", "reordered", "family_given", *full_bands, "different",
                 MISSING)
    given_name = ("exact", "folded", "one_edit", *given_bands, "different", MISSING)
    return {
        # exact after canonical normalization; equal without diacritics; same syllables in
        # another order; same family and given name (middle dropped or changed); bands
        "full_name": full_name,
        "given_name": given_name,
        # what is scored: the two together, because they are far from independent (one typo
        # lowers both; "Nguyễn Thị Thảo"/"Nguyễn Thị Thủy" is close in full, far in given)
        "name": (*(f"{full}/{given}" for full in full_name[:-1] for given in given_name[:-1]),
                 MISSING),
        "birth_date": ("exact", "partial_compatible", "day_month_swapped", "year_off",
                       "different", MISSING),
        "gender": ("agree", "different", MISSING),
        # exact personal ID; old ID number equal to the person's; one digit changed or two
        # adjacent digits swapped; other 12 digits whose gender/year digits fit the person
        "national_id": ("exact", "old_exact", "one_edit", "gender_year_consistent",
                        "old_different", "different", MISSING),
        "province": ("same", "different", MISSING),
    }


# The comparisons that are weighed (full_name and given_name are weighed jointly as name).
SCORED = ("name", "birth_date", "gender", "national_id", "province")
# Name levels whose weight is adjusted by how common the person's full name is.
TF_FULL_NAME_LEVELS = ("exact", "folded", "reordered")


def name_tf_levels(levels: dict[str, tuple[str, ...]]) -> list[int]:
    return [i for i, level in enumerate(levels["name"])
            if level.split("/")[0] in TF_FULL_NAME_LEVELS]


def _select(names: tuple[str, ...], conditions: list[tuple[str, np.ndarray]], n: int):
    """Level code per pair: the first condition that holds, in the given order."""
    code = np.full(n, names.index("different"), np.int8)
    for name, condition in reversed(conditions):
        code[condition] = names.index(name)
    return code


def _pairwise(vocab: np.ndarray, left: np.ndarray, right: np.ndarray, scorer) -> np.ndarray:
    """Score vocabulary entries pairwise, each distinct pair of codes once."""
    if not len(left):
        return np.zeros(0, np.float32)
    width = np.int64(len(vocab))
    key = left.astype(np.int64) * width + right
    inverse, unique = factorize(key)
    scores = process.cpdist(vocab[unique // width], vocab[unique % width], scorer=scorer,
                            workers=-1)
    return np.asarray(scores)[inverse]


def _pairwise_names(registry_names, population_names, r: np.ndarray, p: np.ndarray):
    """Jaro-Winkler of folded full names, each distinct pair of names scored once."""
    if not len(r):
        return np.zeros(0, np.float32)
    with np.errstate(over="ignore"):
        key = registry_names.folded[r] * np.uint64(0x9E3779B97F4A7C15) ^ mix64(
            population_names.folded[p])
    inverse, unique = factorize(key)
    first = first_rows(inverse, len(unique))
    scores = process.cpdist(registry_names.folded_text(r[first]),
                            population_names.folded_text(p[first]),
                            scorer=JaroWinkler.normalized_similarity, workers=-1)
    return np.asarray(scores)[inverse]


def compare_full_name(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["full_name"]
    rn, pn = reg.names, pop.names
    missing = rn.empty[r] | pn.empty[p]
    exact = rn.canonical[r] == pn.canonical[p]
    folded = rn.folded[r] == pn.folded[p]
    reordered = rn.tokens[r] == pn.tokens[p]
    family_given = (rn.family[r] == pn.family[p]) & (rn.given[r] == pn.given[p])
    rest = ~(missing | folded | reordered | family_given)
    similarity = np.zeros(len(r), np.float32)
    similarity[rest] = _pairwise_names(rn, pn, r[rest], p[rest])
    conditions = [(MISSING, missing), ("exact", exact), ("folded", folded),
                  ("reordered", reordered), ("family_given", family_given)]
    for band, level in zip(settings.full_name_bands, names[4:], strict=False):
        conditions.append((level, rest & (similarity >= band)))
    return _select(names, conditions, len(r))


def compare_given_name(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["given_name"]
    rn, pn = reg.names, pop.names
    missing = rn.empty[r] | pn.empty[p]
    exact = rn.given_canonical[r] == pn.given_canonical[p]
    folded = rn.given[r] == pn.given[p]
    rest = ~(missing | folded)
    left, right = rn.given[r][rest], pn.given[p][rest]
    edits = np.full(len(r), 99, np.int32)
    edits[rest] = _pairwise(rn.syllable_vocab, left, right, OSA.distance)
    similarity = np.zeros(len(r), np.float32)
    similarity[rest] = _pairwise(rn.syllable_vocab, left, right,
                                 JaroWinkler.normalized_similarity)
    conditions = [(MISSING, missing), ("exact", exact), ("folded", folded),
                  ("one_edit", edits <= 1)]
    for band, level in zip(settings.given_name_bands, names[3:], strict=False):
        conditions.append((level, rest & (similarity >= band)))
    return _select(names, conditions, len(r))


def compare_birth_date(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["birth_date"]
    rd, pd_ = reg.dates, pop.dates
    reg_precision, pop_precision = rd.precision[r], pd_.precision[p]
    precision = np.minimum(reg_precision, pop_precision)
    ry, py = rd.year[r].astype(np.int32), pd_.year[p].astype(np.int32)
    rm, pm, rday, pday = rd.month[r], pd_.month[p], rd.day[r], pd_.day[p]
    same_year, same_month, same_day = ry == py, rm == pm, rday == pday
    month_fits = (precision == YEAR) | same_month
    both_full = precision == FULL
    return _select(names, [
        (MISSING, precision == NO_DATE),
        ("exact", both_full & same_year & same_month & same_day),
        ("partial_compatible", (precision < FULL) & same_year & month_fits),
        ("day_month_swapped", both_full & same_year & (rm == pday) & (rday == pm) & (rm != rday)),
        ("year_off", (np.abs(ry - py) == 1) & month_fits & ((precision < FULL) | same_day)),
    ], len(r))


def compare_gender(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["gender"]
    rg, pg = reg.genders.code[r], pop.genders.code[p]
    return _select(names, [(MISSING, (rg == NO_GENDER) | (pg == NO_GENDER)),
                           ("agree", rg == pg)], len(r))


def _digits(numbers: np.ndarray) -> np.ndarray:
    """The 12 digits of 12-digit numbers, one column per position."""
    powers = 10 ** np.arange(11, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers) % 10


def one_edit_apart(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """12-digit numbers differing in one digit or by one swap of adjacent digits."""
    # Cheap necessary condition first: the difference is c * 10^k (one digit changed) or
    # c * 9 * 10^k (two adjacent digits swapped) with 1 <= c <= 9.
    difference = np.abs(left - right)
    possible = np.zeros(len(left), bool)
    for k in range(12):
        step = np.int64(10**k)
        scaled = difference // step
        exact = difference % step == 0
        possible |= exact & (((scaled >= 1) & (scaled <= 9))
                             | ((scaled % 9 == 0) & (scaled >= 9) & (scaled <= 81)))
    result = np.zeros(len(left), bool)
    if possible.any():
        result[possible] = _one_edit_by_digits(left[possible], right[possible])
    return result


def _one_edit_by_digits(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a, b = _digits(left), _digits(right)
    differs = a != b
    count = differs.sum(axis=1)
    swapped = (differs[:, :-1] & differs[:, 1:] & (a[:, :-1] == b[:, 1:])
               & (a[:, 1:] == b[:, :-1])).any(axis=1)
    return (count == 1) | ((count == 2) & swapped)


def gender_year_digits(gender: np.ndarray, year: np.ndarray) -> np.ndarray:
    """Digits 4-6 of the personal ID a person of this gender and birth year must have."""
    century = (year.astype(np.int64) // 100 - 19) * 2 + (gender == FEMALE)
    return century * 100 + year.astype(np.int64) % 100


def compare_national_id(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["national_id"]
    kind, number = reg.ids.kind[r], reg.ids.number[r]
    twelve = reg.ids.twelve_digits[r]
    person_id, person_old = pop.ids.number[p], pop.old_id[p]
    old = kind == ID_OLD
    near = np.zeros(len(r), bool)
    candidates = twelve & (number != person_id)
    near[candidates] = one_edit_apart(number[candidates], person_id[candidates])
    fits = (number // 10**6 % 1000) == gender_year_digits(pop.genders.code[p], pop.dates.year[p])
    return _select(names, [
        (MISSING, (kind == ID_MISSING) | ~(twelve | old) | (old & (person_old < 0))),
        ("exact", twelve & (number == person_id)),
        ("old_exact", old & (number == person_old)),
        ("old_different", old),
        ("one_edit", near),
        ("gender_year_consistent", twelve & fits),
    ], len(r))


def compare_province(reg: Table, pop: Table, r, p, settings: Settings) -> np.ndarray:
    names = comparison_levels(settings)["province"]
    rp, pp = reg.province[r], pop.province[p]
    return _select(names, [(MISSING, (rp < 0) | (pp < 0)), ("same", rp == pp)], len(r))


COMPARISONS = {
    "full_name": compare_full_name,
    "given_name": compare_given_name,
    "birth_date": compare_birth_date,
    "gender": compare_gender,
    "national_id": compare_national_id,
    "province": compare_province,
}


def compare(reg: Table, pop: Table, r: np.ndarray, p: np.ndarray,
            settings: Settings) -> dict[str, np.ndarray]:
    """Level codes of every comparison for the pairs (registry row r[i], population row p[i])."""
    codes = {name: function(reg, pop, r, p, settings) for name, function in COMPARISONS.items()}
    levels = comparison_levels(settings)
    full, given = codes["full_name"].astype(np.int16), codes["given_name"].astype(np.int16)
    per_full = len(levels["given_name"]) - 1
    joint = full * per_full + given
    missing = (full == len(levels["full_name"]) - 1) | (given == per_full)
    codes["name"] = np.where(missing, len(levels["name"]) - 1, joint).astype(np.int16)
    return codes

