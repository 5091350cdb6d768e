"""Per-employer workbooks (Mẫu 02, Mẫu 01, Thông tin) of a small night: where they are, what
they hold, and that a real spreadsheet application (LibreOffice) reads every sheet of every one
back as written."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from pipelines import employers, spreadsheet_check, xlsx
from popsync import store
from popsync.labels import ACTION_LABELS

RUN_DATE = "2026-11-20"


@pytest.fixture(scope="module")
def folder(published):
    return published / store.publication_path(RUN_DATE)


@pytest.fixture(scope="module")
def gathered(folder, registry_path):
    """The night's results beside their registry rows, by VSS code."""
    results = pd.read_parquet(folder / "results.parquet").set_index("vss_code")
    registry = pd.read_parquet(registry_path).set_index("vss_code")
    return results.join(registry[["full_name", "birth_date", "national_id", "ward_code",
                                  "employer_code", "employer_name"]])


def _index(folder, scheme, province) -> pd.DataFrame:
    return pd.read_csv(folder / store.employers_path(scheme, province).with_name(
        store.EMPLOYER_INDEX), dtype=str, encoding="utf-8-sig", keep_default_na=False)


def test_every_office_gets_a_zip_and_its_index_in_both_schemes(folder, gathered):
    offices = sorted(gathered["office_code"].dropna().unique())
    for office in offices:
        index = _index(folder, "63", office)
        mine = gathered[gathered["office_code"] == office]
        assert sorted(index["employer_code"]) == sorted(mine["employer_code"].unique())
        counts = mine.groupby("employer_code")["status"].agg(
            lambda s: (int((s != "synchronized").sum()), int((s == "synchronized").sum())))
        for row in index.itertuples():
            assert (int(row.mau_02), int(row.mau_01)) == counts[row.employer_code]
        with zipfile.ZipFile(folder / store.employers_path("63", office)) as archive:
            assert sorted(archive.namelist()) == sorted(index["workbook"])
    units = sorted(p.name for p in (folder / "employers" / "34").iterdir())
    assert units and all((folder / store.employers_path("34", u)).is_file() for u in units)
    # Bình Dương (74) went into TP Hồ Chí Minh (79): its employers are in the unit's zip
    merged = _index(folder, "34", "79")
    assert set(_index(folder, "63", "74")["employer_code"]) <= set(merged["employer_code"])
    manifest = pd.read_json(folder / "manifest.json", typ="series")
    assert manifest["employer_workbooks"] == sum(
        len(_index(folder, s, p.name)) for s in ("63", "34")
        for p in (folder / "employers" / s).iterdir())


def test_an_employers_workbook_holds_both_forms_and_its_metadata(folder, gathered):
    compulsory = gathered[gathered["employer_code"].str.startswith("DV")]
    employer = compulsory.groupby("employer_code").size().idxmax()
    mine = gathered[gathered["employer_code"] == employer]
    office = mine["office_code"].iloc[0]
    where = store.employer_workbook(folder, "63", office, employer)
    assert where is not None
    assert store.employer_workbook(folder, "63", office, "DV-nobody") is None
    with zipfile.ZipFile(where[0]) as archive:
        book = openpyxl.load_workbook(archive.open(where[1]))
    assert book.sheetnames == ["Mẫu 02", "Mẫu 01", "Thông tin"]
    form_01 = [[c.value for c in row] for row in book["Mẫu 01"].iter_rows()]
    assert form_01[0][0] == "Mã số BHXH"
    assert [r[0] for r in form_01[1:]] == sorted(mine.index[mine["status"] == "synchronized"])
    form_02 = list(book["Mẫu 02"].iter_rows(values_only=True))
    assert [r[0] for r in form_02[1:]] == sorted(mine.index[mine["status"] != "synchronized"])
    info = dict(book["Thông tin"].iter_rows(min_row=2, values_only=True))
    assert info["Mã đơn vị"] == employer
    assert info["Tên đơn vị"] == mine["employer_name"].iloc[0]
    assert info["Ngày đối chiếu"] == "20/11/2026"
    assert info["Số người trong Mẫu 01"] == str(len(form_01) - 1)
    assert info["Số người trong Mẫu 02"] == str(len(form_02) - 1)
    assert "Mẫu 02, cột «Độ tin cậy»" in info
    # a full birth date is a real date shown dd/mm/yyyy
    cell = book["Mẫu 01"]["C2"]
    assert isinstance(cell.value, datetime.datetime) and cell.number_format == "dd/mm/yyyy"
    assert cell.value.strftime("%Y-%m-%d") == mine.loc[form_01[1][0], "birth_date"]


def _form_02_rows(folder, gathered) -> pd.DataFrame:
    """Every Mẫu 02 row of the night's 63-scheme workbooks, as the workbooks hold them."""
    headers = [h for h, _, _ in employers.COLUMNS_02.values()]
    rows = []
    for office in sorted(gathered["office_code"].dropna().unique()):
        with zipfile.ZipFile(folder / store.employers_path("63", office)) as archive:
            for member in archive.namelist():
                book = openpyxl.load_workbook(io.BytesIO(archive.read(member)), read_only=True)
                values = list(book["Mẫu 02"].iter_rows(values_only=True))
                assert list(values[0]) == headers
                rows += values[1:]
                book.close()
    return pd.DataFrame(rows, columns=list(employers.COLUMNS_02)).set_index("vss_code")


def test_form_02_columns_action_feed_duplicates_and_confidence(folder, gathered):
    form = _form_02_rows(folder, gathered)
    truth = gathered.loc[form.index]
    assert truth["status"].ne("synchronized").all()
    assert len(form) == gathered["status"].ne("synchronized").sum()
    actions = truth["reasons"].map(lambda r: "; ".join(ACTION_LABELS[c][0] for c in r))
    assert form["action"].fillna("").eq(actions).all()
    feed = set(pd.read_parquet(folder / "corrections.parquet")["vss_code"])
    in_feed = form.index.isin(feed)
    assert in_feed.any() and form["corrected_by_feed"].eq("Có").eq(in_feed).all()
    assert form["ward_code"].eq(truth["ward_code"]).all()
    assert form["employer_code"].eq(truth["employer_code"]).all()
    # confidence only where the link is not an exact personal ID, rounded to 3 decimals
    exact = truth["id_agrees"].fillna(False).astype(bool).to_numpy()
    assert exact.any() and form.loc[exact, "match_probability"].isna().all()
    fuzzy = ~exact & truth["match_probability"].notna().to_numpy()
    assert fuzzy.any()
    assert np.allclose(form.loc[fuzzy, "match_probability"].astype(float),
                       truth.loc[fuzzy, "match_probability"].round(3))
    # a duplicate registration names the person's other VSS codes
    duplicate = truth["reasons"].map(lambda r: "duplicate_registration" in r)
    assert duplicate.any()
    for code, others in form.loc[duplicate.to_numpy(), "other_vss_codes"].items():
        others = others.split(", ")
        assert code not in others
        assert set(gathered.loc[others, "personal_id"]) == {gathered.loc[code, "personal_id"]}
    # partial birth dates stay text, yyyy or mm/yyyy
    partial = truth["birth_date"].str.len() < 10
    assert partial.any()
    shown = truth.loc[partial, "birth_date"].map(
        lambda d: d if len(d) == 4 else "/".join(reversed(d.split("-"))))
    assert form.loc[partial.to_numpy(), "birth_date"].eq(shown).all()


def test_every_workbook_reads_back_the_same_in_libreoffice(folder, tmp_path):
    """Every workbook of the night, every sheet, through LibreOffice headless to CSV."""
    books = []
    for zipped in sorted((folder / "employers" / "63").glob("*/employers.zip")):
        target = tmp_path / "books" / zipped.parent.name
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(target)
        books += sorted(target.glob("*.xlsx"))
    assert len(books) > 100
    spreadsheet_check.convert(books, tmp_path / "csv")
    assert spreadsheet_check.differences(books, tmp_path / "csv") == []
    # the 34-scheme zips hold the same workbooks, byte for byte
    for zipped in sorted((folder / "employers" / "34").glob("*/employers.zip")):
        with zipfile.ZipFile(zipped) as archive:
            for member in archive.namelist():
                office = member[2:4] if member.startswith("DV") else None
                if office and (tmp_path / "books" / office / member).is_file():
                    assert archive.read(member) == (tmp_path / "books" / office /
                                                    member).read_bytes()


def test_a_long_sheet_and_dates_read_back_in_libreoffice(tmp_path, monkeypatch):
    """A sheet longer than a (lowered) sheet limit goes on on a second sheet; real dates from
    1900-03-01 on, text before and for partial dates; the round trip reads them as written."""
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 4)
    days = pa.array([datetime.date(1990, 1, 2), None, datetime.date(1900, 3, 1), None,
                     datetime.date(1899, 12, 31)], pa.date32())
    text = pa.array(["1990-01-02", "1975", "1900-03-01", "12/1992", "1899-12-31"])
    cells = xlsx.Cells(["Ngày sinh", "n"], [xlsx.Dates(days, text),
                                            pa.array(np.arange(5), pa.int64())])
    book = xlsx.Workbook(tmp_path / "dates.xlsx", cells.headers, [("Mẫu 02", 5)])
    book.begin_sheet([10, 1])
    book.write_rows(cells.rows)
    book.end_sheet()
    book.close()
    spreadsheet_check.convert([tmp_path / "dates.xlsx"], tmp_path / "csv")
    first = spreadsheet_check.read_csv(tmp_path / "csv" / "dates-Mẫu 02.csv")
    second = spreadsheet_check.read_csv(tmp_path / "csv" / "dates-Mẫu 02 (2).csv")
    assert first == [["Ngày sinh", "n"], ["02/01/1990", "0"], ["1975", "1"],
                     ["01/03/1900", "2"]]
    assert second == [["Ngày sinh", "n"], ["12/1992", "3"], ["1899-12-31", "4"]]
    assert spreadsheet_check.differences([tmp_path / "dates.xlsx"], tmp_path / "csv") == []


def test_member_names_are_safe_and_unique():
    taken: set[str] = set()
    assert employers.member_name("DV01/2", taken) == "DV01_2.xlsx"
    assert employers.member_name("DV01_2", taken) == "DV01_2-2.xlsx"
    assert employers.member_name("", taken) == f"{employers.NO_EMPLOYER}.xlsx"


def test_index_is_read_as_csv(folder):
    path = next((folder / "employers" / "63").glob("*/employers.csv"))
    with open(path, encoding="utf-8-sig", newline="") as rows:
        assert next(csv.reader(rows)) == list(employers.INDEX_HEADER)
