"""``popsync run`` end to end on a small synthetic nation: what it publishes, checked."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest
from pipeline_helpers import read_table, run

from popsync import store
from popsync.contracts import LINES, RESULT_COLUMNS, STATUSES, SYNCHRONIZED
from popsync.reference import to_34

RUN_DATE = "2026-11-20"


def _publication(out):
    return out / store.publication_path(RUN_DATE)


def test_publishes_every_output(published, registry_path):
    folder = _publication(published)
    for name in ("results.parquet", "quarantine.parquet", "quarantine.csv", "rankings.csv",
                 "validation_report.html", "manifest.json"):
        assert (folder / name).is_file(), name
    results = pd.read_parquet(folder / "results.parquet")
    registry = pd.read_parquet(registry_path)
    assert set(RESULT_COLUMNS) <= set(results.columns)
    assert len(results) == len(registry)
    assert sorted(results["vss_code"]) == sorted(registry["vss_code"])
    publications = read_table(published, store.publications)
    assert publications.to_dict("records")[0]["path"] == store.publication_path(RUN_DATE)
    runs = read_table(published, store.runs)
    assert runs["status"].tolist() == ["succeeded"]
    assert runs["participants"].tolist() == [len(registry)]
    work = next((published / "work").iterdir())
    assert not (work / "population.parquet").exists()  # big intermediates removed once published
    assert (work / "run.json").exists()
    report = (folder / "validation_report.html").read_text("utf-8")
    assert "<link" not in report and "<script" not in report  # opens offline


def _recomputed_metrics(results: pd.DataFrame) -> pd.DataFrame:
    """An independent recomputation: plain crosstabs over results.parquet."""
    rows = []
    for scheme in ("63", "34"):
        province = results["office_code"] if scheme == "63" else results["office_code"].map(to_34)
        for line, flag in LINES.items():
            chosen = results if flag is None else results[results[flag]]
            table = pd.crosstab(province.loc[chosen.index], chosen["status"])
            for code, counts in table.iterrows():
                row = {s: int(counts.get(s, 0)) for s in STATUSES}
                row.update(scheme=scheme, line=line, province_code=code,
                           participants=int(counts.sum()))
                row["sync_rate"] = row[SYNCHRONIZED] / row["participants"]
                rows.append(row)
    return pd.DataFrame(rows)


def test_metrics_in_database_equal_recomputation_from_results(published):
    results = pd.read_parquet(_publication(published) / "results.parquet")
    expected = _recomputed_metrics(results)
    stored = read_table(published, store.metrics)
    keys = ["scheme", "line", "province_code"]
    merged = expected.merge(stored, on=keys, suffixes=("", "_db"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    for column in ("participants", *STATUSES):
        assert (merged[column] == merged[f"{column}_db"]).all(), column
    assert (merged["sync_rate"] - merged["sync_rate_db"]).abs().max() < 1e-12
    # rank 1 is the best rate of its scheme and line; ties share a rank
    for _, group in stored.groupby(["scheme", "line"]):
        best = group.loc[group["rank"] == 1, "sync_rate"]
        assert (best == group["sync_rate"].max()).all()
    assert stored["change"].isna().all()  # no previous publication
    # provinces add up to the nation, in both schemes
    national = len(results)
    for scheme in ("63", "34"):
        chosen = stored[(stored["scheme"] == scheme) & (stored["line"] == "all")]
        assert chosen["participants"].sum() == national


def test_reason_counts_equal_recomputation(published):
    results = pd.read_parquet(_publication(published) / "results.parquet")
    exploded = results.explode("reasons").dropna(subset=["reasons"])
    expected = exploded.groupby(["office_code", "status", "reasons"]).size()
    stored = read_table(published, store.reason_counts).query("scheme == '63'")
    stored = stored.set_index(["province_code", "status", "reason"])["count"]
    assert expected.sort_index().tolist() == stored.sort_index().tolist()
    assert expected.sort_index().index.tolist() == stored.sort_index().index.tolist()


@pytest.mark.parametrize("scheme,code,codes_63", [
    ("63", "79", ["79"]),
    ("34", "79", ["74", "77", "79"]),  # 34-scheme HCMC = Bình Dương + Bà Rịa - Vũng Tàu + HCMC
])
def test_list_rows_equal_unsynchronized_results_of_the_province(published, scheme, code, codes_63):
    folder = _publication(published)
    results = pd.read_parquet(folder / "results.parquet")
    expected = results[results["office_code"].isin(codes_63) & (results["status"] != SYNCHRONIZED)]
    listed = pd.read_csv(folder / store.list_path(scheme, code, "csv"), dtype=str,
                         encoding="utf-8-sig", keep_default_na=False)
    assert (folder / store.list_path(scheme, code, "csv")).read_bytes()[:3] == b"\xef\xbb\xbf"
    assert sorted(listed["Mã số BHXH"]) == sorted(expected["vss_code"])
    workbook = openpyxl.load_workbook(folder / store.list_path(scheme, code, "xlsx"))
    assert workbook.sheetnames == ["Cần điều chỉnh", "Cần xác minh", "Không tìm thấy"]
    in_sheets = []
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref is not None
        assert sheet.cell(1, 1).value == "Mã số BHXH"
        in_sheets += [sheet.cell(r, 1).value for r in range(2, sheet.max_row + 1)]
    assert sorted(in_sheets) == sorted(expected["vss_code"])


def test_rerun_of_a_run_date_replaces_its_publication(tmp_path, registry_path, population_path):
    assert run(tmp_path, registry_path, population_path, RUN_DATE) == 0
    first = read_table(tmp_path, store.metrics)
    assert run(tmp_path, registry_path, population_path, RUN_DATE) == 0
    second = read_table(tmp_path, store.metrics)
    assert len(second) == len(first)
    assert not second.duplicated(["run_date", "scheme", "line", "province_code"]).any()
    assert len(read_table(tmp_path, store.publications)) == 1
    runs = read_table(tmp_path, store.runs)
    assert runs["status"].tolist() == ["succeeded", "succeeded"]  # history kept
    manifest = json.loads((_publication(tmp_path) / "manifest.json").read_text("utf-8"))
    assert manifest["run_id"] == int(runs["run_id"].max())
    # the next night compares itself with this one
    assert run(tmp_path, registry_path, population_path, "2026-11-21") == 0
    metrics = read_table(tmp_path, store.metrics)
    assert metrics.loc[metrics["run_date"] == "2026-11-21", "change"].notna().all()
    assert metrics.loc[metrics["run_date"] == "2026-11-21", "change"].abs().max() < 1e-12
