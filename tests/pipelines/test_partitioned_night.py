"""The night cut into many chunks, partitions and province groups publishes exactly what it
publishes in one piece of each; and a bad block in the middle of a big source stops the night
naming the file and the rows, with nothing published."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pipeline_helpers import read_table, run

from pipelines.night import NIGHT
from popsync import store

RUN_DATE = "2026-11-20"


def _night(tmp_path: Path, name: str, registry: Path, population: Path, **partition) -> Path:
    out = tmp_path / name
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"partition": {"max_rows": 700, **partition}}), "utf-8")
    assert run(out, registry, population, RUN_DATE, "--config", str(config)) == 0
    return out


def _publication(out: Path) -> dict:
    folder = out / store.publication_path(RUN_DATE)
    results = pd.read_parquet(folder / "results.parquet")
    results["reasons"] = results["reasons"].map(",".join)
    lists = {
        str(path.relative_to(folder)): pd.read_csv(path, dtype=str)
        .sort_values("Mã số BHXH" if "Mã số BHXH" in pd.read_csv(path, nrows=0).columns else
                     list(pd.read_csv(path, nrows=0).columns)[0])
        .reset_index(drop=True)
        for path in sorted((folder / "lists").rglob("*.csv"))
    }
    tables = {
        name: read_table(out, table).drop(columns=["run_id"], errors="ignore")
        .sort_values(keys).reset_index(drop=True)
        for name, table, keys in (
            ("metrics", store.metrics, ["scheme", "line", "province_code"]),
            ("reason_counts", store.reason_counts,
             ["scheme", "province_code", "status", "reason"]),
        )
    }
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    return {
        "results": results.sort_values("vss_code").reset_index(drop=True),
        "quarantine": pd.read_parquet(folder / "quarantine.parquet")
        .sort_values(["source", "row", "reason"]).reset_index(drop=True),
        "lists": lists,
        "statuses": manifest["statuses"],
        **tables,
    }


def test_many_chunks_and_partitions_publish_what_one_of_each_publishes(
    tmp_path, registry_path, population_path
):
    whole = _publication(_night(tmp_path, "whole", registry_path, population_path,
                                chunk_rows=1_000_000))
    # the sources in row groups of 90 rows: extracted in pieces of a few row groups each
    small = {}
    for name, path in (("registry", registry_path), ("population", population_path)):
        small[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pq.read_table(path), small[name], row_group_size=90)
    out = _night(tmp_path, "cut", small["registry"], small["population"], chunk_rows=100)
    cut = _publication(out)
    work = next((out / "work").iterdir())
    timings = [json.loads(p.read_text("utf-8")) for p in (work / "timings").glob("*.json")]
    tasks = pd.Series([t["step"] for t in timings]).value_counts()
    # really cut: several chunks per source, several person partitions, a task per group
    assert tasks["extract"] >= 16 and tasks["validate_chunk"] >= 16
    assert tasks["resolve"] >= 4 and tasks["match"] >= 2 and tasks["stage_lists"] >= 2
    assert set(tasks.index) == {s.name for s in NIGHT}  # popsync run ran the declared night
    pd.testing.assert_frame_equal(cut["results"], whole["results"])
    pd.testing.assert_frame_equal(cut["quarantine"], whole["quarantine"])
    pd.testing.assert_frame_equal(cut["metrics"], whole["metrics"])
    pd.testing.assert_frame_equal(cut["reason_counts"], whole["reason_counts"])
    assert cut["statuses"] == whole["statuses"]
    assert cut["lists"].keys() == whole["lists"].keys() and len(cut["lists"]) > 60
    for name, rows in whole["lists"].items():
        pd.testing.assert_frame_equal(cut["lists"][name], rows, obj=name)


def test_bands_sharing_their_cohort_publish_what_each_band_alone_publishes(
    tmp_path, registry_path, population_path
):
    # narrow bands (a year holds several), matched alone or a cohort of one or two years at once
    alone = _night(tmp_path, "alone", registry_path, population_path, max_rows=8,
                   cohort_persons=0)
    shared = _night(tmp_path, "shared", registry_path, population_path, max_rows=8)

    def match_tasks(out: Path) -> int:
        work = next((out / "work").iterdir())
        return sum(json.loads(p.read_text("utf-8"))["step"] == "match"
                   for p in (work / "timings").glob("*.json"))

    assert match_tasks(shared) * 2 < match_tasks(alone)  # really shared
    one, other = _publication(alone), _publication(shared)
    for name in ("results", "quarantine", "metrics", "reason_counts"):
        pd.testing.assert_frame_equal(other[name], one[name], obj=name)
    assert other["statuses"] == one["statuses"]


def _published_dates(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "publications").glob("2*"))


def test_an_unreadable_row_group_in_the_middle_stops_the_night_naming_file_and_rows(
    tmp_path, registry_path, population_path, capsys
):
    table = pq.read_table(registry_path)
    broken = tmp_path / "registry.parquet"
    pq.write_table(table, broken, row_group_size=200, compression="zstd")
    groups = pq.ParquetFile(broken).metadata
    middle = groups.num_row_groups // 2
    offset = groups.row_group(middle).column(0).data_page_offset
    data = bytearray(broken.read_bytes())
    data[offset + 8: offset + 400] = b"\xff" * 392  # garble a page of a middle row group
    broken.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert run(out, broken, population_path, RUN_DATE) != 0
    message = capsys.readouterr().err
    first_row = sum(groups.row_group(i).num_rows for i in range(middle)) + 1
    assert str(broken) in message and f"row group {middle}" in message
    assert f"rows {first_row:,} and after" in message
    assert _published_dates(out) == []


def test_a_bad_line_in_the_middle_of_a_csv_names_its_line(tmp_path, population_path, capsys):
    rows = pa.table({"vss_code": [f"01{i:08d}" for i in range(5000)]}).to_pandas()
    lines = ["vss_code,full_name,birth_date,gender,national_id,province_code,"
             "scheme_si_compulsory,scheme_si_voluntary,scheme_hi,scheme_ui"]
    lines += [f"{code},Nguyễn Văn A,1990-01-01,M,,01,true,false,true,false"
              for code in rows["vss_code"]]
    lines[3001] += ",an extra field"
    source = tmp_path / "registry.csv"
    source.write_text("\n".join(lines) + "\n", "utf-8")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"partition": {"chunk_rows": 1000}}), "utf-8")
    out = tmp_path / "out"
    assert run(out, source, population_path, RUN_DATE, "--config", str(config)) != 0
    message = capsys.readouterr().err
    assert str(source) in message and "line 3002" in message
    assert _published_dates(out) == []


@pytest.mark.parametrize("run_date", ["2026-11-5", "2026-02-30", "26-11-05", "2026-11-05x"])
def test_a_run_date_must_be_a_real_zero_padded_iso_date(tmp_path, registry_path,
                                                        population_path, run_date, capsys):
    with pytest.raises(SystemExit):
        run(tmp_path / "out", registry_path, population_path, run_date)
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert not (tmp_path / "out" / "publications").exists()


def test_impossible_birth_dates_are_quarantined_and_still_get_a_result(
    tmp_path, registry_path, population_path
):
    registry = pd.read_parquet(registry_path)
    registry.loc[5, "birth_date"] = "1990-02-31"  # no such day
    registry.loc[6, "birth_date"] = "2090-01-01"  # after the run date
    registry.loc[7, "birth_date"] = "2027"  # a year still to come
    source = tmp_path / "registry.parquet"
    registry.to_parquet(source)
    out = tmp_path / "out"
    assert run(out, source, population_path, RUN_DATE) == 0
    folder = out / store.publication_path(RUN_DATE)
    quarantine = pd.read_parquet(folder / "quarantine.parquet")
    impossible = quarantine[quarantine["reason"] == "birth_date_impossible"]
    assert sorted(impossible["row"]) == [6, 7, 8] and set(impossible["column"]) == {"birth_date"}
    results = pd.read_parquet(folder / "results.parquet")
    assert set(registry.loc[[5, 6, 7], "vss_code"]) <= set(results["vss_code"])


def test_a_worker_keeps_nothing_of_the_chunks_it_validated(tmp_path, registry_path,
                                                           population_path):
    """``popsync run`` reuses a forked worker for many chunks: Great Expectations leaves each
    validated frame in reference cycles, so without a collection after each step a worker that
    ran the national night's ~118 chunks grew to 6 GiB. (Its last context stays referenced, with
    one chunk's frames: that does not grow.)"""
    import gc

    from pipelines import night, steps
    from pipelines.config import build_config

    config = build_config(registry=registry_path, population=population_path,
                          out_dir=tmp_path / "out")
    work_dir = night.run_night(config, RUN_DATE, until="check_keys", quiet=True)
    chunk = sorted(Path(work_dir, "sources", "registry").glob("*.parquet"))[0]
    rows = pq.read_metadata(chunk).num_rows
    gc.collect()
    gc.disable()  # only the step's own collection may run
    alive = []
    try:
        for _ in range(3):
            steps.validate_chunk(work_dir, piece=str(chunk))
            alive.append(sum(isinstance(o, pd.DataFrame) and len(o) == rows
                             for o in gc.get_objects()))
    finally:
        gc.enable()
    assert alive[0] > 0 and alive == [alive[0]] * 3


def test_a_column_of_the_wrong_kind_stops_the_night_naming_column_reason_and_report(
    tmp_path, registry_path, population_path, capsys
):
    """birth_date stored as integers (20150603) quarantines every row: the message names the
    column, the reason and how to map it, and the failed night has its HTML report (issue 14)."""
    registry = pd.read_parquet(registry_path)
    days = pd.to_datetime(registry["birth_date"], format="%Y-%m-%d", errors="coerce")
    registry = registry[days.notna()].reset_index(drop=True)
    registry["birth_date"] = days.dropna().dt.strftime("%Y%m%d").astype("int64").to_numpy()
    source = tmp_path / "registry.parquet"
    registry.to_parquet(source)
    out = tmp_path / "out"
    assert run(out, source, population_path, RUN_DATE) == 2
    message = capsys.readouterr().err
    assert "column birth_date" in message and "birth_date_format" in message
    assert "registry.mapping.birth_date" in message and "yyyymmdd" in message
    assert str(registry["birth_date"].iloc[0]) not in message  # personal data masked
    report = Path(message.split("validation report: ")[1].split()[0])
    assert report.is_file() and report.suffix == ".html"
    page = report.read_text("utf-8")
    assert "stopped the night" in page and "100.0% of rows quarantined" in page
    assert "birth_date_format" in page and "rows quarantined</span>" in page
    assert _published_dates(out) == []
