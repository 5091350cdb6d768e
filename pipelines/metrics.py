"""Metrics of design.md from a night's results: per scheme x line x province the status counts,
sync_rate, rank (1 = best) and change since the previous publication; and the reason counts.

Results here carry, beside RESULT_COLUMNS, the registry's insurance-line flags and ``office_code``
(the 63-scheme office a row is counted under), as published in ``results.parquet``, so anyone
can recompute the metrics from that one file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from popsync.contracts import (
    LINES,
    METRIC_COLUMNS,
    NEEDS_CORRECTION,
    REASONS,
    STATUSES,
    SYNCHRONIZED,
)
from popsync.reference.provinces import PROVINCES_63, SCHEME_63_TO_34

REASON_COUNT_COLUMNS = ("run_date", "scheme", "province_code", "status", "reason", "count")


def office_code(registry: pd.DataFrame) -> pd.Series:
    """The (63-scheme) office a row is counted under: its province, else its code's issuer."""
    codes = list(PROVINCES_63)
    known = registry["province_code"].where(registry["province_code"].isin(codes))
    prefix = registry["vss_code"].str.slice(0, 2)
    return known.fillna(prefix.where(prefix.isin(codes))).astype("str")


def in_scheme(office: pd.Series, scheme: str) -> pd.Series:
    """63-scheme office codes -> the unit they belong to in ``scheme``."""
    return office if scheme == "63" else office.map(SCHEME_63_TO_34).astype("str")


def line_mask(results: pd.DataFrame, line: str) -> pd.Series:
    flag = LINES[line]
    if flag is None:
        return pd.Series(True, index=results.index)
    return results[flag].fillna(False).astype(bool)


def reasons_text(reasons: pd.Series) -> pd.Series:
    """Reason lists -> ``"a,b"`` strings ("" for none), in one Arrow call."""
    lists = pa.array(reasons, type=pa.list_(pa.string()), from_pandas=True)
    joined = pc.fill_null(pc.binary_join(lists, ","), "")
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=reasons.index, dtype="str")


def expected_errors(results: pd.DataFrame) -> dict[str, list[float]]:
    """Per office (63-scheme province): [links, expected false links, expected missed links],
    from the published probabilities as fastLink estimates its FDR and FNR: a link of
    probability p is false with probability 1 - p; a row not linked is the missed link of one
    of its candidates with the sum of their probabilities (the best's alone when it lists
    none). Rows whose person no blocking pass found are beyond this estimate. Partitions'
    figures add up (``error_rates``)."""
    linked = results["status"].isin((SYNCHRONIZED, NEEDS_CORRECTION)).to_numpy()
    probability = results["match_probability"].to_numpy(dtype="float64", na_value=np.nan)
    probability = np.nan_to_num(probability, nan=0.0)
    present = probability.copy()
    if "candidates" in results:
        listed = results["candidates"]
        for row in np.flatnonzero((~linked) & listed.notna().to_numpy()).tolist():
            present[row] = sum(c["probability"] for c in json.loads(listed.iat[row]))
    frame = pd.DataFrame({
        "office": results["office_code"].astype("str"),
        "links": linked.astype(np.float64),
        "false": np.where(linked, 1.0 - probability, 0.0),
        "missed": np.where(linked, 0.0, np.minimum(present, 1.0)),
    })
    sums = frame[results["office_code"].notna().to_numpy()].groupby("office").sum()
    return {office: [round(float(v), 6) for v in row]
            for office, row in zip(sums.index, sums.to_numpy(), strict=True)}


def error_rates(partitions: list[dict[str, list[float]]]) -> dict:
    """``expected_errors`` of the partitions added up: per office and for the nation, the
    links, the expected false and missed links, and the rates they give (false-link rate:
    expected false / links; missed-link rate: expected missed / expected true links)."""
    totals: dict[str, np.ndarray] = {}
    for partition in partitions:
        for office, figures in partition.items():
            totals[office] = totals.get(office, np.zeros(3)) + np.asarray(figures)

    def rates(links: float, false: float, missed: float) -> dict:
        true = links - false
        return {"links": int(round(links)), "expected_false": round(false, 1),
                "expected_missed": round(missed, 1),
                "false_link_rate": round(false / links, 6) if links else None,
                "missed_link_rate": round(missed / (true + missed), 6) if true + missed else None}

    nation = sum(totals.values(), np.zeros(3))
    return {"nation": rates(*nation),
            "provinces": {office: rates(*totals[office]) for office in sorted(totals)}}


def national_totals(results: pd.DataFrame) -> dict[str, int]:
    return {line: int(line_mask(results, line).sum()) for line in LINES}


def _grouping(results: pd.DataFrame, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's unit in ``scheme`` as a number (-1: no office), and the units' codes."""
    office, offices = pd.factorize(results["office_code"])
    unit_of_office, units = pd.factorize(in_scheme(pd.Series(offices), scheme))
    return np.where(office >= 0, unit_of_office[np.maximum(office, 0)], -1), units.to_numpy()


def _status_numbers(results: pd.DataFrame) -> np.ndarray:
    """Each row's status as its position in STATUSES (-1: not a contract status)."""
    return pd.Categorical(results["status"], categories=list(STATUSES)).codes.astype(np.int64)


def status_counts(results: pd.DataFrame, schemes: tuple[str, ...]) -> pd.DataFrame:
    """Rows per scheme x line x province x status, as one row per scheme x line x province
    (one ``bincount`` per scheme x line): counts of partitions of the results add up."""
    status = _status_numbers(results)
    blocks = []
    for scheme in schemes:
        unit, units = _grouping(results, scheme)
        for line in LINES:
            counted = line_mask(results, line).to_numpy() & (unit >= 0) & (status >= 0)
            cells = unit[counted] * len(STATUSES) + status[counted]
            table = np.bincount(cells, minlength=len(units) * len(STATUSES))
            counts = pd.DataFrame(table.reshape(len(units), len(STATUSES)), columns=list(STATUSES))
            counts.insert(0, "province_code", pd.array(units, dtype="str"))
            counts.insert(0, "line", line)
            counts.insert(0, "scheme", scheme)
            blocks.append(counts)
    return pd.concat(blocks, ignore_index=True)


def metrics_from_counts(
    counts: pd.DataFrame, run_date: str, previous: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per scheme x line x province with participants in that line, from
    ``status_counts`` (of the whole results, or of its partitions concatenated).

    ``previous``: the previous publication's metrics (same columns); ``change`` is the
    difference in sync_rate, null where the previous publication has no such row.
    """
    keys = ["scheme", "line", "province_code"]
    metrics = counts.groupby(keys, as_index=False, sort=False)[list(STATUSES)].sum()
    metrics["participants"] = metrics[list(STATUSES)].sum(axis=1)
    metrics = metrics[metrics["participants"] > 0].copy()
    metrics["sync_rate"] = metrics[SYNCHRONIZED] / metrics["participants"]
    metrics["rank"] = (
        metrics.groupby(["scheme", "line"])["sync_rate"]
        .rank(ascending=False, method="min")
        .astype("int64")
    )
    metrics["run_date"] = run_date
    if previous is not None and len(previous):
        before = previous[keys + ["sync_rate"]].rename(columns={"sync_rate": "previous_rate"})
        metrics = metrics.merge(before, on=keys, how="left")
        metrics["change"] = metrics["sync_rate"] - metrics["previous_rate"]
    else:
        metrics["change"] = float("nan")
    metrics = metrics[list(METRIC_COLUMNS)].sort_values(["scheme", "line", "rank", "province_code"])
    return metrics.reset_index(drop=True)


def compute_metrics(
    results: pd.DataFrame,
    run_date: str,
    schemes: tuple[str, ...],
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The metrics of one results table (see ``metrics_from_counts``)."""
    return metrics_from_counts(status_counts(results, schemes), run_date, previous)


def merge_reason_counts(partials: list[pd.DataFrame]) -> pd.DataFrame:
    """Reason counts of partitions of the results, added up."""
    keys = [c for c in REASON_COUNT_COLUMNS if c != "count"]
    merged = pd.concat(partials, ignore_index=True).groupby(keys, as_index=False)["count"].sum()
    merged = merged.sort_values(["scheme", "province_code", "status", "reason"], kind="stable")
    return merged[list(REASON_COUNT_COLUMNS)].reset_index(drop=True)


def compute_reason_counts(
    results: pd.DataFrame, run_date: str, schemes: tuple[str, ...]
) -> pd.DataFrame:
    """Rows carrying each reason, per scheme x province x status (reasons of the contract)."""
    lists = pa.array(results["reasons"], type=pa.list_(pa.string()), from_pandas=True)
    row = pc.list_parent_indices(lists).to_numpy()
    reason = pd.Categorical(
        pc.list_flatten(lists).to_numpy(zero_copy_only=False), categories=list(REASONS)
    ).codes.astype(np.int64)
    status = _status_numbers(results)[row]
    blocks = []
    for scheme in schemes:
        unit, units = _grouping(results, scheme)
        unit = unit[row]
        counted = (unit >= 0) & (status >= 0) & (reason >= 0)
        shape = (len(units), len(STATUSES), len(REASONS))
        cells = np.ravel_multi_index((unit[counted], status[counted], reason[counted]), shape)
        table = np.bincount(cells, minlength=int(np.prod(shape))).reshape(shape)
        where = np.nonzero(table)
        blocks.append(
            pd.DataFrame(
                {
                    "province_code": pd.array(units[where[0]], dtype="str"),
                    "status": pd.array(np.array(STATUSES)[where[1]], dtype="str"),
                    "reason": pd.array(np.array(REASONS)[where[2]], dtype="str"),
                    "count": table[where].astype("int64"),
                }
            )
            .sort_values(["province_code", "status", "reason"])
            .assign(scheme=scheme)
        )
    reason_counts = pd.concat(blocks, ignore_index=True)
    reason_counts["run_date"] = run_date
    return reason_counts[list(REASON_COUNT_COLUMNS)]
