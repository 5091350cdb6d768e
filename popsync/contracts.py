"""The data contracts of design.md as constants: every module speaks these names, nothing else."""

from __future__ import annotations

from popsync.reasons import CODES

REGISTRY_REQUIRED = (
    "vss_code",
    "full_name",
    "birth_date",
    "gender",
    "national_id",
    "province_code",
    "scheme_si_compulsory",
    "scheme_si_voluntary",
    "scheme_hi",
    "scheme_ui",
)
# The employer (đơn vị) pays for the participant; voluntary and household participants are
# grouped under their ward's collection agent. Not matching fields.
REGISTRY_OPTIONAL = ("ward_code", "address", "hi_card_number", "employer_code", "employer_name")

POPULATION_REQUIRED = (
    "personal_id",
    "full_name",
    "birth_date",
    "gender",
    "old_id_number",
    "province_code",
    "is_deceased",
    "death_date",
)
POPULATION_OPTIONAL = ("ward_code", "address")

TRUTH_COLUMNS = ("vss_code", "personal_id", "error_tags")

# Insurance lines: metric name -> registry column (``all`` means every participant).
LINES = {
    "all": None,
    "si_compulsory": "scheme_si_compulsory",
    "si_voluntary": "scheme_si_voluntary",
    "hi": "scheme_hi",
    "ui": "scheme_ui",
}
SCHEMES = ("63", "34")

SYNCHRONIZED = "synchronized"
NEEDS_CORRECTION = "needs_correction"
NEEDS_REVIEW = "needs_review"
UNMATCHED = "unmatched"
STATUSES = (SYNCHRONIZED, NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED)

# Reason codes, in the order of every result's list: one rule each in popsync.reasons.
REASONS = CODES

# Reviewers' decisions, an optional input of matching (keyed by VSS code and personal ID, never
# by a night's row): the pair is the same person (linked as if by exact personal ID), is not
# (never linked), or the participant is not in the population database (kept unmatched; its
# personal_id, when given, is the person the reviewer was shown).
CONFIRMED, REJECTED, NOT_IN_POPULATION = "confirmed", "rejected", "not_in_population"
DECISIONS = (CONFIRMED, REJECTED, NOT_IN_POPULATION)
DECISION_COLUMNS = ("vss_code", "personal_id", "decision")

# Results: exactly one row per registry row. ``reasons`` is a list of reason codes.
RESULT_COLUMNS = (
    "vss_code",
    "province_code",
    "status",
    "reasons",
    "personal_id",
    "match_weight",
    "match_probability",
    "name_agrees",
    "birth_date_agrees",
    "gender_agrees",
    "id_agrees",
    "suggested_full_name",
    "suggested_birth_date",
    "suggested_gender",
    "suggested_national_id",
    "explanation",
    # a row in needs_review: its best candidates (up to 5), each with its probability, weight
    # and comparison levels, as JSON, for the reviewers; null for every other row
    "candidates",
)

# The corrections feed (pipelines/corrections.py): a row per (vss_code, field) whose registry
# value the core system can set to the population database's, and why the link is certain
# (``exact_id`` or ``reviewer_confirmation``).
CORRECTION_COLUMNS = ("vss_code", "province_code", "field", "registry_value", "population_value",
                      "evidence")

METRIC_COLUMNS = (
    "run_date",
    "scheme",
    "line",
    "province_code",
    "participants",
    "synchronized",
    "needs_correction",
    "needs_review",
    "unmatched",
    "sync_rate",
    "rank",
    "change",
)

# Breakdowns (pipelines/breakdowns.py, pipelines/coverage.py): age bands by age reached in the
# run date's year (the state pays children under 6's health insurance: their band comes first),
# and genders; ``unknown`` where the year or the gender is missing.
AGE_BANDS = {"0-5": 5, "6-17": 17, "18-39": 39, "40-59": 59, "60+": None}
UNKNOWN = "unknown"
GENDERS = ("M", "F")
BREAKDOWN_COLUMNS = (
    "run_date", "scheme", "line", "province_code", "dimension", "value",
    "participants", "synchronized", "needs_correction", "needs_review", "unmatched", "sync_rate",
)
COVERAGE_COLUMNS = (
    "run_date", "scheme", "line", "province_code", "age_band",
    "residents", "covered", "coverage_rate", "rank",
)
