"""Coverage: per province of permanent residence and insurance line, the living residents, those
linked to at least one registration and the coverage rate, ranked; per province, the list of
living residents linked to no health-insurance registration, by age band (children under 6
first: the state pays their health insurance) and ward.

The population goes from the work folder once matching is done, so ``copy_residents`` copies
the living residents out first; ``count_coverage`` joins them with the resolved results' links.
Both run in DuckDB under ``partition.sql_memory``, spilling to the work folder; the lists are
written one 34-scheme unit at a time, so memory is bounded by the largest unit's uncovered
residents, never by the nation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from expectations.nation import files_sql
from pipelines import lists, publish, xlsx
from pipelines.context import RunContext
from pipelines.partition import BIRTH_YEAR
from pipelines.steps import _chunks, _fresh, step
from popsync import store
from popsync.contracts import (
    AGE_BANDS,
    COVERAGE_COLUMNS,
    LINES,
    NEEDS_CORRECTION,
    SYNCHRONIZED,
    UNKNOWN,
)
from popsync.reference.provinces import PROVINCES_34, PROVINCES_63, codes_63_of, to_34

# A resident is covered by a line when a registration holding it is linked to them with
# confidence (synchronized, or needs_correction: linked, a field to fix).
LINKED_STATUSES = (SYNCHRONIZED, NEEDS_CORRECTION)
RESIDENT_COLUMNS = ("personal_id", "full_name", "birth_date", "gender", "ward_code", "address",
                    BIRTH_YEAR)
UNDER_6 = next(iter(AGE_BANDS))
# The list's columns -> Vietnamese headers, in the order an office reads them.
HEADERS = {
    "personal_id": "Số định danh cá nhân",
    "full_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "gender": "Giới tính",
    "province_code": "Mã tỉnh",
    "ward_code": "Mã xã/phường",
    "address": "Địa chỉ",
    "age_band": "Nhóm tuổi",
    "state_paid": "Trẻ em dưới 6 tuổi (NSNN đóng)",
}
SHEETS = {"0-5": "Trẻ em dưới 6 tuổi", "6-17": "6-17 tuổi", "18-39": "18-39 tuổi",
          "40-59": "40-59 tuổi", "60+": "Từ 60 tuổi", UNKNOWN: "Không rõ tuổi"}


def age_band_sql(birth_year: str, run_year: int) -> str:
    """A SQL expression: the AGE_BANDS label of a birth year (as breakdowns.age_band_numbers)."""
    age = f"({run_year} - {birth_year})"
    cases = " ".join(f"WHEN {age} <= {upper} THEN '{band}'"
                     for band, upper in AGE_BANDS.items() if upper is not None)
    last = list(AGE_BANDS)[-1]
    return (f"CASE WHEN {birth_year} IS NULL OR {age} < 0 THEN '{UNKNOWN}' {cases} "
            f"ELSE '{last}' END")


@step("residents")
def copy_residents(work_dir: str, gate_inputs: str) -> str:
    """The living residents of the 63 provinces (the columns the coverage lists show), out of
    the population chunks, partitioned by province; returns the folder."""
    del gate_inputs  # the population passed its checks
    ctx = RunContext.load(work_dir)
    chunks = _chunks(ctx, "population")
    folder = _fresh(ctx.path("residents"))
    present = set(pq.read_schema(chunks[0]).names) if chunks else set()
    wanted = ", ".join(c if c in present else f"NULL::VARCHAR AS {c}" for c in RESIDENT_COLUMNS)
    codes = ", ".join(f"'{c}'" for c in PROVINCES_63)
    with ctx.sql() as sql:
        if chunks:
            sql.execute(
                f"COPY (SELECT province_code, {wanted} FROM read_parquet({files_sql(chunks)}) "
                f"WHERE NOT coalesce(is_deceased, false) AND province_code IN ({codes})) "
                f"TO '{folder}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (province_code))")
    return str(folder)


def _read_partitioned(folder: Path) -> str:
    return (f"read_parquet('{folder}/*/*.parquet', hive_partitioning = true, "
            "hive_types = {'province_code': VARCHAR})")


def coverage_from_counts(counts: pd.DataFrame, run_date: str,
                         schemes: tuple[str, ...]) -> pd.DataFrame:
    """Per 63-scheme province x age band: ``residents`` and ``covered_<line>`` counts ->
    COVERAGE_COLUMNS rows per scheme x line x province x age band (``all`` bands too), ranked by
    coverage rate within scheme x line x age band (1 = best)."""
    covered = [f"covered_{line}" for line in LINES]
    frames = []
    for scheme in schemes:
        unit = counts["province_code"] if scheme == "63" else counts["province_code"].map(to_34)
        by_band = counts.assign(province_code=unit).groupby(
            ["province_code", "age_band"], as_index=False)[["residents", *covered]].sum()
        total = by_band.groupby("province_code", as_index=False)[["residents", *covered]].sum()
        both = pd.concat([by_band, total.assign(age_band="all")], ignore_index=True)
        for line in LINES:
            frames.append(both[["province_code", "age_band", "residents"]].assign(
                scheme=scheme, line=line, covered=both[f"covered_{line}"]))
    coverage = pd.concat(frames, ignore_index=True)
    coverage = coverage[coverage["residents"] > 0].copy()
    coverage["coverage_rate"] = coverage["covered"] / coverage["residents"]
    coverage["rank"] = coverage.groupby(["scheme", "line", "age_band"])["coverage_rate"].rank(
        ascending=False, method="min").astype("int64")
    coverage["run_date"] = run_date
    coverage = coverage[list(COVERAGE_COLUMNS)].sort_values(
        ["scheme", "line", "age_band", "rank", "province_code"], kind="stable")
    return coverage.reset_index(drop=True)


@step("coverage")
def count_coverage(work_dir: str, residents: str, resolve: list[str],
                   gather_lists: list[str]) -> str:
    """Coverage per province and line into ``coverage.parquet``; each province's list of
    residents without health insurance into the staging folder (made by gather_lists);
    returns the coverage file."""
    del gather_lists  # the staging folder exists
    ctx = RunContext.load(work_dir)
    run_year = date.fromisoformat(ctx.run_date).year
    linked, uninsured = ctx.path("linked.parquet"), _fresh(ctx.path("uninsured"))
    flags = {line: flag for line, flag in LINES.items() if flag is not None}
    statuses = ", ".join(f"'{s}'" for s in LINKED_STATUSES)
    band = age_band_sql(f"r.{BIRTH_YEAR}", run_year)
    with ctx.sql() as sql:
        sql.execute(
            "COPY (SELECT personal_id, "
            + ", ".join(f"bool_or(coalesce({flag}, false)) AS {line}"
                        for line, flag in flags.items())
            + f" FROM read_parquet({files_sql(resolve)}) WHERE personal_id IS NOT NULL "
            f"AND status IN ({statuses}) GROUP BY personal_id) TO '{linked}' (FORMAT parquet)")
        residents_sql = _read_partitioned(Path(residents))
        counts = sql.execute(
            f"SELECT r.province_code, {band} AS age_band, count(*) AS residents, "
            "count(l.personal_id) AS covered_all, "
            + ", ".join(f"count_if(coalesce(l.{line}, false)) AS covered_{line}"
                        for line in flags)
            + f" FROM {residents_sql} r LEFT JOIN '{linked}' l USING (personal_id) "
            "GROUP BY ALL").df()
        sql.execute(
            f"COPY (SELECT r.*, {band} AS age_band FROM {residents_sql} r "
            f"LEFT JOIN '{linked}' l USING (personal_id) WHERE NOT coalesce(l.hi, false)) "
            f"TO '{uninsured}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (province_code))")
    counts = counts.astype({"province_code": "str", "age_band": "str"})
    coverage = coverage_from_counts(counts, ctx.run_date, ctx.config.province_schemes)
    out = ctx.path("coverage.parquet")
    coverage.to_parquet(out, index=False)
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    # threads: Arrow kernels and zlib release the GIL (as lists.write_lists)
    with ThreadPoolExecutor(max(ctx.config.workers, 1)) as pool:
        list(pool.map(lambda unit: write_unit_lists(uninsured, unit, staging,
                                                    ctx.config.province_schemes),
                      PROVINCES_34))
    linked.unlink(missing_ok=True)
    return str(out)


def _ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """Children under 6 first, then by age band, ward, name and personal ID."""
    order = {b: i for i, b in enumerate((*AGE_BANDS, UNKNOWN))}
    return (rows.assign(_band=rows["age_band"].map(order))
            .sort_values(["_band", "ward_code", "full_name", "personal_id"], kind="stable",
                         na_position="first")
            .drop(columns="_band").reset_index(drop=True))


def _cells(rows: pd.DataFrame) -> pd.DataFrame:
    """The list's cells as text (Vietnamese gender, the state-paid flag), neutralized."""
    cells = pd.DataFrame({
        column: rows[column].astype("str") if column in rows else pd.Series("", index=rows.index)
        for column in HEADERS if column != "state_paid"})
    cells["gender"] = cells["gender"].map(lists.GENDER_LABELS).fillna(cells["gender"])
    cells["state_paid"] = np.where(rows["age_band"] == UNDER_6, "Có", "")
    cells = cells.fillna("")
    return lists.neutralize_frame(cells.astype("str"))[list(HEADERS)]


def write_list(rows: pd.DataFrame, folder: Path, scheme: str, code: str) -> None:
    """One province's uninsured residents as xlsx (a sheet per age band with rows, children
    under 6 first) and csv (UTF-8 with BOM, the same order)."""
    rows = _ordered(rows)
    cells = _cells(rows)
    target = folder / store.uninsured_list_path(scheme, code, "xlsx")
    target.parent.mkdir(parents=True, exist_ok=True)
    table = xlsx.Cells(list(HEADERS.values()),
                       [pa.array(cells[c], pa.large_string()) for c in HEADERS])
    bands = rows["age_band"].to_numpy()
    sheets = [(SHEETS[b], np.flatnonzero(bands == b)) for b in SHEETS]
    sheets = [s for s in sheets if len(s[1])] or [(SHEETS[UNDER_6], np.array([], np.int64))]
    xlsx.write_workbook(target, table, sheets, creator="popsync")
    cells.set_axis(list(HEADERS.values()), axis=1).to_csv(
        folder / store.uninsured_list_path(scheme, code, "csv"), index=False, encoding="utf-8-sig")


def write_unit_lists(uninsured: Path, unit: str, folder: Path, schemes: tuple[str, ...]) -> None:
    """The lists of a 34-scheme unit and of its 63-scheme provinces, from the unit's rows."""
    parts = [uninsured / f"province_code={code}" for code in codes_63_of(unit)]
    frames = [pq.read_table(p).to_pandas().assign(province_code=p.name.split("=")[1])
              for p in parts if p.exists()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {c: pd.Series(dtype="str") for c in (*RESIDENT_COLUMNS, "province_code", "age_band")})
    if "63" in schemes:
        for code in codes_63_of(unit):
            write_list(rows[rows["province_code"] == code], folder, "63", code)
    if "34" in schemes:
        write_list(rows, folder, "34", unit)
