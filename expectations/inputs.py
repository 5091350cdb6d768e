"""Input suites: what a canonical registry and population must satisfy before matching.

Hard expectations (a missing key or column) stop the night; row expectations quarantine the
offending rows with the reason named in ``meta``; the night goes on. The suites run on one chunk
of a source at a time; what needs the whole source (unique keys, the volume against the previous
night) is checked across chunks by ``expectations.nation``.
"""

from __future__ import annotations

import math

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from expectations.runner import ROW, SAMPLE_SIZE, Finding, SuiteOutcome, run_suite
from expectations.runner import hard as _hard
from expectations.runner import row as _row
from popsync.contracts import POPULATION_REQUIRED, REGISTRY_REQUIRED
from popsync.reference.identifiers import mask
from popsync.reference.provinces import PROVINCES_63

PROVINCE_CODES = sorted(PROVINCES_63)
_PREFIXES = "|".join(PROVINCE_CODES)
VSS_CODE = rf"^(?:{_PREFIXES})\d{{8}}$"
PERSONAL_ID = r"^\d{12}$"
OLD_ID_NUMBER = r"^\d{9}$"
NATIONAL_ID = r"^(?:\d{12}|\d{9})$"
HEALTH_CARD = r"^[A-Z]{2}[1-5]\d{2}\d{10}$"
# YYYY, YYYY-MM or YYYY-MM-DD with a real month and day number (how early or late the date is,
# and whether the month has the day, are checked apart: see impossible_birth_dates).
BIRTH_DATE = r"^\d{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?$"
# The earliest birth year a personal ID encodes (century digit 0 or 1: the 1900s); the matching
# engine's bands and year comparisons start no earlier.
EARLIEST_BIRTH_YEAR = 1900
FULL_DATE = r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"
REGISTRY_FLAGS = ("scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui")


def minimum_rows(previous_rows: int | None, volume_drop_max: float) -> int:
    """Fewer rows than this (vs the previous run) means a truncated extract: stop the night."""
    if not previous_rows:
        return 1
    return max(1, math.ceil(previous_rows * (1 - volume_drop_max)))


def registry_suite() -> list:
    return [
        *[_hard(gxe.ExpectColumnToExist, "missing_column", column=c) for c in REGISTRY_REQUIRED],
        _hard(gxe.ExpectColumnValuesToNotBeNull, "vss_code_missing", column="vss_code"),
        # A row must belong to some office: its province, else its code's issuing province.
        _hard(gxe.ExpectColumnValuesToNotBeNull, "no_office", column="office_code"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex, "vss_code_format", column="vss_code", regex=VSS_CODE
        ),
        _row(gxe.ExpectColumnValuesToNotBeNull, "full_name_missing", column="full_name"),
        _row(gxe.ExpectColumnValuesToNotBeNull, "birth_date_missing", column="birth_date"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "birth_date_format",
            column="birth_date",
            regex=BIRTH_DATE,
        ),
        _row(
            gxe.ExpectColumnValuesToBeInSet, "gender_value", column="gender", value_set=["M", "F"]
        ),
        _row(gxe.ExpectColumnValuesToNotBeNull, "gender_missing", column="gender"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "national_id_format",
            column="national_id",
            regex=NATIONAL_ID,
        ),
        _row(
            gxe.ExpectColumnValuesToBeInSet,
            "province_code_unknown",
            column="province_code",
            value_set=PROVINCE_CODES,
        ),
        *[
            _row(gxe.ExpectColumnValuesToNotBeNull, "insurance_flag_unreadable", column=c)
            for c in REGISTRY_FLAGS
        ],
    ]


def population_suite() -> list:
    return [
        *[_hard(gxe.ExpectColumnToExist, "missing_column", column=c) for c in POPULATION_REQUIRED],
        _hard(gxe.ExpectColumnValuesToNotBeNull, "personal_id_missing", column="personal_id"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "personal_id_format",
            column="personal_id",
            regex=PERSONAL_ID,
        ),
        _row(gxe.ExpectColumnValuesToNotBeNull, "full_name_missing", column="full_name"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "birth_date_format",
            column="birth_date",
            regex=BIRTH_DATE,
        ),
        _row(
            gxe.ExpectColumnValuesToBeInSet, "gender_value", column="gender", value_set=["M", "F"]
        ),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "old_id_number_format",
            column="old_id_number",
            regex=OLD_ID_NUMBER,
        ),
        _row(
            gxe.ExpectColumnValuesToBeInSet,
            "province_code_unknown",
            column="province_code",
            value_set=PROVINCE_CODES,
        ),
        _row(gxe.ExpectColumnValuesToNotBeNull, "deceased_flag_unreadable", column="is_deceased"),
        _row(
            gxe.ExpectColumnValuesToMatchRegex,
            "death_date_format",
            column="death_date",
            regex=FULL_DATE,
        ),
    ]


def impossible_birth_dates(birth_date: pd.Series, run_date: str) -> np.ndarray:
    """Positions of birth dates the format check lets through but no one has: a day the month
    does not have (1990-02-31), or a date after the run date (2090-01-01, or 2090 alone)."""
    text = birth_date.astype("str").fillna("")
    full = text.str.fullmatch(FULL_DATE).fillna(False).to_numpy(bool)
    unreal = full & pd.to_datetime(text.where(full), format="%Y-%m-%d", errors="coerce").isna()
    # a partial date (YYYY, YYYY-MM) is in the future when even its first day is
    first_day = (text + "-01-01").str.slice(0, 10)
    readable = text.str.fullmatch(BIRTH_DATE).fillna(False).to_numpy(bool) & ~unreal
    future = readable & (first_day.to_numpy(str) > run_date)
    return np.flatnonzero(unreal | future)


def too_early_birth_dates(birth_date: pd.Series) -> np.ndarray:
    """Positions of well-formed birth dates before ``EARLIEST_BIRTH_YEAR``."""
    text = birth_date.astype("str").fillna("")
    readable = text.str.fullmatch(BIRTH_DATE).fillna(False).to_numpy(bool)
    return np.flatnonzero(readable & (text.str.slice(0, 4).to_numpy(str)
                                      < f"{EARLIEST_BIRTH_YEAR:04d}"))


def _birth_date_finding(frame: pd.DataFrame, rows: np.ndarray, expectation: str, reason: str,
                        expected: str) -> Finding:
    return Finding(
        expectation=expectation, column="birth_date", severity=ROW, reason=reason,
        success=not len(rows), unexpected_count=len(rows),
        unexpected_percent=100.0 * len(rows) / len(frame) if len(frame) else None,
        observed=None, expected=expected,
        samples=[mask(str(v)) for v in frame["birth_date"].to_numpy()[rows[:SAMPLE_SIZE]]],
        rows=rows,
    )


def _with_impossible_dates(outcome: SuiteOutcome, frame: pd.DataFrame, run_date: str
                           ) -> SuiteOutcome:
    outcome.findings += [
        _birth_date_finding(frame, impossible_birth_dates(frame["birth_date"], run_date),
                            "expect_birth_date_to_be_a_past_calendar_day",
                            "birth_date_impossible", f"a real day, not after {run_date}"),
        _birth_date_finding(frame, too_early_birth_dates(frame["birth_date"]),
                            "expect_birth_date_to_be_in_the_engines_range",
                            "birth_date_too_early", f"not before {EARLIEST_BIRTH_YEAR}"),
    ]
    return outcome


def validate_registry(registry: pd.DataFrame, run_date: str) -> SuiteOutcome:
    """``registry`` (a chunk) carries ``office_code`` (pipelines.metrics.office_code)."""
    return _with_impossible_dates(
        run_suite("registry", registry, registry_suite()), registry, run_date)


def validate_population(population: pd.DataFrame, run_date: str) -> SuiteOutcome:
    return _with_impossible_dates(
        run_suite("population", population, population_suite()), population, run_date)
