"""Per-province lists of participants to fix: ``unsynchronized.xlsx`` (a sheet per status) and
``unsynchronized.csv`` (UTF-8 with BOM), with Vietnamese headers, in each province scheme.

Cells that a spreadsheet would run as a formula (``= + - @``, tab, CR) are neutralized with a
leading apostrophe, and the workbook stores every text cell as text. Control characters (NUL,
BEL, ...) are dropped from both files; tab, LF and CR are kept. The rows to fix are rendered a
slice at a time (XML and CSV lines, with Arrow kernels), once for every file the slice feeds:
memory is bounded by a slice, not by a province.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import xlsx
from pipelines.metrics import in_scheme
from popsync import labels, store
from popsync.contracts import SYNCHRONIZED
from popsync.labels import vietnamese
from popsync.reference.provinces import codes_63_of

# Statuses that are listed (a sheet each); synchronized rows are not listed.
STATUS_LABELS = {
    code: text for code, text in vietnamese(labels.STATUS_LABELS).items() if code != SYNCHRONIZED
}
REASON_LABELS = vietnamese(labels.REASON_LABELS)
GENDER_LABELS = {"M": "Nam", "F": "Nữ"}
# List column -> Vietnamese header, in the order offices read them.
HEADERS = {
    "vss_code": "Mã số BHXH",
    "full_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "gender": "Giới tính",
    "national_id": "Số định danh cá nhân",
    "province_code": "Mã tỉnh",
    "status": "Tình trạng",
    "reasons": "Lý do",
    "suggested_full_name": "Họ tên theo CSDL dân cư",
    "suggested_birth_date": "Ngày sinh theo CSDL dân cư",
    "suggested_gender": "Giới tính theo CSDL dân cư",
    "suggested_national_id": "Số định danh theo CSDL dân cư",
    "match_probability": "Độ tin cậy",
}  # the engine's explanation (match weights) stays in results.parquet: not for office clerks
_FORMULA_START = r"^[=+\-@\t\r]"
_MAX_WIDTH = 60
_HEADER_FILL = "DDEBF7"
_PROBABILITY_DECIMALS = 3  # in the workbook; the CSV keeps the full value
_CSV_QUOTED = r'[,"\r\n]'  # a CR is quoted too: some readers end a line at a bare CR
_BOM = "\ufeff".encode()


def _neutralized(text: pa.Array) -> pa.Array:
    formula = pc.fill_null(pc.match_substring_regex(text, _FORMULA_START), False)
    if not pc.any(formula).as_py():
        return text  # the usual column: no formula-like cell
    return pc.if_else(formula, xlsx.joined("'", text), text)


def neutralize(text: pd.Series) -> pd.Series:
    """Drop the control characters the workbook drops too, and prefix an apostrophe to cells a
    spreadsheet would read as a formula."""
    values = xlsx._legal(pa.array(text, type=pa.large_string(), from_pandas=True))
    neutralized = _neutralized(values)
    return neutralized.to_pandas().astype("str").set_axis(text.index).rename(text.name)


def _labelled(codes: pa.Array, table: dict[str, str]) -> pa.Array:
    """Codes -> their labels; null where a code has none."""
    named = pa.array(list(table.values()), codes.type)
    return pc.take(named, pc.index_in(codes, pa.array(list(table), codes.type)))


def _reasons(reasons: pd.Series, table: dict[str, str] = REASON_LABELS) -> pa.Array:
    """Reason code lists -> ``"label; label"`` text ("" for none), labels of ``table`` (the
    reasons' own, or their actions); unknown codes stay codes."""
    lists = pa.array(reasons, type=pa.list_(pa.string()), from_pandas=True)
    codes = lists.values  # every list's codes, with the lists' offsets still pointing at them
    named = pa.ListArray.from_arrays(
        lists.offsets, pc.coalesce(_labelled(codes, table), codes), mask=lists.is_null()
    )
    return pc.fill_null(pc.binary_join(named, "; "), "")


def _list_columns(listed: pd.DataFrame) -> dict[str, pa.Array]:
    """Unsynchronized results (joined with the registry's fields) -> the list's columns: text
    (neutralized, "" when missing) and the match probability."""

    def text(column: str) -> pa.Array:
        return pa.array(listed[column], type=pa.large_string(), from_pandas=True)

    gender = text("gender")
    derived = ("gender", "status", "reasons", "suggested_gender", "match_probability")
    columns = {c: text(c) for c in HEADERS if c not in derived}
    columns.update(
        gender=pc.coalesce(_labelled(gender, GENDER_LABELS), gender),
        status=_labelled(text("status"), STATUS_LABELS),
        reasons=_reasons(listed["reasons"]),
        suggested_gender=_labelled(text("suggested_gender"), GENDER_LABELS),
        match_probability=pa.array(listed["match_probability"], pa.float64(), from_pandas=True),
    )
    for column, values in columns.items():
        if column != "match_probability":
            columns[column] = _neutralized(pc.fill_null(values.cast(pa.large_string()), ""))
    return {column: columns[column] for column in HEADERS}


def list_rows(listed: pd.DataFrame) -> pd.DataFrame:
    """Unsynchronized results (joined with the registry's fields) -> the list's cells, as text."""
    return pa.table(_list_columns(listed)).to_pandas()


def _csv_text(values: pa.Array) -> pa.Array:
    """Text without the control characters the workbook drops too (``xlsx._legal``: NUL, BEL
    and the like; tab, LF and CR are kept, as there). A formula that such a character hid at the
    start of a cell shows once it is dropped, so it is neutralized again."""
    legal = xlsx._legal(values)
    return values if legal is values else _neutralized(legal)


def _csv_field(values: pa.Array) -> pa.Array:
    """Text -> CSV fields: control characters dropped (``_csv_text``), then quoted as pandas
    quotes them (where a comma, quote or line end is)."""
    values = _csv_text(values)
    special = pc.match_substring_regex(values, _CSV_QUOTED)
    if not pc.any(special, skip_nulls=True).as_py():
        return values  # the usual column: nothing to quote
    quoted = xlsx.joined('"', pc.replace_substring(values, '"', '""'), '"')
    return pc.if_else(special, quoted, values)


def _csv_numbers(numbers: pa.Array) -> pa.Array:
    """Floats -> their Python repr, as pandas writes them ("" for NaN)."""
    shown = pc.fill_null(numbers.cast(pa.large_string()), "")
    # Arrow prints the shortest digits as repr does, but not its "1.0" or "1e-05": those
    # (few) values are printed by numpy.
    other = pc.fill_null(
        pc.or_(pc.less(pc.abs(numbers), 1e-4), pc.equal(numbers, pc.round(numbers))), False
    )
    if not pc.any(other).as_py():
        return shown
    printed = numbers.filter(other).to_numpy(zero_copy_only=False).astype(str)
    return pc.replace_with_mask(shown, other, pa.array(printed, shown.type))


def _csv_lines(columns: dict[str, pa.Array]) -> pa.Array:
    """A CSV line per row, byte for byte what ``DataFrame.to_csv`` writes (minimal quoting,
    floats as their repr, ``\\n`` line ends), but for a CR, which is quoted too."""
    fields = [
        _csv_numbers(values) if column == "match_probability" else _csv_field(values)
        for column, values in columns.items()
    ]
    line = pc.binary_join_element_wise(*fields, pa.scalar(",", pa.large_string()))
    return xlsx.joined(line, "\n")


class _File:
    """One province's list files while a group's slices stream through: its CSV, written as the
    slices come, and per status the rows, longest cells and bytes its workbook sheet will
    take."""

    def __init__(self, folder: Path, scheme: str, code: str):
        self.folder, self.scheme, self.code = folder, scheme, code
        self.counts = dict.fromkeys(STATUS_LABELS, 0)
        self.longest = {s: np.zeros(len(HEADERS), dtype=np.int64) for s in STATUS_LABELS}
        self.sizes = dict.fromkeys(STATUS_LABELS, 0)
        csv_path = folder / store.list_path(scheme, code, "csv")
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        self.csv = open(csv_path, "wb")  # noqa: SIM115 - closed by close_csv
        header = _csv_field(pa.array(HEADERS.values(), pa.large_string())).to_pylist()
        self.csv.write(_BOM + (",".join(header) + "\n").encode())

    def add(self, mine: np.ndarray, status: np.ndarray, lines: pa.Array, cells: xlsx.Cells):
        """This file's rows of a slice (``mine``: a mask over the slice)."""
        self.csv.write(xlsx.concatenation(lines.filter(pa.array(mine))))
        for code in STATUS_LABELS:
            rows = np.flatnonzero(mine & (status == code))
            if len(rows):
                self.counts[code] += len(rows)
                np.maximum(self.longest[code], cells.lengths[:, rows].max(axis=1),
                           out=self.longest[code])
                self.sizes[code] += int(cells.sizes[rows].sum())

    def close_csv(self) -> None:
        self.csv.close()

    def workbook(self) -> xlsx.Workbook:
        return xlsx.Workbook(
            self.folder / store.list_path(self.scheme, self.code, "xlsx"), list(HEADERS.values()),
            [(name, self.counts[code]) for code, name in STATUS_LABELS.items()],
            header_fill=_HEADER_FILL, max_width=_MAX_WIDTH, creator="popsync",
        )


SLICE_ROWS = 65_536  # rows rendered at once (about 100 MB of cells)
_SPILL_SCHEMA = pa.schema([("rows", pa.list_(pa.large_string())), ("office_code", pa.string())])


def write_lists(
    slices: Iterable[pd.DataFrame],
    offices: list[str],
    folder: Path,
    schemes: tuple[str, ...],
    scratch: Path | None = None,
) -> int:
    """Write the lists of ``offices`` (63-scheme codes: every office with participants in this
    group, so an office with nobody to fix gets its files too) and of the units they make up in
    the other scheme, under ``folder`` (a publication); returns files written.

    ``slices``: the rows to fix of these offices, joined with the registry's fields, with
    ``office_code``, in the order the lists show them, as frames of a bounded size: memory is
    bounded by a slice, not by the group. The units of a group must be whole (the night groups
    offices by their 34-scheme unit).

    A slice's cells are rendered once for all the files it feeds. CSV lines are written as the
    slices come; a workbook needs its sheets one after the other (a sheet per status) and each
    sheet's column widths before its rows, so the slices' rendered rows are spilled per status
    to ``scratch`` (a temporary folder in it) and streamed into the workbooks afterwards.
    """
    offices = pd.Series(offices, dtype="str")
    files, copies = [], []
    for scheme in schemes:
        for code in sorted(in_scheme(offices, scheme).dropna().unique()):
            if scheme == "34" and "63" in schemes and codes_63_of(code) == [code]:
                copies.append(code)  # a unit the 2025 merger left alone: same rows as in 63
            else:
                files.append(_File(folder, scheme, code))
    with tempfile.TemporaryDirectory(dir=scratch, prefix="lists-") as spill:
        spills = {code: pa.ipc.new_stream(Path(spill) / f"{code}.arrow", _SPILL_SCHEMA)
                  for code in STATUS_LABELS}
        for listed in slices:
            listed = listed.loc[:, [*HEADERS, "office_code"]].reset_index(drop=True)
            columns = _list_columns(listed)
            probability = pc.round(columns["match_probability"], _PROBABILITY_DECIMALS)
            cells = xlsx.Cells(list(HEADERS.values()), [
                probability if c == "match_probability" else columns[c] for c in HEADERS])
            lines = _csv_lines(columns)
            status = listed["status"].to_numpy()
            province = {scheme: in_scheme(listed["office_code"], scheme).to_numpy()
                        for scheme in schemes}
            for file in files:
                file.add(province[file.scheme] == file.code, status, lines, cells)
            office = pa.array(listed["office_code"], pa.string(), from_pandas=True)
            for code, writer in spills.items():
                rows = pa.array(np.flatnonzero(status == code), pa.int64())
                writer.write_batch(pa.record_batch(
                    [cells.rows.take(rows), office.take(rows)], schema=_SPILL_SCHEMA))
        for writer in spills.values():
            writer.close()
        for file in files:
            file.close_csv()
        books = [file.workbook() for file in files]
        for code in STATUS_LABELS:  # sheet after sheet, every workbook of the group at once
            for file, book in zip(files, books, strict=True):
                book.begin_sheet(file.longest[code], file.sizes[code])
            with pa.OSFile(str(Path(spill) / f"{code}.arrow")) as source:
                for batch in pa.ipc.open_stream(source):
                    office = batch.column("office_code").to_pandas()
                    province = {scheme: in_scheme(office, scheme).to_numpy() for scheme in schemes}
                    for file, book in zip(files, books, strict=True):
                        book.write_rows(batch.column("rows").filter(
                            pa.array(province[file.scheme] == file.code)))
            for book in books:
                book.end_sheet()
        for book in books:
            book.close()
    written = 2 * len(files)
    for code in copies:
        for fmt in ("xlsx", "csv"):
            target = folder / store.list_path("34", code, fmt)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / store.list_path("63", code, fmt), target)
            written += 1
    return written


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``neutralize`` every text column of a frame meant for spreadsheets (quarantine.csv)."""
    text_columns = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    return frame.assign(**{c: neutralize(frame[c].astype("str")) for c in text_columns})
