"""Result suites: the night's results and metrics must keep the contract before publication.

Every expectation here is hard: one failure stops publication.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
import pandas as pd

from expectations.runner import SuiteOutcome, run_suite
from expectations.runner import hard as _hard
from popsync.contracts import REASONS, RESULT_COLUMNS, STATUSES

REASONS_TEXT = rf"^(?:(?:{'|'.join(REASONS)})(?:,|$))*$"


def results_suite() -> list:
    """On one partition of the results; one result per registry row (same count, unique codes,
    every code a registry's) is checked across partitions by ``expectations.nation``."""
    return [
        *[_hard(gxe.ExpectColumnToExist, "missing_column", column=c) for c in RESULT_COLUMNS],
        _hard(gxe.ExpectColumnValuesToNotBeNull, "vss_code_missing", column="vss_code"),
        _hard(gxe.ExpectColumnValuesToNotBeNull, "status_missing", column="status"),
        _hard(
            gxe.ExpectColumnValuesToBeInSet,
            "status_unknown",
            column="status",
            value_set=list(STATUSES),
        ),
        _hard(
            gxe.ExpectColumnValuesToMatchRegex,
            "reason_unknown",
            column="reasons_text",
            regex=REASONS_TEXT,
        ),
        # Synchronized rows carry no reason; every other status says why.
        _hard(
            gxe.ExpectColumnPairValuesToBeEqual,
            "reasons_vs_status",
            column_A="has_reasons",
            column_B="not_synchronized",
        ),
        _hard(
            gxe.ExpectColumnValuesToBeBetween,
            "probability_range",
            column="match_probability",
            min_value=0,
            max_value=1,
        ),
    ]


def metrics_suite() -> list:
    return [
        _hard(
            gxe.ExpectColumnValuesToBeBetween,
            "sync_rate_range",
            column="sync_rate",
            min_value=0,
            max_value=1,
        ),
        _hard(gxe.ExpectColumnValuesToBeBetween, "rank_range", column="rank", min_value=1),
        _hard(
            gxe.ExpectColumnPairValuesToBeEqual,
            "statuses_add_up",
            column_A="participants",
            column_B="status_total",
        ),
        # Provinces add up to the national total, per scheme and line.
        _hard(
            gxe.ExpectColumnPairValuesToBeEqual,
            "provinces_add_up",
            column_A="province_total",
            column_B="national_total",
        ),
    ]


def validate_results(results: pd.DataFrame, reasons_text: pd.Series) -> SuiteOutcome:
    """``reasons_text`` is the reasons joined by commas (pipelines.metrics.reasons_text).

    GX sees the result columns with ``reasons`` as text: a column of lists would make it pickle
    the whole frame to fingerprint the batch (16 s for a million rows).
    """
    frame = results.drop(columns=["reasons"]).assign(
        reasons=reasons_text,
        reasons_text=reasons_text,
        has_reasons=reasons_text.str.len() > 0,
        not_synchronized=results["status"] != STATUSES[0],
    )
    return run_suite("results", frame, results_suite(), complete=False)


def validate_metrics(metrics: pd.DataFrame, national_totals: dict[str, int]) -> SuiteOutcome:
    """``national_totals``: participants per line counted on the results, not on the metrics."""
    frame = metrics.assign(
        status_total=metrics[list(STATUSES)].sum(axis=1),
        province_total=metrics.groupby(["scheme", "line"])["participants"].transform("sum"),
        national_total=metrics["line"].map(national_totals),
    )
    return run_suite("metrics", frame, metrics_suite(), complete=False)
