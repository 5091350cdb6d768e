"""The checks no chunk can make alone (unique keys, row counts against the previous night, one
result per registry row), computed by DuckDB over the night's Parquet datasets, and the merge
of per-chunk Great Expectations outcomes into one outcome per suite for the report."""

from __future__ import annotations

import numpy as np

from expectations.runner import HARD, SAMPLE_SIZE, Finding, SuiteOutcome
from popsync.reference.identifiers import mask


def _finding(expectation: str, column: str | None, reason: str, unexpected: int, rows: int,
             observed, expected: str, samples: list[str] | None = None) -> Finding:
    return Finding(
        expectation=expectation, column=column, severity=HARD, reason=reason,
        success=unexpected == 0, unexpected_count=int(unexpected),
        unexpected_percent=100.0 * unexpected / rows if rows else None,
        observed=observed, expected=expected, samples=samples or [],
        rows=np.array([], dtype=np.int64),
    )


def files_sql(paths) -> str:
    """A DuckDB list literal of file paths (quotes escaped)."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def unique_key(sql, chunks: list[str], key: str, reason: str, rows: int) -> Finding:
    """Rows whose ``key`` another row also holds (nulls are a chunk check's business)."""
    duplicated, = sql.execute(
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM "
        f"read_parquet({files_sql(chunks)}) WHERE {key} IS NOT NULL GROUP BY {key} "
        "HAVING count(*) > 1)"
    ).fetchone()
    samples = []
    if duplicated:
        samples = [mask(str(value)) for value, in sql.execute(
            f"SELECT {key} FROM read_parquet({files_sql(chunks)}) WHERE {key} IS NOT NULL "
            f"GROUP BY {key} HAVING count(*) > 1 LIMIT {SAMPLE_SIZE}").fetchall()]
    return _finding("expect_column_values_to_be_unique", key, reason, int(duplicated), rows,
                    None, "", samples)


def volume(rows: int, minimum: int) -> Finding:
    return _finding("expect_table_row_count_to_be_between", None, "volume_drop",
                    int(rows < minimum), 1, rows, f"min_value={minimum}")


def input_keys(sql, source: str, chunks: list[str], key: str, rows: int, minimum: int
               ) -> SuiteOutcome:
    """The nation-wide part of an input suite: the key is unique, the volume did not drop."""
    import time

    started = time.perf_counter()
    findings = [volume(rows, minimum), unique_key(sql, chunks, key, f"{key}_duplicate", rows)]
    return SuiteOutcome(f"{source} (nation)", rows, findings, time.perf_counter() - started)


def results_cover_registry(sql, results: list[str], registry: list[str], registry_rows: int
                           ) -> SuiteOutcome:
    """Exactly one result per registry row: same count, unique codes, every code a registry's."""
    import time

    started = time.perf_counter()
    rows, = sql.execute(f"SELECT count(*) FROM read_parquet({files_sql(results)})").fetchone()
    outside, = sql.execute(
        f"SELECT count(*) FROM read_parquet({files_sql(results)}) r ANTI JOIN "
        f"read_parquet({files_sql(registry)}) g ON r.vss_code = g.vss_code").fetchone()
    findings = [
        _finding("expect_table_row_count_to_equal", None, "row_count", int(rows != registry_rows),
                 1, int(rows), f"value={registry_rows}"),
        unique_key(sql, results, "vss_code", "vss_code_duplicate", int(rows)),
        _finding("expect_column_values_to_be_in_set", "vss_code", "vss_code_not_in_registry",
                 int(outside), int(rows), None, "value_set=registry codes"),
    ]
    return SuiteOutcome("results (nation)", int(rows), findings, time.perf_counter() - started)


def merge(suite: str, outcomes: list[dict]) -> dict:
    """Chunk outcomes (``SuiteOutcome.as_dict``) of one suite as one: counts added up, the
    first samples kept, a check failed when it failed in any chunk."""
    rows = sum(o["rows"] for o in outcomes)
    merged: dict[tuple, dict] = {}
    for outcome in outcomes:
        for f in outcome["findings"]:
            key = (f["expectation"], f["column"], f["reason"])
            into = merged.setdefault(key, dict(f, unexpected_count=0, samples=[], success=True,
                                               observed=None))
            into["unexpected_count"] += f["unexpected_count"]
            into["success"] = into["success"] and f["success"]
            into["samples"] = (into["samples"] + f["samples"])[:SAMPLE_SIZE]
            if not f["success"] and into["observed"] is None:
                into["observed"] = f["observed"]
    for f in merged.values():
        f["unexpected_percent"] = 100.0 * f["unexpected_count"] / rows if rows else None
    return {
        "suite": suite,
        "rows": rows,
        "chunks": len(outcomes),
        "seconds": round(sum(o["seconds"] for o in outcomes), 3),
        "success": all(f["success"] or f["severity"] != HARD for f in merged.values()),
        "findings": list(merged.values()),
    }
