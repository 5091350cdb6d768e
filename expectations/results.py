"""Result suites: the night's results and metrics must keep the contract before publication.

Every expectation here is hard: one failure stops publication.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from expectations.runner import HARD, SuiteOutcome, run_suite
from popsync.contracts import REASONS, RESULT_COLUMNS, STATUSES

REASONS_TEXT = rf"^(?:(?:{'|'.join(REASONS)})(?:,|$))*$"


def _hard(expectation_cls, reason: str, **kwargs):
    return expectation_cls(meta={"severity": HARD, "reason": reason}, **kwargs)


def results_suite(registry_rows: int) -> list:
    return [
        *[_hard(gxe.ExpectColumnToExist, "missing_column", column=c) for c in RESULT_COLUMNS],
        # Exactly one result per registry row: same count, unique keys, every key a registry key.
        _hard(gxe.ExpectTableRowCountToEqual, "row_count", value=registry_rows),
        _hard(gxe.ExpectColumnValuesToNotBeNull, "vss_code_missing", column="vss_code"),
        _hard(gxe.ExpectColumnValuesToBeUnique, "vss_code_duplicate", column="vss_code"),
        # (a derived flag: GX would serialize a value set of millions of codes per metric)
        _hard(
            gxe.ExpectColumnValuesToBeInSet,
            "vss_code_not_in_registry",
            column="in_registry",
            value_set=[True],
        ),
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


def validate_results(
    results: pd.DataFrame, reasons_text: pd.Series, registry_codes: pd.Series, workers: int = 1
) -> SuiteOutcome:
    """``reasons_text`` is the reasons joined by commas (pipelines.metrics.reasons_text);
    ``workers``: processes sharing the suite's expectations.

    GX sees the result columns with ``reasons`` as text: a column of lists would make it pickle
    the whole frame to fingerprint the batch (16 s for a million rows).
    """
    in_registry = pc.is_in(
        pa.array(results["vss_code"], from_pandas=True),
        value_set=pa.array(registry_codes, from_pandas=True),
    )
    frame = results.drop(columns=["reasons"]).assign(
        reasons=reasons_text,
        reasons_text=reasons_text,
        has_reasons=reasons_text.str.len() > 0,
        not_synchronized=results["status"] != STATUSES[0],
        in_registry=in_registry.to_numpy(zero_copy_only=False),
    )
    return run_suite(
        "results", frame, results_suite(len(registry_codes)), complete=False, workers=workers
    )


def validate_metrics(metrics: pd.DataFrame, national_totals: dict[str, int]) -> SuiteOutcome:
    """``national_totals``: participants per line counted on the results, not on the metrics."""
    frame = metrics.assign(
        status_total=metrics[list(STATUSES)].sum(axis=1),
        province_total=metrics.groupby(["scheme", "line"])["participants"].transform("sum"),
        national_total=metrics["line"].map(national_totals),
    )
    return run_suite("metrics", frame, metrics_suite(), complete=False)
