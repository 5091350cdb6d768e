"""Named error profiles: the share of registry rows that carries each injected real-world error."""

from __future__ import annotations

# Every error the generator can inject, in the order they are listed in ``truth.error_tags``.
ERROR_TAGS = (
    "missing_id",
    "old_id",
    "id_typo",
    "id_transposed",
    "no_diacritics",
    "nfd",
    "old_tone_style",
    "upper_case",
    "name_typo",
    "dropped_middle",
    "swapped_name_order",
    "birth_year_only",
    "birth_month_year",
    "day_month_swapped",
    "birth_year_off",
    "wrong_gender",
    "duplicate",
    "not_in_population",
    "deceased",
)

# Field-like rates: about 86 % of rows clean, each kind of error 0.3-2 % of rows.
_DEFAULT = {
    "missing_id": 0.020,
    "old_id": 0.015,
    "id_typo": 0.008,
    "id_transposed": 0.005,
    "no_diacritics": 0.015,
    "nfd": 0.010,
    "old_tone_style": 0.005,
    "upper_case": 0.015,
    "name_typo": 0.008,
    "dropped_middle": 0.005,
    "swapped_name_order": 0.003,
    "birth_year_only": 0.005,
    "birth_month_year": 0.005,
    "day_month_swapped": 0.004,
    "birth_year_off": 0.004,
    "wrong_gender": 0.003,
    "duplicate": 0.008,
    "not_in_population": 0.005,
    "deceased": 0.004,
}

# name -> {error tag: share of registry rows carrying it}; tests check realized rates against these.
ERROR_PROFILES: dict[str, dict[str, float]] = {
    "default": dict(_DEFAULT),
    "clean": {tag: 0.0 for tag in ERROR_TAGS},
    # Three times the field rates: errors of different fields now often meet in one row.
    "dirty": {tag: 3 * rate for tag, rate in _DEFAULT.items()},
}

# Errors that change the same field exclude each other within a row. Groups are drawn one after
# the other; within a group the errors possible in the fewest rows draw first (see ``registry``).
FIELD_ERROR_GROUPS = (
    ("old_id", "missing_id", "id_typo", "id_transposed"),
    ("old_tone_style", "dropped_middle", "no_diacritics", "nfd", "name_typo",
     "swapped_name_order"),
    ("day_month_swapped", "birth_year_only", "birth_month_year", "birth_year_off"),
    ("upper_case",),
    ("wrong_gender",),
)
# Rows that are not plain registrations of a living person of the population.
ROW_KINDS = ("duplicate", "not_in_population", "deceased")
