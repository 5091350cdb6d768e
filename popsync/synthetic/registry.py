"""Turn people into registry rows: insurance lines, registering office, and the injected errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from popsync.synthetic import names
from popsync.synthetic.people import REFERENCE_DATE, IdAllocator, People, draw
from popsync.synthetic.profiles import ERROR_TAGS, FIELD_ERROR_GROUPS, ROW_KINDS
from popsync.synthetic.strings import (
    date_parts,
    date_strings,
    digit_matrix,
    digits,
    join_words,
    make_dates,
    scatter,
    to_matrix,
    to_unicode,
)

# Where people work when not in their home province: the industrial south and the two cities.
WORK_DESTINATIONS = {79: 0.35, 74: 0.20, 75: 0.12, 1: 0.20, 27: 0.08, 31: 0.05}
_WORK_CODES = np.array(list(WORK_DESTINATIONS), dtype=np.int64)
_WORK_CDF = np.cumsum(np.array(list(WORK_DESTINATIONS.values())))

# Health-insurance card: beneficiary group code -> benefit level (1 = fully covered).
HI_GROUP_LEVEL = {"DN": 4, "HC": 4, "TE": 1, "HS": 4, "SV": 4, "BT": 2, "HT": 2, "CN": 2,
                  "GD": 4}
_LETTERS = np.array([ord(c) for c in "abcdeghiklmnopqrstuvxy"], dtype=np.uint32)
_TONE_PATTERN = "|".join(names.OLD_TONE_STYLE)


@dataclass
class Lines:
    """Insurance lines held by each person, and the office that registers them."""

    compulsory: np.ndarray
    voluntary: np.ndarray
    hi: np.ndarray
    ui: np.ndarray
    province: np.ndarray
    hi_group: np.ndarray


def draw_lines(rng: np.random.Generator, people: People) -> Lines:
    """Health ≈ 92 % of people, uneven by age and province; compulsory SI for part of the
    working ages (more among migrants, who moved for work), unemployment insurance within it; a
    few voluntary."""
    count, age = len(people), people.age
    working = (age >= 18) & (age <= 60)
    compulsory = working & (rng.random(count) < np.where(people.migrant, 0.60, 0.24))
    civil_servant = compulsory & (rng.random(count) < 0.12)
    ui = compulsory & ~civil_servant & (rng.random(count) < 0.95)
    voluntary = ~compulsory & (age >= 18) & (age <= 65) & (rng.random(count) < 0.04)
    # Near-complete for children under 6 and pensioners (the state or the pension pays); lower
    # for working-age people without a contract, the more so for migrants, who often work
    # informally away from home: provinces drawing migrants (Bình Dương) are less covered.
    adults = np.where(people.migrant, 0.40, 0.90)
    hi_share = np.select([age < 6, age < 18, age < 60], [0.99, 0.95, adults], 0.97)
    hi = compulsory | (rng.random(count) < hi_share)
    # Compulsory contributions are paid where people work, which is not always where they live.
    works_elsewhere = compulsory & (rng.random(count) < 0.12)
    work = np.where(works_elsewhere, _WORK_CODES[draw(_WORK_CDF, rng.random(count))],
                    people.residence)
    group_draw = rng.random(count)
    hi_group = np.select(
        [civil_servant, compulsory, age < 6, age < 18, (age <= 22) & (group_draw < 0.4),
         (age >= 80) & (group_draw < 0.3), (age >= 60) & (group_draw < 0.5), group_draw < 0.08],
        ["HC", "DN", "TE", "HS", "SV", "BT", "HT", "CN"], "GD",
    )
    return Lines(compulsory, voluntary, hi, ui, work, hi_group)


@dataclass
class Rows:
    """Registry rows before errors: the person's true values and the lines registered."""

    family: pa.Array
    middle: pa.Array
    given: pa.Array
    full_name: pa.Array
    birth: np.ndarray
    female: np.ndarray
    personal_id: np.ndarray  # "" for foreigners
    old_id: np.ndarray
    province: np.ndarray
    compulsory: np.ndarray
    voluntary: np.ndarray
    hi: np.ndarray
    ui: np.ndarray
    hi_group: np.ndarray

    @classmethod
    def of(cls, people: People, lines: Lines, index: np.ndarray) -> Rows:
        take = pa.array(index, pa.int64())
        return cls(
            people.family.take(take), people.middle.take(take), people.given.take(take),
            people.full_name.take(take), people.birth[index], people.female[index],
            people.personal_id[index], people.old_id[index], lines.province[index],
            lines.compulsory[index], lines.voluntary[index], lines.hi[index], lines.ui[index],
            lines.hi_group[index],
        )

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        fields = cls.__dataclass_fields__
        return cls(**{
            field: (pa.concat_arrays([getattr(p, field) for p in parts])
                    if isinstance(getattr(parts[0], field), pa.Array)
                    else np.concatenate([getattr(p, field) for p in parts]))
            for field in fields
        })

    def __len__(self) -> int:
        return len(self.female)


def foreign_rows(rng: np.random.Generator, count: int) -> Rows:
    """Foreign workers: passport names, no Vietnamese ID, compulsory SI and health insurance."""
    family = pa.array(names.FOREIGN_FAMILY, pa.string()).take(
        pa.array(rng.integers(0, len(names.FOREIGN_FAMILY), count)))
    given = pa.array(names.FOREIGN_GIVEN, pa.string()).take(
        pa.array(rng.integers(0, len(names.FOREIGN_GIVEN), count)))
    empty = pa.array(np.full(count, ""), pa.string())
    age_days = ((22 + 38 * rng.random(count)) * 365.2425).astype(np.int64)
    yes, no = np.ones(count, dtype=bool), np.zeros(count, dtype=bool)
    return Rows(
        family, empty, given, join_words(family, given), REFERENCE_DATE - age_days,
        rng.random(count) < 0.35, np.full(count, "", dtype="U12"), np.full(count, "", dtype="U9"),
        _WORK_CODES[draw(_WORK_CDF, rng.random(count))], yes, no, yes.copy(), no.copy(),
        np.full(count, "DN"),
    )


def build_registry(rng: np.random.Generator, people: People, absent: People,
                   rates: dict[str, float], ids: IdAllocator) -> tuple[pa.Table, pa.Table]:
    """Registry and truth tables for one chunk of people.

    ``absent`` are people left out of the population extract; some register anyway.
    """
    lines = draw_lines(rng, people)
    holds_line = lines.hi | lines.compulsory | lines.voluntary
    participants = np.flatnonzero(holds_line & ~people.is_deceased)
    extra_share = sum(rates[tag] for tag in ROW_KINDS)
    expected_rows = round(len(participants) / (1 - extra_share))
    duplicate_count, outsider_count, deceased_count = (
        rng.binomial(expected_rows, rates[tag]) for tag in ROW_KINDS
    )

    duplicates = rng.choice(participants, size=min(duplicate_count, len(participants)),
                            replace=False)
    deceased_people = np.flatnonzero(people.is_deceased)
    deceased = rng.choice(deceased_people, size=min(deceased_count, len(deceased_people)),
                          replace=False)
    # The dead stay on the books of the line they last held (health insurance if none).
    lines.hi[deceased] |= ~holds_line[deceased]
    absent_count = min(outsider_count // 2, len(absent))
    absent_rows = Rows.of(absent, draw_lines(rng, absent), np.arange(absent_count))
    absent_rows.hi |= ~(absent_rows.compulsory | absent_rows.voluntary)

    duplicate_rows = Rows.of(people, lines, duplicates)
    # A second registration is often made by another office (a new job elsewhere).
    elsewhere = rng.random(len(duplicate_rows)) < 0.5
    duplicate_rows.province = np.where(
        elsewhere, _WORK_CODES[draw(_WORK_CDF, rng.random(len(duplicate_rows)))],
        duplicate_rows.province)
    rows = Rows.concat([
        Rows.of(people, lines, participants), duplicate_rows, Rows.of(people, lines, deceased),
        absent_rows, foreign_rows(rng, outsider_count - absent_count),
    ])
    kind_starts = np.cumsum([0, len(participants), len(duplicates), len(deceased)])
    errors = {tag: np.zeros(len(rows), dtype=bool) for tag in ERROR_TAGS}
    errors["duplicate"][kind_starts[1]:kind_starts[2]] = True
    errors["deceased"][kind_starts[2]:kind_starts[3]] = True
    errors["not_in_population"][kind_starts[3]:] = True
    _assign_field_errors(rng, rows, rates, errors)

    registry, truth = _apply_errors(rng, rows, errors)
    order = pa.array(rng.permutation(len(rows)))
    registry, truth = registry.take(order), truth.take(order)
    province = pc.cast(registry["province_code"], pa.int64()).to_numpy()
    vss_code = ids.vss_codes(province)
    hi = registry["scheme_hi"].to_numpy(zero_copy_only=False)
    hi_group = truth["hi_group"].to_numpy(zero_copy_only=False).astype("U2")
    level = np.zeros(len(hi_group), dtype=np.int64)
    for group, benefit_level in HI_GROUP_LEVEL.items():
        level[hi_group == group] = benefit_level
    card = to_unicode(np.hstack([
        to_matrix(hi_group), digit_matrix(level, 1), digit_matrix(province, 2),
        to_matrix(vss_code),
    ]))
    registry = registry.set_column(0, "vss_code", pa.array(vss_code, pa.string()))
    registry = registry.append_column("hi_card_number", pa.array(card, pa.string(), mask=~hi))
    truth = pa.table({
        "vss_code": registry["vss_code"],
        "personal_id": truth["personal_id"],
        "error_tags": truth["error_tags"],
    })
    return registry, truth


def _choose(rng, pool_mask: np.ndarray, count: int) -> np.ndarray:
    pool = np.flatnonzero(pool_mask)
    chosen = np.zeros(len(pool_mask), dtype=bool)
    chosen[rng.choice(pool, size=min(count, len(pool)), replace=False)] = True
    return chosen


def _assign_field_errors(rng, rows: Rows, rates, errors: dict[str, np.ndarray]) -> None:
    """Pick the rows of each field error: exactly Binomial(rows, rate) of them, drawn among the
    rows where the error can happen, at most one error per field group in a row."""
    total = len(rows)
    # Foreigners' rows are wrong by nature: no further errors are injected into them.
    candidate = ~errors["not_in_population"]
    name_has_marks = pc.match_substring_regex(rows.full_name, "[^\\x00-\\x7f]").to_numpy(
        zero_copy_only=False)
    years, months, days = date_parts(rows.birth)
    eligible = {
        "old_id": rows.old_id != "",
        "old_tone_style": pc.match_substring_regex(rows.full_name, _TONE_PATTERN).to_numpy(
            zero_copy_only=False),
        "dropped_middle": pc.not_equal(rows.middle, "").to_numpy(zero_copy_only=False),
        "no_diacritics": name_has_marks,
        # Đ/đ have no decomposition: a name whose only marks are on Đ looks the same in NFD.
        "nfd": pc.not_equal(pc.utf8_normalize(rows.full_name, "NFD"), rows.full_name).to_numpy(
            zero_copy_only=False),
        "day_month_swapped": (days <= 12) & (days != months),
    }
    for group in FIELD_ERROR_GROUPS:
        taken = ~candidate
        for tag in group:
            pool = eligible.get(tag, True) & ~taken
            errors[tag] = _choose(rng, pool, rng.binomial(total, rates[tag]))
            taken = taken | errors[tag]


def _apply_errors(rng, rows: Rows, errors) -> tuple[pa.Table, pa.Table]:
    """The registry as written (errors applied) and the truth columns, in row order."""
    # Names: reorderings from the parts, then the spelling errors, then case.
    full_name = rows.full_name
    full_name = pc.if_else(pa.array(errors["dropped_middle"]),
                           join_words(rows.family, rows.given), full_name)
    full_name = pc.if_else(pa.array(errors["swapped_name_order"]),
                           join_words(rows.middle, rows.given, rows.family), full_name)
    full_name = scatter(full_name, errors["name_typo"], lambda v: _one_letter_typo(rng, v))
    full_name = scatter(full_name, errors["old_tone_style"], _old_tone_style)
    full_name = scatter(full_name, errors["no_diacritics"], _strip_diacritics)
    full_name = scatter(full_name, errors["upper_case"], pc.utf8_upper)
    full_name = scatter(full_name, errors["nfd"], lambda v: pc.utf8_normalize(v, "NFD"))

    years, months, days = date_parts(rows.birth)
    birth = rows.birth.copy()
    swapped = errors["day_month_swapped"]
    birth[swapped] = make_dates(years[swapped], days[swapped], months[swapped])
    off = errors["birth_year_off"]
    step = np.where(rng.random(int(off.sum())) < 0.5, -1, 1)
    birth[off] = make_dates(years[off] + step, months[off], days[off])
    birth_date = pa.array(date_strings(birth), pa.string())
    birth_date = scatter(birth_date, errors["birth_year_only"],
                         lambda v: pc.utf8_slice_codeunits(v, 0, 4))
    birth_date = scatter(birth_date, errors["birth_month_year"],
                         lambda v: pc.utf8_slice_codeunits(v, 0, 7))

    national_id = rows.personal_id.copy()
    national_id[errors["old_id"]] = rows.old_id[errors["old_id"]]
    national_id[errors["id_typo"]] = _one_digit_typo(rng, national_id[errors["id_typo"]])
    national_id[errors["id_transposed"]] = _transpose_digits(
        rng, national_id[errors["id_transposed"]])
    id_missing = errors["missing_id"] | (national_id == "")

    gender = np.where(rows.female ^ errors["wrong_gender"], "F", "M")
    registry = pa.table({
        "vss_code": pa.nulls(len(rows), pa.string()),  # issued after the rows are shuffled
        "full_name": full_name,
        "birth_date": birth_date,
        "gender": pa.array(gender, pa.string()),
        "national_id": pa.array(national_id, pa.string(), mask=id_missing),
        "province_code": pa.array(digits(rows.province, 2), pa.string()),
        "scheme_si_compulsory": rows.compulsory,
        "scheme_si_voluntary": rows.voluntary,
        "scheme_hi": rows.hi,
        "scheme_ui": rows.ui,
    })
    truth = pa.table({
        "personal_id": pa.array(rows.personal_id, pa.string(),
                                mask=errors["not_in_population"]),
        "error_tags": _error_tags(errors),
        "hi_group": pa.array(rows.hi_group, pa.string()),
    })
    return registry, truth


def _error_tags(errors: dict[str, np.ndarray]) -> pa.Array:
    """Comma-separated tag names per row, built once per distinct combination of tags."""
    bits = np.zeros(len(next(iter(errors.values()))), dtype=np.int64)
    for position, tag in enumerate(ERROR_TAGS):
        bits |= errors[tag].astype(np.int64) << position
    combinations, inverse = np.unique(bits, return_inverse=True)
    labels = [",".join(tag for position, tag in enumerate(ERROR_TAGS) if combo >> position & 1)
              for combo in combinations.tolist()]
    return pa.array(labels, pa.string()).take(pa.array(inverse.ravel()))


def _strip_diacritics(values: pa.Array) -> pa.Array:
    stripped = pc.replace_substring_regex(pc.utf8_normalize(values, "NFD"), "\\p{Mn}", "")
    return pc.replace_substring(pc.replace_substring(stripped, "Đ", "D"), "đ", "d")


def _old_tone_style(values: pa.Array) -> pa.Array:
    for new_style, old_style in names.OLD_TONE_STYLE.items():
        values = pc.replace_substring(values, new_style, old_style)
    return values


def _one_letter_typo(rng, values: pa.Array) -> pa.Array:
    """Change one letter (never a word's first) to another lower-case letter."""
    matrix = to_matrix(np.asarray(values.to_numpy(zero_copy_only=False), dtype=str))
    rows, width = matrix.shape
    space = ord(" ")
    previous = np.hstack([np.full((rows, 1), space, dtype=np.uint32), matrix[:, :-1]])
    inner_letter = (matrix != 0) & (matrix != space) & (previous != space)
    position = (rng.random((rows, width)) * inner_letter).argmax(axis=1)
    pick = rng.integers(0, len(_LETTERS), rows)
    letter = _LETTERS[pick]
    original = matrix[np.arange(rows), position]
    letter = np.where(letter == original, _LETTERS[(pick + 1) % len(_LETTERS)], letter)
    matrix[np.arange(rows), position] = letter
    return pa.array(to_unicode(matrix), pa.string())


def _one_digit_typo(rng, ids: np.ndarray) -> np.ndarray:
    matrix = to_matrix(ids.astype("U12"))
    rows = len(ids)
    position = rng.integers(0, 12, rows)
    digit = matrix[np.arange(rows), position] - ord("0")
    matrix[np.arange(rows), position] = (digit + rng.integers(1, 10, rows)) % 10 + ord("0")
    return to_unicode(matrix)


def _transpose_digits(rng, ids: np.ndarray) -> np.ndarray:
    """Swap two adjacent digits that differ (so the ID really changes)."""
    matrix = to_matrix(ids.astype("U12"))
    rows = len(ids)
    differs = matrix[:, :-1] != matrix[:, 1:]
    position = (rng.random(differs.shape) * differs).argmax(axis=1)
    at = np.arange(rows)
    left = matrix[at, position].copy()
    matrix[at, position] = matrix[at, position + 1]
    matrix[at, position + 1] = left
    return to_unicode(matrix)

