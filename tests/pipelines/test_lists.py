"""The province lists (``pipelines.lists`` over ``pipelines.xlsx``), read back with openpyxl, the
csv module and xml.etree: what an office opens."""

from __future__ import annotations

import csv
import math
import zipfile
from xml.etree import ElementTree

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from pipelines import lists, xlsx
from popsync import store

HEADERS = [
    "Mã số BHXH", "Họ và tên", "Ngày sinh", "Giới tính", "Số định danh cá nhân", "Mã tỉnh",
    "Tình trạng", "Lý do", "Họ tên theo CSDL dân cư", "Ngày sinh theo CSDL dân cư",
    "Giới tính theo CSDL dân cư", "Số định danh theo CSDL dân cư", "Độ tin cậy",
]
SHEETS = ["Cần điều chỉnh", "Cần xác minh", "Không tìm thấy"]
LONG_NAME = "Nguyễn " * 12  # 84 characters: its column is capped at 60
TRICKY_NAMES = [
    "Nguyễn Thị Hòa",
    'Trần & Lê <Văn> "Bé"',
    "   Phạm Minh",
    '=HYPERLINK("http://x")',
    "+84 Lê",
    "-Đỗ",
    "@Vũ",
    "\tHồ",
    "Lan\x00\x07\x1f\x0b",
    "Hai\ndòng",
    "Mai\rHoa",
    "Tên_x0041_lạ",
    LONG_NAME,
]
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _row(vss_code, office, status, **fields):
    return {
        "vss_code": vss_code, "province_code": office, "office_code": office, "status": status,
        "reasons": [], "full_name": "Lê Văn An", "birth_date": "1980-01-02", "gender": "M",
        "national_id": "079080000001", "suggested_full_name": None, "suggested_birth_date": None,
        "suggested_gender": None, "suggested_national_id": None, "match_probability": 1.0,
        **fields,
    }


@pytest.fixture
def listed() -> pd.DataFrame:
    rows = [
        _row(f"79000000{i:02d}", "79", "needs_correction", full_name=name,
             reasons=["name_mismatch"], suggested_full_name="Nguyễn Thị Hòa",
             match_probability=0.98765)
        for i, name in enumerate(TRICKY_NAMES)
    ]
    rows += [
        _row("7900000100", "79", "synchronized"),  # never listed
        _row("7900000101", "79", "needs_review", national_id="001234", gender="F",
             reasons=["missing_id", "ambiguous"], suggested_gender="M",
             suggested_national_id="001234567890", match_probability=0.5),
        _row("7900000102", "79", "unmatched", national_id=None, reasons=["no_candidate"],
             match_probability=float("nan"), birth_date="1975"),
        _row("7400000001", "74", "needs_correction", reasons=["birth_date_partial"],
             birth_date="1990-05", suggested_birth_date="1990-05-17", match_probability=0.9),
        _row("0100000001", "01", "needs_review", reasons=["gender_mismatch", "deceased"],
             suggested_gender="F", match_probability=0.7),
        _row("3100000001", "31", "synchronized"),  # a province with nobody to fix
    ]
    return pd.DataFrame(rows)


def _expected(row: pd.Series) -> tuple:
    """The list's cells of a listed row, written out by hand."""
    reasons = {
        "name_mismatch": "Họ tên không khớp", "missing_id": "Thiếu số định danh cá nhân",
        "ambiguous": "Nhiều người gần giống, cần xác minh",
        "no_candidate": "Không tìm thấy trong CSDL dân cư",
        "birth_date_partial": "Ngày sinh không đầy đủ", "gender_mismatch": "Giới tính không khớp",
        "deceased": "Đã qua đời theo CSDL dân cư",
    }
    status = dict(zip(["needs_correction", "needs_review", "unmatched"], SHEETS, strict=True))
    genders = {"M": "Nam", "F": "Nữ"}
    row = row.where(row.notna(), None)  # a missing value is an empty cell
    probability = row["match_probability"]
    return (
        row["vss_code"], _as_written(row["full_name"]), row["birth_date"], genders[row["gender"]],
        row["national_id"], row["province_code"], status[row["status"]],
        "; ".join(reasons[r] for r in row["reasons"]) or None, row["suggested_full_name"],
        row["suggested_birth_date"], genders.get(row["suggested_gender"]),
        row["suggested_national_id"], None if probability is None else round(probability, 3),
    )


def _as_written(name: str) -> str:
    """A name as the workbook holds it: control characters dropped, formulas neutralized, and
    a literal ``_xHHHH_`` escaped the way Excel expects (Excel shows it unescaped)."""
    name = "".join(c for c in name if c >= " " or c in "\t\n\r")
    name = name.replace("_x0041_", "_x005F_x0041_")
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def _publication(tmp_path, listed, slice_rows=None):
    """The lists of ``listed`` as the night writes them, fed in slices of ``slice_rows``."""
    folder = tmp_path / "publication"
    unsynchronized = listed[listed["status"] != "synchronized"]
    size = slice_rows or max(len(unsynchronized), 1)
    slices = [unsynchronized.iloc[i:i + size] for i in range(0, len(unsynchronized), size)]
    files = lists.write_lists(
        slices, listed["office_code"].dropna().unique(), folder, ("63", "34"), scratch=tmp_path)
    return folder, files


def test_every_province_gets_both_files_in_both_schemes(tmp_path, listed):
    folder, files = _publication(tmp_path, listed)
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    expected = sorted(
        store.list_path(scheme, code, fmt)
        for scheme, codes in (("63", ["01", "31", "74", "79"]), ("34", ["01", "31", "79"]))
        for code in codes for fmt in ("xlsx", "csv")
    )
    assert written == expected and files == len(expected)


def test_workbook_sheets_header_style_pane_filter_and_widths(tmp_path, listed):
    folder, _ = _publication(tmp_path, listed)
    workbook = openpyxl.load_workbook(folder / store.list_path("63", "79", "xlsx"))
    assert workbook.sheetnames == SHEETS
    assert workbook.properties.creator == "popsync"
    counts = {"Cần điều chỉnh": len(TRICKY_NAMES), "Cần xác minh": 1, "Không tìm thấy": 1}
    for sheet in workbook.worksheets:
        assert [c.value for c in sheet[1]] == HEADERS
        for cell in sheet[1]:
            assert cell.font.b
            assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == "FFDDEBF7"
            assert cell.border.left.style == cell.border.bottom.style == "thin"
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:M{counts[sheet.title] + 1}"
        assert sheet.max_row == counts[sheet.title] + 1
    corrections = workbook["Cần điều chỉnh"]
    widths = [corrections.column_dimensions[letter].width for letter in "ABCDEFGHIJKLM"]
    assert widths[1] == _excel_width(60)  # the long name, capped
    assert widths[0] == _excel_width(len("Mã số BHXH") + 2)  # the header is wider than codes
    assert widths[7] == _excel_width(len("Họ tên không khớp") + 2)  # the reason is wider
    assert widths[12] == _excel_width(len("Độ tin cậy") + 2)
    unmatched = workbook["Không tìm thấy"]  # widths fit each sheet's own rows
    reason = "Không tìm thấy trong CSDL dân cư"
    assert unmatched.column_dimensions["H"].width == _excel_width(len(reason) + 2)
    assert unmatched.column_dimensions["B"].width == _excel_width(len("Họ và tên") + 2)


def _excel_width(characters: int) -> float:
    """Excel's stored width of a column showing ``characters`` Calibri-11 digits."""
    return int((int(characters * 7 + 0.5) + 5) / 7 * 256) / 256


@pytest.mark.parametrize("scheme", ["63", "34"])
def test_cells_equal_the_input_rows_per_status(tmp_path, listed, scheme):
    folder, _ = _publication(tmp_path, listed)
    workbook = openpyxl.load_workbook(folder / store.list_path(scheme, "79", "xlsx"))
    offices = ["79"] if scheme == "63" else ["74", "77", "79"]
    listed = listed[listed["office_code"].isin(offices)]
    for code, name in zip(["needs_correction", "needs_review", "unmatched"], SHEETS, strict=True):
        expected = [_expected(row) for _, row in listed[listed["status"] == code].iterrows()]
        sheet = workbook[name]
        assert list(sheet.iter_rows(min_row=2, values_only=True)) == expected
        for row in sheet.iter_rows(min_row=2):
            for cell in row[:-1]:
                assert cell.value is None or cell.data_type == "s"  # text stays text
    review = workbook["Cần xác minh"]
    assert review["E2"].value == "001234"  # a numeric-looking ID keeps its zeros
    assert review["M2"].value == 0.5 and review["M2"].data_type == "n"
    assert workbook["Không tìm thấy"]["E2"].value is None  # missing: an empty cell
    names = [row[1] for row in workbook["Cần điều chỉnh"].iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\")" in names and "   Phạm Minh" in names
    assert "Lan" in names and "Mai\rHoa" in names and "Hai\ndòng" in names


def test_a_province_with_nobody_to_fix_gets_empty_sheets(tmp_path, listed):
    folder, _ = _publication(tmp_path, listed)
    workbook = openpyxl.load_workbook(folder / store.list_path("63", "31", "xlsx"))
    assert workbook.sheetnames == SHEETS
    for sheet in workbook.worksheets:
        assert sheet.max_row == 1 and [c.value for c in sheet[1]] == HEADERS
        assert sheet.auto_filter.ref == "A1:M1" and sheet.freeze_panes == "A2"
    text = (folder / store.list_path("63", "31", "csv")).read_text("utf-8-sig")
    assert text == ",".join(HEADERS) + "\n"


def test_every_part_is_xml_and_declared_and_filters_are_named(tmp_path, listed):
    folder, _ = _publication(tmp_path, listed)
    with zipfile.ZipFile(folder / store.list_path("34", "79", "xlsx")) as archive:
        assert archive.testzip() is None
        parts = {name: ElementTree.fromstring(archive.read(name)) for name in archive.namelist()}
    types = parts["[Content_Types].xml"]
    declared = {e.get("PartName") for e in types if e.tag.endswith("Override")}
    defaults = {e.get("Extension") for e in types if e.tag.endswith("Default")}
    for name in parts:
        if name != "[Content_Types].xml":
            assert f"/{name}" in declared or (name.endswith(".rels") and "rels" in defaults), name
    assert {f"/{name}" for name in parts} >= declared
    filters = parts["xl/workbook.xml"].findall(f"{MAIN}definedNames/{MAIN}definedName")
    assert [(f.get("name"), f.get("localSheetId"), f.get("hidden"), f.text) for f in filters] == [
        ("_xlnm._FilterDatabase", "0", "1", "'Cần điều chỉnh'!$A$1:$M$15"),
        ("_xlnm._FilterDatabase", "1", "1", "'Cần xác minh'!$A$1:$M$2"),
        ("_xlnm._FilterDatabase", "2", "1", "'Không tìm thấy'!$A$1:$M$2"),
    ]
    sheet = parts["xl/worksheets/sheet1.xml"]
    pane = sheet.find(f"{MAIN}sheetViews/{MAIN}sheetView/{MAIN}pane")
    assert (pane.get("state"), pane.get("ySplit"), pane.get("topLeftCell")) == ("frozen", "1", "A2")
    spaced = [t for t in sheet.iter(f"{MAIN}t") if t.text and t.text != t.text.strip()]
    assert "   Phạm Minh" in {t.text for t in spaced}
    for t in spaced:  # else Excel may drop the spaces at either end
        assert t.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve", t.text
    references = [c.get("r") for c in sheet.iter(f"{MAIN}c")]
    assert references[:14] == [*(f"{c}1" for c in "ABCDEFGHIJKLM"), "A2"]
    assert [r.get("r") for r in sheet.iter(f"{MAIN}row")] == [str(n) for n in range(1, 16)]


def test_csv_has_bom_headers_and_the_rows_neutralized(tmp_path, listed):
    folder, _ = _publication(tmp_path, listed)
    path = folder / store.list_path("34", "79", "csv")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == HEADERS
    listed = listed[listed["office_code"].isin(["74", "79"]) & (listed["status"] != "synchronized")]
    assert [r[0] for r in rows[1:]] == listed["vss_code"].tolist()
    by_code = {r[0]: r for r in rows[1:]}
    assert by_code["7900000003"][1] == "'=HYPERLINK(\"http://x\")"
    assert by_code["7900000010"][1] == "Mai\rHoa"  # quoted, so the CR stays in its field
    assert by_code["7900000101"][4] == "001234"
    reasons = "Thiếu số định danh cá nhân; Nhiều người gần giống, cần xác minh"
    assert by_code["7900000101"][7] == reasons  # quoted: its comma is the label's
    assert by_code["7900000101"][12] == "0.5" and by_code["7900000000"][12] == "0.98765"
    assert by_code["7900000102"][4] == "" and by_code["7900000102"][12] == ""
    # an office the 2025 merger left alone has the same files in both schemes
    for fmt in ("xlsx", "csv"):
        assert (folder / store.list_path("34", "01", fmt)).read_bytes() == (
            folder / store.list_path("63", "01", fmt)).read_bytes()


@pytest.mark.parametrize("slice_rows", [1, 3])
def test_rows_streamed_in_slices_write_the_same_bytes_as_one_slice(tmp_path, listed,
                                                                    slice_rows):
    (tmp_path / "one").mkdir()
    (tmp_path / "sliced").mkdir()
    one, _ = _publication(tmp_path / "one", listed)
    sliced, _ = _publication(tmp_path / "sliced", listed, slice_rows=slice_rows)
    paths = sorted(one.rglob("*.*"))
    assert len(paths) == 14
    for path in paths:
        assert path.read_bytes() == (sliced / path.relative_to(one)).read_bytes(), path
    assert [p.name for p in tmp_path.glob("*/lists-*")] == []  # the spill is removed


def test_a_sheet_over_2_gib_is_written_in_zip64(tmp_path):
    cells = xlsx.Cells(["h"], [pa.array(["v", "w"])])
    book = xlsx.Workbook(tmp_path / "big.xlsx", ["h"], [("Sheet", 2)])
    book.begin_sheet([1], size=3 * 2**30)  # what 2.5 M rows of a wide list would take
    book.write_rows(cells.rows)
    book.end_sheet()
    book.close()
    sheet = openpyxl.load_workbook(tmp_path / "big.xlsx").active
    assert [c.value for c in sheet["A"]] == ["h", "v", "w"]
    # the sheet's local header carries the ZIP64 extra field (id 1) after its name
    name = b"xl/worksheets/sheet1.xml"
    data = (tmp_path / "big.xlsx").read_bytes()
    assert data[data.index(name) + len(name):][:2] == b"\x01\x00"


def test_a_sheet_must_get_the_rows_it_announced(tmp_path):
    cells = xlsx.Cells(["h"], [pa.array(["v", "w"])])
    book = xlsx.Workbook(tmp_path / "x.xlsx", ["h"], [("Sheet", 3)])
    book.begin_sheet([1])
    book.write_rows(cells.rows)
    with pytest.raises(ValueError, match="2 rows written of 3"):
        book.end_sheet()


def test_list_rows_and_neutralize(listed):
    rows = lists.list_rows(listed[listed["status"] != "synchronized"])
    assert list(rows.columns) == list(lists.HEADERS) and len(rows) == len(TRICKY_NAMES) + 4
    assert rows.loc[3, "full_name"] == "'=HYPERLINK(\"http://x\")"
    assert rows.loc[len(TRICKY_NAMES) + 1, "national_id"] == ""
    assert math.isnan(rows.loc[len(TRICKY_NAMES) + 1, "match_probability"])
    text = pd.Series(["=1+1", "a", None, "-x"], index=[5, 6, 7, 8])
    neutralized = lists.neutralize(text)
    assert neutralized.index.tolist() == [5, 6, 7, 8]
    assert neutralized[[5, 6, 8]].tolist() == ["'=1+1", "a", "'-x"] and pd.isna(neutralized[7])
    # quarantine.csv's cells: control characters go as in the lists, a formula they hid is caught
    assert lists.neutralize(pd.Series(["\x00=1+1", "a\x07b\tc"])).tolist() == ["'=1+1", "ab\tc"]


@pytest.mark.parametrize("name", ["", "x" * 32, "a/b", "a[1]", "what?"])
def test_a_sheet_name_excel_refuses_is_an_error(tmp_path, name):
    cells = xlsx.Cells(["h"], [pa.array(["v"])])
    with pytest.raises(ValueError, match="sheet name"):
        xlsx.write_workbook(tmp_path / "x.xlsx", cells, [(name, [0])])


def test_a_nation_with_nobody_to_fix_gets_header_only_lists(tmp_path, listed):
    synchronized = listed.assign(status="synchronized")
    folder, files = _publication(tmp_path, synchronized)
    assert files == 14
    workbook = openpyxl.load_workbook(folder / store.list_path("34", "79", "xlsx"))
    assert [sheet.max_row for sheet in workbook.worksheets] == [1, 1, 1]
    assert (folder / store.list_path("63", "74", "csv")).read_bytes() == (
        b"\xef\xbb\xbf" + ",".join(HEADERS).encode() + b"\n")


def test_text_longer_than_excel_allows_is_cut(tmp_path):
    cells = xlsx.Cells(["h"], [pa.array(["ắ" * (xlsx.MAX_CELL_TEXT + 10), "ok"])])
    xlsx.write_workbook(tmp_path / "long.xlsx", cells, [("Sheet", [0, 1])])
    sheet = openpyxl.load_workbook(tmp_path / "long.xlsx").active
    assert sheet["A2"].value == "ắ" * xlsx.MAX_CELL_TEXT and sheet["A3"].value == "ok"


def test_csv_drops_control_characters_as_the_workbook_does(tmp_path):
    names = ["Lan\x00 Anh\x07", "Bé\x0b\x1f Ba\x0c", "Hai\tcột\ndòng", "Mai\rHoa",
             "\x00=HYPERLINK(\"http://x\")"]
    listed = pd.DataFrame([
        _row(f"79000000{i:02d}", "79", "needs_correction", full_name=name,
             suggested_full_name=name, reasons=["name_mismatch"])
        for i, name in enumerate(names)
    ])
    folder, _ = _publication(tmp_path, listed)
    path = folder / store.list_path("63", "79", "csv")
    raw = path.read_bytes()
    assert not any(bytes([c]) in raw for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))[1:]
    written = [row[1] for row in rows]
    assert written[:4] == ["Lan Anh", "Bé Ba", "Hai\tcột\ndòng", "Mai\rHoa"]
    assert [row[8] for row in rows] == written  # every text column alike
    # a formula that a dropped character hid is neutralized once it shows
    assert written[4] == "'=HYPERLINK(\"http://x\")"
    workbook = openpyxl.load_workbook(folder / store.list_path("63", "79", "xlsx"))
    in_workbook = [row[1] for row in workbook[SHEETS[0]].iter_rows(min_row=2, values_only=True)]
    assert in_workbook[:4] == written[:4]  # tab, LF and CR kept on both sides


def test_a_sheet_longer_than_excel_allows_goes_on_on_a_second_sheet(tmp_path):
    """1,048,576 rows per Excel sheet, the header included: 1,048,580 rows make a full sheet
    and a second of 5 rows, each with the header, filter and frozen pane, the rows in order."""
    rows = xlsx.MAX_SHEET_ROWS + 4
    cells = xlsx.Cells(["n"], [pa.array(range(rows), pa.int64())])
    book = xlsx.Workbook(tmp_path / "long.xlsx", ["n"], [("Dài", rows), ("Sau", 0)])
    book.begin_sheet([7])
    for start in range(0, rows, lists.SLICE_ROWS):  # slices that straddle the sheet's end
        book.write_rows(cells.rows.slice(start, lists.SLICE_ROWS))
    book.end_sheet()
    book.begin_sheet([0])
    book.end_sheet()
    book.close()
    with zipfile.ZipFile(tmp_path / "long.xlsx") as archive:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        names = [s.get("name") for s in workbook.iter(f"{{{xlsx._MAIN}}}sheet")]
        assert names == ["Dài", "Dài (2)", "Sau"]
        first = archive.read("xl/worksheets/sheet1.xml")
        assert b'<dimension ref="A1:A1048576"/>' in first
        assert first.count(b"<row ") == xlsx.MAX_SHEET_ROWS
        assert b'<row r="1048576"><c r="A1048576"><v>1048574</v>' in first
    second = openpyxl.load_workbook(tmp_path / "long.xlsx", read_only=True)["Dài (2)"]
    assert [r[0] for r in second.iter_rows(values_only=True)] == ["n", *range(rows - 5, rows)]
