"""Sources and their mapping: the shipped VSS-style example, other sources (SQL, fsspec URLs),
quarantine of bad rows, and bad inputs that must stop the night with a clear error."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from pipeline_helpers import read_table, run

from pipelines import cli
from pipelines.config import build_config, load_config
from pipelines.extract import extract
from pipelines.mapping import parse_mapping
from popsync import store
from popsync.errors import PopsyncError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "popsync.example.yaml"


def test_example_config_maps_the_vss_layout(population_path):
    config = load_config(EXAMPLE, population=population_path)
    registry = extract(config.registry)
    assert registry["vss_code"].tolist()[:2] == ["0101234567", "7912345678"]
    assert registry["full_name"].iloc[0] == "Nguyễn Văn An"
    # dd/mm/yyyy, and its partial forms mm/yyyy and yyyy; 30/02 is no date and stays as given
    assert registry["birth_date"].tolist() == [
        "1988-03-05",
        "1992-12",
        "1975",
        "30/02/1990",
        "2001-01-01",
    ]
    assert registry["gender"].tolist() == ["M", "F", "M", "F", "X"]  # 1/2 and Nam/Nữ; X kept
    assert registry["province_code"].tolist() == ["01", "79", "74", "48", "31"]  # zfill
    assert pd.isna(registry["national_id"].iloc[2])
    assert registry["scheme_si_compulsory"].tolist() == [True, True, False, False, True]
    assert registry["scheme_hi"].dtype == "boolean"
    # the optional columns, employer (mã đơn vị) and ward included, as text
    assert registry["employer_code"].tolist()[:3] == ["TA0101A", "TB7901B", "DL25747"]
    assert registry["employer_name"].iloc[0] == "Công ty TNHH An Phát"
    assert registry["ward_code"].tolist()[:2] == ["00004", "26734"]
    assert registry["address"].iloc[0] == "12 Tổ 3, Phường 4"
    assert pd.isna(registry["address"].iloc[3])


def _vss_config(tmp_path, population_path, **changes) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    raw["registry"]["source"] = str(EXAMPLE.parent / raw["registry"]["source"])
    raw["population"]["source"] = str(population_path)
    raw["output"]["dir"] = str(tmp_path / "out")
    for section, values in changes.items():
        raw[section].update(values)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return path


def _as_vss_export(registry: pd.DataFrame) -> pd.DataFrame:
    """Canonical registry rows written the way a VSS export writes them (the example's layout)."""
    day_first = pd.to_datetime(registry["birth_date"], format="%Y-%m-%d", errors="coerce")
    flag = {True: "1", False: "0"}
    return pd.DataFrame(
        {
            "MA_SO_BHXH": registry["vss_code"],
            "HO_TEN": registry["full_name"],
            "NGAY_SINH": day_first.dt.strftime("%d/%m/%Y").fillna(registry["birth_date"]),
            "GIOI_TINH": registry["gender"].map({"M": "1", "F": "2"}),
            "SO_CCCD": registry["national_id"],
            "MA_TINH": registry["province_code"].str.lstrip("0"),
            "BHXH_BAT_BUOC": registry["scheme_si_compulsory"].map(flag),
            "BHXH_TU_NGUYEN": registry["scheme_si_voluntary"].map(flag),
            "BHYT": registry["scheme_hi"].map(flag),
            "BHTN": registry["scheme_ui"].map(flag),
            "MA_THE_BHYT": registry["hi_card_number"],
        }
    )


def test_bad_rows_are_quarantined_and_still_get_a_result(tmp_path, registry_path, population_path):
    sample = pd.read_csv(
        EXAMPLE.parent / "vss_registry_sample.csv",
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
    )
    registry = pd.read_parquet(registry_path).iloc[:41]
    registry.loc[registry.index[40], "birth_date"] = None  # no date, but a good personal ID
    export = pd.concat([_as_vss_export(registry), sample.iloc[3:]], ignore_index=True)
    path = tmp_path / "vss_export.csv"
    export.to_csv(path, index=False, encoding="utf-8-sig")
    config = _vss_config(tmp_path, population_path)
    out = tmp_path / "out"
    assert (
        cli.main(
            ["run", "--config", str(config), "--registry", str(path), "--run-date", "2026-11-20"]
        )
        == 0
    )
    folder = out / store.publication_path("2026-11-20")
    quarantine = pd.read_parquet(folder / "quarantine.parquet")
    found = set(zip(quarantine["row"], quarantine["column"], quarantine["reason"], strict=True))
    assert found == {
        (41, "birth_date", "birth_date_missing"),
        (42, "birth_date", "birth_date_format"),
        (43, "gender", "gender_value"),
        (43, "national_id", "national_id_format"),
    }
    results = pd.read_parquet(folder / "results.parquet")
    assert sorted(results["vss_code"]) == sorted(export["MA_SO_BHXH"])  # one result per row
    assert (results["status"] == "synchronized").sum() > 20  # the mapped rows do match
    assert read_table(out, store.runs)["quarantined"].tolist() == [3]
    # the formula-like name is neutralized in the office's CSV (and stored as text in Excel)
    listed = pd.read_csv(
        folder / store.list_path("63", "31", "csv"), dtype=str, encoding="utf-8-sig"
    )
    assert '\'=HYPERLINK("x")' in listed["Họ và tên"].tolist()


def test_too_many_quarantined_rows_stop_the_night(tmp_path, population_path, capsys):
    config = _vss_config(tmp_path, population_path)  # 2 of 5 rows bad > 20 %
    assert cli.main(["run", "--config", str(config), "--run-date", "2026-11-20"]) == 2
    assert "quarantine_max" in capsys.readouterr().err
    assert not (tmp_path / "out" / store.publication_path("2026-11-20")).exists()


def _write_bad_input(tmp_path, registry_path, kind) -> tuple[Path, str]:
    if kind == "missing":
        return tmp_path / "nowhere.parquet", "no such file"
    if kind == "empty":
        path = tmp_path / "empty.csv"
        path.write_bytes(b"")
        return path, "empty"
    if kind == "not parquet":
        path = tmp_path / "registry.parquet"
        path.write_text("vss_code,full_name\n0101234567,A\n", "utf-8")
        return path, "not a readable Parquet file"
    registry = pd.read_parquet(registry_path)
    path = tmp_path / "registry.csv"
    if kind == "wrong encoding":
        registry.to_csv(path, index=False, encoding="utf-16")
        return path, "not readable as utf-8"
    registry.drop(columns="national_id").to_csv(path, index=False)
    return path, "column 'national_id'"


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "not parquet", "wrong encoding", "lacking a mapped column"]
)
def test_bad_input_stops_the_night_naming_file_and_column(
    tmp_path, registry_path, population_path, capsys, kind
):
    path, expected = _write_bad_input(tmp_path, registry_path, kind)
    out = tmp_path / "out"
    assert run(out, path, population_path, "2026-11-20") == 2
    error = capsys.readouterr().err
    assert str(path) in error and expected in error
    assert not (out / store.publication_path("2026-11-20")).exists()
    assert read_table(out, store.publications).empty
    assert read_table(out, store.runs)["status"].tolist() == ["failed"]


def test_sql_and_fsspec_sources(tmp_path, registry_path):
    registry = pd.read_parquet(registry_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'vss.db'}")
    registry.rename(columns={"full_name": "HO_TEN"}).to_sql("tham_gia", engine, index=False)
    engine.dispose()
    mapping = {"full_name": "HO_TEN"}
    url = f"sqlite:///{tmp_path / 'vss.db'}"
    by_table = build_config(
        {"registry": {"table": "tham_gia", "mapping": mapping}},
        registry=url,
        population="unused.parquet",
    )
    query = "SELECT * FROM tham_gia WHERE province_code = '79'"
    by_query = build_config(
        {"registry": {"query": query, "mapping": mapping}},
        registry=url,
        population="unused.parquet",
    )
    with fsspec.open("memory://inputs/registry.parquet", "wb") as f:
        registry.to_parquet(f, index=False)
    by_url = build_config(registry="memory://inputs/registry.parquet", population="unused.parquet")
    assert extract(by_table.registry)["vss_code"].tolist() == registry["vss_code"].tolist()
    assert set(extract(by_query.registry)["province_code"]) == {"79"}
    pd.testing.assert_frame_equal(extract(by_url.registry), extract(by_table.registry))


@pytest.mark.parametrize(
    "given,named",
    [
        ({"output": {"folder": "x"}}, "output.folder"),
        ({"registry": {"mapping": {"fullname": "HO_TEN"}}}, "registry.mapping.fullname"),
        (
            {"registry": {"mapping": {"birth_date": {"column": "X", "formt": "dd/mm/yyyy"}}}},
            "formt",
        ),
        ({"matching": {"link_probabilty": 0.9}}, "link_probabilty"),
        ({"validation": {"volume_drop_max": 3}}, "validation.volume_drop_max"),
        ({"registry": {"source": "registry.xlsx"}}, "registry.format"),
        ({"workers": 0}, "workers"),
    ],
)
def test_config_errors_name_the_key(tmp_path, given, named):
    path = tmp_path / "bad.yaml"
    given = {
        "registry": {"source": "r.parquet", **given.pop("registry", {})},
        "population": {"source": "p.parquet"},
        **given,
    }
    path.write_text(yaml.safe_dump(given), "utf-8")
    with pytest.raises(PopsyncError, match=named.replace(".", r"\.")):
        load_config(path)


def test_mapping_rules_are_validated():
    with pytest.raises(ValueError, match="only date columns"):
        parse_mapping({"gender": {"column": "G", "format": "dd/mm/yyyy"}}, "registry")
    with pytest.raises(ValueError, match="exactly one of 'column' or 'constant'"):
        parse_mapping({"scheme_ui": {"values": {"1": True}}}, "registry")


def test_dates_read_every_form_and_keep_impossible_ones():
    from pipelines.mapping import apply_mapping

    given = ["29/02/2000", "29/02/1900", "31/04/1990", "00/01/1990", "01/13/1990", "5/6/1970",
             "2/1985", "1970", None, "x"]
    source = pd.DataFrame({"NS": given})
    for column in ("vss_code", "full_name", "gender", "national_id", "province_code",
                   "scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui"):
        source[column] = "1"
    mapping = parse_mapping({"birth_date": {"column": "NS", "format": "dd/mm/yyyy"}}, "registry")
    assert apply_mapping(source, mapping)["birth_date"].fillna("<NA>").tolist() == [
        "2000-02-29", "29/02/1900", "31/04/1990", "00/01/1990", "01/13/1990", "1970-06-05",
        "1985-02", "1970", "<NA>", "x"]


def test_iso_dates_are_kept_checked_and_completed():
    from pipelines.mapping import apply_mapping

    given = ["1990-02-30", "1990-5-1", "2000-02-29", "1900-02-29", "1990-12-31", "1990-13-01",
             "1985-07", "1970", None]
    source = pd.DataFrame({"birth_date": given})
    for column in ("vss_code", "full_name", "gender", "national_id", "province_code",
                   "scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui"):
        source[column] = "1"
    mapping = parse_mapping({}, "registry")
    assert apply_mapping(source, mapping)["birth_date"].fillna("<NA>").tolist() == [
        "1990-02-30", "1990-05-01", "2000-02-29", "1900-02-29", "1990-12-31", "1990-13-01",
        "1985-07", "1970", "<NA>"]


def test_bad_population_rows_are_quarantined_at_their_source_row(
    tmp_path, registry_path, population_path
):
    population = pd.read_parquet(population_path)
    population.loc[5, "personal_id"] = "12345X"  # cannot be a link target
    population.loc[6, "province_code"] = "99"
    bad_population = tmp_path / "population.parquet"
    population.to_parquet(bad_population, index=False)
    out = tmp_path / "out"
    assert run(out, registry_path, bad_population, "2026-11-20") == 0
    folder = out / store.publication_path("2026-11-20")
    quarantine = pd.read_parquet(folder / "quarantine.parquet")
    found = set(zip(quarantine["source"], quarantine["row"], quarantine["reason"], strict=True))
    # rows as a data engineer finds them in the source file (1-based), not in the sorted work file
    assert found == {
        ("population", 6, "personal_id_format"),
        ("population", 7, "province_code_unknown"),
    }
    results = pd.read_parquet(folder / "results.parquet")
    assert len(results) == len(pd.read_parquet(registry_path))
    assert "12345X" not in set(results["personal_id"].dropna())


def test_a_failure_airflow_will_retry_keeps_the_run_running_until_the_last_attempt(
    tmp_path, population_path
):
    from pipelines import steps

    out = tmp_path / "out"
    config = build_config(
        registry=tmp_path / "not-yet-there.parquet", population=population_path, out_dir=out
    )
    work_dir = steps.start_run(config, "2026-11-20")
    with pytest.raises(PopsyncError, match="no such file"):
        steps.plan_extract(work_dir, will_retry=True)
    [attempt] = read_table(out, store.runs).to_dict("records")
    assert attempt["status"] == "running"
    assert "no such file" in attempt["message"] and "retries" in attempt["message"]
    with pytest.raises(PopsyncError, match="no such file"):
        steps.plan_extract(work_dir, will_retry=False)
    [attempt] = read_table(out, store.runs).to_dict("records")
    assert attempt["status"] == "failed" and attempt["finished_at"] is not None
