"""The night's corrections feed: the fixes VSS's core system can apply without a clerk, as
``corrections.parquet`` and ``corrections.csv`` (contracts.CORRECTION_COLUMNS).

A registry row goes in only when its link is certain and every difference it has is one the
feed fixes, so a row in the feed needs nobody once the core system has applied it:
- ``exact_id``: the registry's personal ID is the linked person's, and only the spelling of the
  name (the same letters once diacritics, case and tone style are set aside) or a partial birth
  date (a year, or month and year, that fits) differ;
- ``reviewer_confirmation``: a reviewer confirmed the person (a standing decision); then every
  field that differs is fixed, the personal ID included.
Anything else (another name, another date or gender under an exact ID, a duplicate registration,
a deceased person) is a clerk's work and stays out. The rows stream through in slices (a DuckDB
reader over the night's result partitions joined with the registry's chunks): memory is bounded
by a slice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from expectations.nation import files_sql
from pipelines.context import RunContext
from pipelines.lists import SLICE_ROWS
from pipelines.steps import DECISIONS_FILE, _chunks, _fresh, step
from popsync.contracts import CONFIRMED, CORRECTION_COLUMNS, NEEDS_CORRECTION
from popsync.text import folded_name

log = logging.getLogger(__name__)

EXACT_ID, REVIEWER_CONFIRMATION = "exact_id", "reviewer_confirmation"
# registry field -> the result's column holding the population database's value
FIELDS = {"full_name": "suggested_full_name", "birth_date": "suggested_birth_date",
          "gender": "suggested_gender", "national_id": "suggested_national_id"}
# The reasons each kind of evidence fixes (a row with any other reason is a clerk's).
FIXES = {
    EXACT_ID: frozenset({"name_mismatch", "birth_date_partial"}),
    REVIEWER_CONFIRMATION: frozenset({"name_mismatch", "birth_date_partial",
                                      "birth_date_mismatch", "gender_mismatch", "missing_id",
                                      "old_id_number", "id_invalid", "id_not_found"}),
}
# What the feed reads of each row: the result, the registry's fields, whether confirmed.
READS = ("vss_code", "province_code", "status", "reasons", "id_agrees", *FIELDS.values(),
         *FIELDS, "confirmed")
SCHEMA = pa.schema([(column, pa.string()) for column in CORRECTION_COLUMNS])
PARQUET, CSV = "corrections.parquet", "corrections.csv"


def _spelling_only(registry: pd.Series, population: pd.Series) -> np.ndarray:
    """Names that are the same letters (diacritics, case, tone style and spacing aside)."""
    folded: dict[str, str] = {}

    def fold(name) -> str:
        if not isinstance(name, str):
            return ""
        if name not in folded:
            folded[name] = folded_name(name)
        return folded[name]

    return np.array([fold(a) == fold(b) and fold(a) != ""
                     for a, b in zip(registry, population, strict=True)], dtype=bool)


def certain_fixes(rows: pd.DataFrame) -> pd.DataFrame:
    """Results joined with their registry fields and ``confirmed`` (the row's link is a
    reviewer's standing confirmation) -> the feed's rows, a row per (vss_code, field), in the
    rows' order then the fields'."""
    evidence = pd.Series(pd.NA, index=rows.index, dtype="object")
    linked = rows["status"].eq(NEEDS_CORRECTION).to_numpy()
    confirmed = rows["confirmed"].fillna(False).to_numpy(dtype=bool) & linked
    exact = rows["id_agrees"].fillna(False).to_numpy(dtype=bool) & linked & ~confirmed
    evidence[confirmed] = REVIEWER_CONFIRMATION
    evidence[exact] = EXACT_ID
    reasons = rows["reasons"]
    for kind, fixes in FIXES.items():
        mine = (evidence == kind).to_numpy()
        fixable = np.array([set(r) <= fixes for r in reasons[mine]], dtype=bool)
        if kind == EXACT_ID:  # a name fixed under an exact ID is a respelling, nothing more
            renamed = rows.loc[mine, "suggested_full_name"].notna().to_numpy()
            fixable &= ~renamed | _spelling_only(rows.loc[mine, "full_name"],
                                                 rows.loc[mine, "suggested_full_name"])
        evidence[np.flatnonzero(mine)[~fixable]] = pd.NA
    kept = rows[evidence.notna()]
    parts = []
    for order, (field, suggested) in enumerate(FIELDS.items()):
        differs = kept[suggested].notna() & kept[suggested].ne(kept[field]).fillna(True)
        part = kept[differs]
        parts.append(pd.DataFrame({
            "vss_code": part["vss_code"], "province_code": part["province_code"],
            "field": field, "registry_value": part[field], "population_value": part[suggested],
            "evidence": evidence[part.index], "_row": part.index, "_field": order}))
    feed = pd.concat(parts).sort_values(["_row", "_field"], kind="stable")
    return feed.loc[:, list(CORRECTION_COLUMNS)].reset_index(drop=True)


def write_feed(slices: Iterable[pd.DataFrame], folder: Path) -> int:
    """The feed of ``slices`` (as ``certain_fixes`` reads them) into ``folder`` as Parquet and
    CSV (UTF-8, a header line), a slice at a time; returns the feed's rows."""
    written = 0
    with pq.ParquetWriter(folder / PARQUET, SCHEMA, compression="zstd") as parquet, \
            pacsv.CSVWriter(folder / CSV, SCHEMA) as csv:
        for rows in slices:
            feed = pa.Table.from_pandas(certain_fixes(rows), schema=SCHEMA, preserve_index=False)
            parquet.write_table(feed)
            csv.write_table(feed)
            written += feed.num_rows
    return written


@step("corrections")
def write_corrections(work_dir: str, resolve: list[str]) -> str:
    """The night's corrections feed into the work folder (``stage`` publishes it), from the
    rows linked with a field to correct, joined with their registry fields and the standing
    confirmations (DuckDB, streamed in slices); returns the feed's folder."""
    ctx = RunContext.load(work_dir)
    folder = _fresh(ctx.path("corrections"))
    registry = files_sql(_chunks(ctx, "registry"))
    decisions = ctx.path(DECISIONS_FILE)
    result_columns = ", ".join(f"r.{c}" for c in ("vss_code", "province_code", "status",
                                                  "reasons", "id_agrees", *FIELDS.values()))
    with ctx.sql() as sql:
        reader = sql.sql(
            f"SELECT {result_columns}, {', '.join('f.' + c for c in FIELDS)}, "
            "d.vss_code IS NOT NULL AS confirmed "
            f"FROM read_parquet({files_sql(resolve)}) r "
            f"LEFT JOIN read_parquet({registry}) f USING (vss_code) "
            "LEFT JOIN (SELECT DISTINCT CAST(vss_code AS VARCHAR) AS vss_code, "
            f"CAST(personal_id AS VARCHAR) AS personal_id FROM read_parquet('{decisions}') "
            f"WHERE decision = '{CONFIRMED}') d "
            "ON d.vss_code = r.vss_code AND d.personal_id = r.personal_id "
            f"WHERE r.status = '{NEEDS_CORRECTION}' AND (r.id_agrees OR d.vss_code IS NOT NULL) "
            "ORDER BY r.vss_code").to_arrow_reader(batch_size=SLICE_ROWS)
        rows = write_feed((batch.to_pandas() for batch in reader), folder)
    log.info("corrections: %d fixes the core system can apply without a clerk", rows)
    return str(folder)
