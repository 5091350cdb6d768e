"""The GX suites catch what they promise: lost or doubled results, unknown statuses and reasons,
provinces that do not add up, broken keys; and metrics are computed as design.md defines them."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from expectations import nation
from expectations.inputs import minimum_rows, validate_registry
from expectations.results import validate_metrics, validate_results
from pipelines import metrics
from popsync.contracts import RESULT_COLUMNS


def _results(rows):
    """Hand-made results: (vss_code, office, status, reasons, hi flag)."""
    frame = pd.DataFrame(
        rows, columns=["vss_code", "office_code", "status", "reasons", "scheme_hi"]
    )
    for column in RESULT_COLUMNS:
        if column not in frame:
            frame[column] = None
    frame["province_code"] = frame["office_code"]
    frame["match_probability"] = 0.99
    for flag in ("scheme_si_compulsory", "scheme_si_voluntary", "scheme_ui"):
        frame[flag] = False
    return frame


RESULTS = _results(
    [
        ("7400000001", "74", "synchronized", [], True),
        ("7700000001", "77", "needs_correction", ["name_mismatch"], True),
        ("7900000001", "79", "synchronized", [], False),
        ("7900000002", "79", "unmatched", ["missing_id", "no_candidate"], True),
        ("0100000001", "01", "synchronized", [], True),
    ]
)


def _check_results(results):
    outcome = validate_results(results, metrics.reasons_text(results["reasons"]))
    return {f.reason for f in outcome.hard_failures}


def _check_coverage(tmp_path, partitions, registry=RESULTS[["vss_code"]]):
    """The nation-wide result checks (DuckDB) over results written as partition files."""
    paths = []
    for index, part in enumerate(partitions):
        paths.append(str(tmp_path / f"results-{index}.parquet"))
        part[["vss_code", "status"]].to_parquet(paths[-1])
    registry.to_parquet(tmp_path / "registry.parquet")
    with duckdb.connect() as sql:
        outcome = nation.results_cover_registry(
            sql, paths, [str(tmp_path / "registry.parquet")], len(registry))
    return {f.reason for f in outcome.hard_failures}


def test_result_checks_across_partitions_catch_lost_doubled_and_foreign_rows(tmp_path):
    assert _check_coverage(tmp_path, [RESULTS.iloc[:2], RESULTS.iloc[2:]]) == set()
    assert _check_coverage(tmp_path, [RESULTS.iloc[:2], RESULTS.iloc[3:]]) == {"row_count"}
    # the same row resolved in two partitions
    assert _check_coverage(tmp_path, [RESULTS.iloc[:3], RESULTS.iloc[2:]]) == {
        "row_count", "vss_code_duplicate"}
    foreign = RESULTS.copy()
    foreign.loc[0, "vss_code"] = "7400000999"
    assert _check_coverage(tmp_path, [foreign]) == {"vss_code_not_in_registry"}


def test_results_suite_passes_good_results_and_catches_broken_ones():
    assert _check_results(RESULTS) == set()
    wrong = RESULTS.copy()
    wrong.loc[0, "status"] = "matched"
    wrong.at[1, "reasons"] = ["typo"]
    wrong.at[2, "reasons"] = ["deceased"]  # synchronized with a reason
    assert {"status_unknown", "reason_unknown", "reasons_vs_status"} <= _check_results(wrong)


def test_metrics_follow_design_and_the_suite_checks_them():
    previous = pd.DataFrame(
        {"scheme": ["34"], "line": ["all"], "province_code": ["79"], "sync_rate": [0.25]}
    )
    computed = metrics.compute_metrics(RESULTS, "2026-11-21", ("63", "34"), previous)
    hcmc = computed.query("scheme == '34' and line == 'all' and province_code == '79'").iloc[0]
    assert (
        hcmc["participants"],
        hcmc["synchronized"],
        hcmc["needs_correction"],
        hcmc["unmatched"],
    ) == (4, 2, 1, 1)  # 74 + 77 + 79
    assert hcmc["sync_rate"] == 0.5 and hcmc["change"] == pytest.approx(0.25)
    ranks = computed.query("scheme == '63' and line == 'all'").set_index("province_code")["rank"]
    assert ranks.to_dict() == {"01": 1, "74": 1, "79": 3, "77": 4}  # ties share the best rank
    assert computed.query("scheme == '63' and line == 'hi' and province_code == '79'")[
        "participants"
    ].tolist() == [1]
    assert computed.query("line == 'ui'").empty  # nobody holds unemployment insurance here
    totals = metrics.national_totals(RESULTS)
    assert not validate_metrics(computed, totals).hard_failures
    broken = computed.copy()
    broken.loc[0, "participants"] += 1
    failed = {f.reason for f in validate_metrics(broken, totals).hard_failures}
    assert failed == {"statuses_add_up", "provinces_add_up"}
    counts = metrics.compute_reason_counts(RESULTS, "2026-11-21", ("34",))
    assert counts.query("province_code == '79'").set_index("reason")["count"].to_dict() == {
        "missing_id": 1,
        "name_mismatch": 1,
        "no_candidate": 1,
    }


def _flawed_registry() -> pd.DataFrame:
    registry = pd.DataFrame(
        {
            "vss_code": ["0100000001", "0100000001", "7900000002"],
            "full_name": ["A", "B", "C"],
            "birth_date": ["1990-01-01", "1990", "1990-13"],
            "gender": ["M", "F", "F"],
            "national_id": ["001090000001", None, "12"],
            "province_code": ["01", "01", "99"],
            **{
                flag: [True, False, True]
                for flag in (
                    "scheme_si_compulsory",
                    "scheme_si_voluntary",
                    "scheme_hi",
                    "scheme_ui",
                )
            },
        }
    )
    registry["office_code"] = metrics.office_code(registry)
    return registry


def test_registry_keys_and_volume_are_hard_failures(tmp_path):
    registry = _flawed_registry()
    chunks = [str(tmp_path / "part-0.parquet"), str(tmp_path / "part-1.parquet")]
    registry.iloc[:1].to_parquet(chunks[0])  # the duplicate code spans two chunks
    registry.iloc[1:].to_parquet(chunks[1])
    with duckdb.connect() as sql:
        keys = nation.input_keys(sql, "registry", chunks, "vss_code", len(registry),
                                 minimum_rows(10, 0.3))
    assert {f.reason for f in keys.hard_failures} == {"vss_code_duplicate", "volume_drop"}
    duplicate = next(f for f in keys.hard_failures if f.reason == "vss_code_duplicate")
    assert duplicate.unexpected_count == 2 and "0100000001" not in duplicate.samples[0]
    outcome = validate_registry(registry, "2026-11-20")
    assert not outcome.hard_failures
    rows = {f.reason: f.rows.tolist() for f in outcome.row_failures}
    assert rows == {
        "birth_date_format": [2],
        "national_id_format": [2],
        "province_code_unknown": [2],
    }
    assert registry["office_code"].tolist() == ["01", "01", "79"]  # unknown province: code's prefix
    assert minimum_rows(1000, 0.3) == 700 and minimum_rows(None, 0.3) == 1


def test_gx_validates_without_fingerprinting_each_batch(monkeypatch):
    """GX's batch fingerprint (hash of every cell, unused by popsync) is 40 % of validation time
    at a million rows; the runner turns it off. Fails if a GX upgrade fingerprints again."""
    from great_expectations.execution_engine import pandas_execution_engine

    fingerprinted = []
    real = pandas_execution_engine.hash_pandas_dataframe
    monkeypatch.setattr(
        pandas_execution_engine,
        "hash_pandas_dataframe",
        lambda frame: fingerprinted.append(len(frame)) or real(frame),
    )
    outcome = validate_registry(_flawed_registry(), "2026-11-20")
    assert {f.reason for f in outcome.row_failures} == {
        "birth_date_format", "national_id_format", "province_code_unknown"}
    assert fingerprinted == []


def test_birth_dates_before_the_engines_range_are_quarantined_as_too_early():
    """A well-formed date before 1900 (the earliest year a personal ID encodes) is no typing
    slip of the format: its own reason (issue 14)."""
    registry = pd.concat([_flawed_registry()] * 2, ignore_index=True)
    registry["vss_code"] = [f"01000000{i:02d}" for i in range(len(registry))]
    registry["birth_date"] = ["1899-12-31", "0990", "1900-01-01", "1850-06", "19x0", "1990"]
    registry["office_code"] = metrics.office_code(registry)
    rows = {f.reason: f.rows.tolist() for f in validate_registry(registry, "2026-11-20")
            .row_failures if f.column == "birth_date"}
    assert rows == {"birth_date_too_early": [0, 1, 3], "birth_date_format": [4]}


def test_suites_use_great_expectations_native_severity():
    """Hard checks are GX ``critical``, quarantining ones ``warning``; meta carries only the
    quarantine reason."""
    from great_expectations.expectations.metadata_types import FailureSeverity

    from expectations import inputs, results

    suites = [inputs.registry_suite(), inputs.population_suite(), results.results_suite(),
              results.metrics_suite()]
    severities = set()
    for suite in suites:
        for expectation in suite:
            assert set(expectation.meta) == {"reason"}, expectation.meta
            severities.add(expectation.severity)
    assert severities == {FailureSeverity.CRITICAL, FailureSeverity.WARNING}
