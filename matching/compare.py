"""Per-field comparisons of candidate pairs, declared as data: each comparison is its ordered
levels, each level its condition, its m prior and the sets it belongs to (the way Splink's
comparison levels are); computed over pair arrays."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

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

MISSING = "missing"  # the null level of every comparison: checked first, it weighs nothing
DIFFERENT = "different"  # the level of a pair no other condition holds for
M_PRIOR_BAND = 0.02  # the m prior of a level that declares none (each similarity band)

# A comparison's features: boolean arrays over the pairs, one per level with a condition, keyed
# by the level's name (``missing`` included), computed from (registry, population, r, p).
Features = Callable[[Table, Table, np.ndarray, np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Level:
    """One level of a comparison. Its condition is the comparison's feature of the same name
    (none for ``different``: what is left). The sets a level belongs to:

    - ``agrees``: taken as "this field agrees" when another field's m is learned under it;
    - ``equal``: the two values are the same after canonical normalization: the results say the
      field agrees and suggest no correction (design.md, ``synchronized``);
    - ``anchors``: agreement strong enough that pairs agreeing so on name, birth date and gender
      teach the ID comparison's m;
    - ``term_frequency``: its weight is adjusted by how common the person's full name is;
    - ``same_id``: the two share an identifier, so a random pair at this level is almost
      certainly the same person (left out of the u estimate).
    """

    name: str
    m_prior: float = M_PRIOR_BAND  # relative: a comparison's priors are normalized to sum 1
    agrees: bool = False
    equal: bool = False
    anchors: bool = False
    term_frequency: bool = False
    same_id: bool = False


@dataclass(frozen=True)
class Comparison:
    """A field's comparison: levels most to least similar, ``different`` then ``missing`` last
    (a pair's level code is its level's position). A pair is at the first level whose
    condition holds, ``missing`` checked before all others. A joint comparison (``joint_of``)
    has a level per pair of its two parts' levels instead of features."""

    name: str
    levels: tuple[Level, ...]
    features: Features | None = None
    scored: bool = True
    # the comparisons whose ``agrees`` levels select the pairs this one's m is learned from
    m_learned_under: tuple[str, ...] = ()
    joint_of: tuple[str, str] | None = None

    @functools.cached_property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)

    def index(self, level: str) -> int:
        return self.level_names.index(level)

    def codes_in(self, level_set: str) -> np.ndarray:
        """The codes of the levels in one of the sets (``agrees``, ``equal``, ...)."""
        return np.array([i for i, level in enumerate(self.levels) if getattr(level, level_set)],
                        np.int64)

    def holds(self, codes: np.ndarray, level_set: str) -> np.ndarray:
        """Whether each pair's level is in the set."""
        return np.isin(codes, self.codes_in(level_set))

    def is_level(self, codes: np.ndarray, level: str) -> np.ndarray:
        return codes == self.index(level)

    def m_prior(self) -> np.ndarray:
        """The starting m of every level (missing gets 0), normalized to sum 1."""
        start = np.array([0.0 if level.name == MISSING else level.m_prior
                          for level in self.levels])
        return start / start.sum()

    def compare(self, reg: Table, pop: Table, r: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Level code per pair: the first level whose condition holds, ``missing`` first."""
        holds = self.features(reg, pop, r, p)
        code = np.full(len(r), self.index(DIFFERENT), np.int8)
        ordered = [MISSING, *(name for name in self.level_names if name in holds
                              and name != MISSING)]
        for name in reversed(ordered):
            code[holds[name]] = self.index(name)
        return code

    def combine(self, first: Comparison, first_codes: np.ndarray, second: Comparison,
                second_codes: np.ndarray) -> np.ndarray:
        """A joint comparison's codes from its parts' (missing when either is)."""
        one, two = first_codes.astype(np.int16), second_codes.astype(np.int16)
        per_first = len(second.levels) - 1
        missing = (one == first.index(MISSING)) | (two == second.index(MISSING))
        return np.where(missing, self.index(MISSING), one * per_first + two).astype(np.int16)


# --- similarity primitives ---------------------------------------------------------------------


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


def _band(band: float) -> str:
    return f"jaro_winkler>={band:g}"


# --- the conditions of each comparison's levels -----------------------------------------------


def full_name_features(bands: tuple[float, ...]) -> Features:
    def features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
        rn, pn = reg.names, pop.names
        missing = rn.empty[r] | pn.empty[p]
        holds = {
            MISSING: missing,
            "exact": rn.canonical[r] == pn.canonical[p],  # after canonical normalization
            "folded": rn.folded[r] == pn.folded[p],  # equal without diacritics
            "reordered": rn.tokens[r] == pn.tokens[p],  # same syllables in another order
            # same family and given name (middle name dropped or changed)
            "family_given": (rn.family[r] == pn.family[p]) & (rn.given[r] == pn.given[p]),
        }
        rest = ~(missing | holds["folded"] | holds["reordered"] | holds["family_given"])
        similarity = np.zeros(len(r), np.float32)
        similarity[rest] = _pairwise_names(rn, pn, r[rest], p[rest])
        holds.update({_band(band): rest & (similarity >= band) for band in bands})
        return holds
    return features


def given_name_features(bands: tuple[float, ...]) -> Features:
    def features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
        rn, pn = reg.names, pop.names
        missing = rn.empty[r] | pn.empty[p]
        folded = rn.given[r] == pn.given[p]
        rest = ~(missing | folded)
        left, right = rn.given[r][rest], pn.given[p][rest]
        edits = np.full(len(r), 99, np.int32)
        edits[rest] = _pairwise(rn.syllable_vocab, left, right, OSA.distance)
        similarity = np.zeros(len(r), np.float32)
        similarity[rest] = _pairwise(rn.syllable_vocab, left, right,
                                     JaroWinkler.normalized_similarity)
        holds = {MISSING: missing,
                 "exact": rn.given_canonical[r] == pn.given_canonical[p],
                 "folded": folded,
                 "one_edit": edits <= 1}
        holds.update({_band(band): rest & (similarity >= band) for band in bands})
        return holds
    return features


def birth_date_features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
    rd, pd_ = reg.dates, pop.dates
    precision = np.minimum(rd.precision[r], pd_.precision[p])
    ry, py = rd.year[r].astype(np.int32), pd_.year[p].astype(np.int32)
    rm, pm, rday, pday = rd.month[r], pd_.month[p], rd.day[r], pd_.day[p]
    same_year, same_month, same_day = ry == py, rm == pm, rday == pday
    month_fits = (precision == YEAR) | same_month
    both_full = precision == FULL
    return {
        MISSING: precision == NO_DATE,
        "exact": both_full & same_year & same_month & same_day,
        "partial_compatible": (precision < FULL) & same_year & month_fits,
        "day_month_swapped": both_full & same_year & (rm == pday) & (rday == pm) & (rm != rday),
        "year_off": (np.abs(ry - py) == 1) & month_fits & ((precision < FULL) | same_day),
    }


def gender_features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
    rg, pg = reg.genders.code[r], pop.genders.code[p]
    return {MISSING: (rg == NO_GENDER) | (pg == NO_GENDER), "agree": rg == pg}


def national_id_features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
    kind, number = reg.ids.kind[r], reg.ids.number[r]
    twelve = reg.ids.twelve_digits[r]  # exclusive of ``old``: one_edit and old_different too
    person_id, person_old = pop.ids.number[p], pop.old_id[p]
    old = kind == ID_OLD
    near = np.zeros(len(r), bool)
    candidates = twelve & (number != person_id)
    near[candidates] = one_edit_apart(number[candidates], person_id[candidates])
    fits = (number // 10**6 % 1000) == gender_year_digits(pop.genders.code[p], pop.dates.year[p])
    return {
        MISSING: (kind == ID_MISSING) | ~(twelve | old) | (old & (person_old < 0)),
        "exact": twelve & (number == person_id),
        "old_exact": old & (number == person_old),
        "one_edit": near,  # one digit changed or two adjacent digits swapped
        "gender_year_consistent": twelve & fits,  # digits 4-6 fit the person's gender and year
        "old_different": old,
    }


def province_features(reg: Table, pop: Table, r, p) -> dict[str, np.ndarray]:
    rp, pp = reg.province[r], pop.province[p]
    return {MISSING: (rp < 0) | (pp < 0), "same": rp == pp}


# --- the comparisons ---------------------------------------------------------------------------

# Which given-name levels usually come with a full-name level (a folded full name has an exact
# or folded given name); others share the full-name level's prior as one in a thousand. A
# full-name level not listed (reordered, bands, different) allows any given name.
USUAL_GIVEN = {"exact": ("exact",), "folded": ("exact", "folded"),
               "family_given": ("exact", "folded")}
ANY_GIVEN = ("exact", "folded", "one_edit", DIFFERENT)


def _joint_name(full_name: Comparison, given_name: Comparison) -> Comparison:
    """Full and given name weighed together, because they are far from independent (one typo
    lowers both; "Nguyễn Thị Thảo"/"Nguyễn Thị Thủy" is close in full, far in given). The prior
    of a joint level is its full-name level's, shared among the given-name levels that usually
    come with it."""
    levels = []
    for full in full_name.levels[:-1]:
        usual = USUAL_GIVEN.get(full.name, ANY_GIVEN)
        for given in given_name.levels[:-1]:
            prior = (full.m_prior / len(usual) if given.name in usual
                     else full.m_prior * 1e-3)
            levels.append(Level(f"{full.name}/{given.name}", prior, agrees=full.agrees,
                                equal=full.equal and given.equal, anchors=full.anchors,
                                term_frequency=full.term_frequency))
    return Comparison("name", (*levels, Level(MISSING)),
                      m_learned_under=("birth_date", "gender"),
                      joint_of=(full_name.name, given_name.name))


@functools.lru_cache(maxsize=8)
def comparisons(settings: Settings) -> dict[str, Comparison]:
    """Every comparison of a run, by name; the weighed ones in the order they are summed."""
    full_name = Comparison(
        "full_name",
        (Level("exact", 0.85, agrees=True, equal=True, anchors=True, term_frequency=True),
         Level("folded", 0.05, agrees=True, anchors=True, term_frequency=True),
         Level("reordered", 0.01, agrees=True, term_frequency=True),
         Level("family_given", 0.02, agrees=True),
         *(Level(_band(band)) for band in settings.full_name_bands),
         Level(DIFFERENT, 0.01),
         Level(MISSING)),
        full_name_features(settings.full_name_bands),
        scored=False,  # weighed jointly with the given name, as ``name``
    )
    given_name = Comparison(
        "given_name",
        (Level("exact", 0.9), Level("folded", 0.04), Level("one_edit", 0.02),
         *(Level(_band(band)) for band in settings.given_name_bands),
         Level(DIFFERENT, 0.01), Level(MISSING)),
        given_name_features(settings.given_name_bands),
        scored=False,
    )
    declared = [
        full_name,
        given_name,
        _joint_name(full_name, given_name),
        Comparison(
            "birth_date",
            (Level("exact", 0.9, agrees=True, equal=True, anchors=True),
             Level("partial_compatible", 0.05, agrees=True),
             Level("day_month_swapped", 0.01, agrees=True),
             Level("year_off", 0.01, agrees=True),
             Level(DIFFERENT, 0.03), Level(MISSING)),
            birth_date_features, m_learned_under=("full_name", "gender"),
        ),
        Comparison(
            "gender",
            (Level("agree", 0.98, agrees=True, equal=True, anchors=True),
             Level(DIFFERENT, 0.02), Level(MISSING)),
            gender_features, m_learned_under=("full_name", "birth_date"),
        ),
        # its m is learned from the anchor pairs (name, birth date and gender at ``anchors``
        # levels, one such pair per registry row), not under ``agrees`` sets
        Comparison(
            "national_id",
            (Level("exact", 0.9, equal=True, same_id=True),
             Level("old_exact", 0.03, same_id=True),
             Level("one_edit", 0.03),
             Level("gender_year_consistent", 0.01),
             Level("old_different", 0.01),
             Level(DIFFERENT, 0.02), Level(MISSING)),
            national_id_features,
        ),
        Comparison(
            "province",
            (Level("same", 0.7), Level(DIFFERENT, 0.3), Level(MISSING)),
            province_features, m_learned_under=("full_name", "birth_date"),
        ),
    ]
    return {comparison.name: comparison for comparison in declared}


def scored(settings: Settings) -> dict[str, Comparison]:
    """The comparisons that are weighed, in the order their weights are summed."""
    return {name: c for name, c in comparisons(settings).items() if c.scored}


def compare(reg: Table, pop: Table, r: np.ndarray, p: np.ndarray,
            settings: Settings) -> dict[str, np.ndarray]:
    """Level codes of every comparison for the pairs (registry row r[i], population row p[i])."""
    declared = comparisons(settings)
    codes = {}
    for name, comparison in declared.items():
        if comparison.joint_of is None:
            codes[name] = comparison.compare(reg, pop, r, p)
    for name, comparison in declared.items():
        if comparison.joint_of is not None:
            first, second = comparison.joint_of
            codes[name] = comparison.combine(declared[first], codes[first], declared[second],
                                             codes[second])
    return codes
