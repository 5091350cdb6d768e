"""A small XLSX writer for big plain tables: the cells' XML is built column-wise with Arrow
kernels (no Python loop per cell), once per table, and each workbook takes its rows of it.

An .xlsx file is a zip of XML parts. Each workbook written here has a sheet per row selection,
a bold header row with a fill and a border, frozen under the header, an autofilter over the
used range and column widths fitting the content. Text cells are inline strings, so a
spreadsheet never reads them as formulas, numbers, dates or links; number columns are
numbers; empty cells are left out.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_SHEET_NAME = 31
MAX_CELL_TEXT = 32767  # characters; Excel refuses a workbook with a longer cell
# XML 1.0 has no place for these: they are dropped from text (tab, LF and CR are kept).
_ILLEGAL_XML = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
# Excel reads "_xHHHH_" in a string as an escaped character: such text is escaped itself.
_EXCEL_ESCAPE = r"(_x[0-9A-Fa-f]{4}_)"
_NEEDS_ESCAPE = r'[&<>"\r]|_x[0-9A-Fa-f]{4}_'
# Anything that needs more than copying: illegal, escaped or (at either end) blank characters.
_UNUSUAL = r'[\x00-\x1F&<>"\x{FFFE}\x{FFFF}]|_x[0-9A-Fa-f]{4}_|^ | $'
_XML_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                 ("\r", "&#13;"))  # a literal CR would be read back as LF
_ROW_NUMBER = "\x00"  # stands for the row number in a row's XML, which can never hold it
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same table gives the same bytes
_SHEET_NAME_FORBIDDEN = set("[]:*?/\\")

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_STYLES = (
    f'{_DECLARATION}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
    '<fonts count="2">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="3">'
    '<fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FF{fill}"/><bgColor indexed="64"/>'
    "</patternFill></fill>"
    "</fills>"
    '<borders count="2">'
    "<border><left/><right/><top/><bottom/><diagonal/></border>"
    '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/>'
    '</right><top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/>'
    "</bottom><diagonal/></border>"
    "</borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" '
    'applyBorder="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_HEADER_STYLE = 1  # index in cellXfs above
_DATE_STYLE = 2  # dd/mm/yyyy
# Excel's day 0 is 1899-12-30 for dates from 1 March 1900 on (it counts a 29 February 1900 that
# never was); earlier dates are written as text.
_EXCEL_EPOCH = np.datetime64("1899-12-30", "D")
_FIRST_EXCEL_DATE = np.datetime64("1900-03-01", "D")


def column_letters(count: int) -> list[str]:
    """``A``, ``B``, ... ``Z``, ``AA``, ...: the first ``count`` column names."""
    letters = []
    for number in range(1, count + 1):
        name = ""
        while number:
            number, rest = divmod(number - 1, 26)
            name = chr(ord("A") + rest) + name
        letters.append(name)
    return letters


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask, skip_nulls=True).as_py())


def _legal(text: pa.Array) -> pa.Array:
    """Text without the characters XML 1.0 cannot hold."""
    if _any(pc.match_substring_regex(text, _ILLEGAL_XML)):
        return pc.replace_substring_regex(text, _ILLEGAL_XML, "")
    return text


def _escaped(text: pa.Array) -> pa.Array:
    """Legal text -> XML element content as Excel reads it (markup, CR and ``_xHHHH_``
    escaped). Columns with nothing to escape, the usual case, are returned as they are."""
    if not _any(pc.match_substring_regex(text, _NEEDS_ESCAPE)):
        return text
    for character, entity in _XML_ENTITIES:
        text = pc.replace_substring(text, character, entity)
    return pc.replace_substring_regex(text, _EXCEL_ESCAPE, r"_x005F\1")


def xml_text(text: pa.Array) -> pa.Array:
    """Text -> XML element content as Excel reads it: illegal characters dropped, markup and CR
    escaped, literal ``_xHHHH_`` sequences protected."""
    return _escaped(_legal(text))


def joined(*parts: pa.Array | str, null_handling: str = "emit_null") -> pa.Array:
    """Row-wise concatenation of large_string arrays and constant strings."""
    return pc.binary_join_element_wise(
        *(pa.scalar(part, pa.large_string()) if isinstance(part, str) else part for part in parts),
        pa.scalar("", pa.large_string()),
        null_handling=null_handling,
    )


def concatenation(strings: pa.Array) -> pa.Buffer:
    """All strings of an array (no nulls) end to end, without copying them."""
    if strings.null_count:
        raise ValueError("concatenation of strings with nulls")
    if len(strings) == 0:
        return pa.py_buffer(b"")
    strings = strings.cast(pa.large_string())
    _, offsets, data = strings.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)
    start, end = offsets[strings.offset], offsets[strings.offset + len(strings)]
    return data.slice(int(start), int(end - start))


def _width(characters: int, max_width: float) -> float:
    """Characters -> the width Excel stores for them (Calibri 11: 7-pixel digits, 5 pixels of
    padding), 2 characters more for the filter button, at most ``max_width``."""
    width = min(characters + 2, max_width)
    return int((int(width * 7 + 0.5) + 5) / 7 * 256) / 256


def _text_cells(text: pa.Array, reference: str) -> tuple[pa.Array, np.ndarray]:
    """Text -> each cell's XML from ``reference`` on (null for an empty cell), and its length."""
    text = text.cast(pa.large_string())
    opening: pa.Array | str = '" t="inlineStr"><is><t>'
    unusual = _any(pc.match_substring_regex(text, _UNUSUAL))
    if unusual:
        text = _legal(text)
    text = pc.if_else(pc.fill_null(pc.equal(text, ""), True), pa.scalar(None, text.type), text)
    length = pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
    if length.max(initial=0) > MAX_CELL_TEXT:
        text = pc.utf8_slice_codeunits(text, 0, MAX_CELL_TEXT)
        length = np.minimum(length, MAX_CELL_TEXT)
    if unusual:  # else a column of plain text, the usual case: nothing more to do
        # Leading or trailing spaces survive only in an xml:space="preserve" element.
        spaced = pc.fill_null(pc.match_substring_regex(text, r"^\s|\s$"), False)
        opening = pc.if_else(
            spaced,
            pa.scalar('" t="inlineStr"><is><t xml:space="preserve">', pa.large_string()),
            pa.scalar(opening, pa.large_string()),
        )
        text = _escaped(text)
    return joined(reference, opening, text, "</t></is></c>"), length


def _number_cells(numbers: pa.Array, reference: str) -> tuple[pa.Array, np.ndarray]:
    """Numbers -> each cell's XML from ``reference`` on (null for an empty cell), and its
    length."""
    numbers = numbers.cast(pa.float64())
    finite = pc.fill_null(pc.is_finite(numbers), False)
    shown = pc.if_else(finite, numbers, pa.scalar(None, pa.float64())).cast(pa.large_string())
    length = pc.fill_null(pc.utf8_length(shown), 0).to_numpy(zero_copy_only=False)
    return joined(reference, '"><v>', shown, "</v></c>"), length


class Dates:
    """A column of dates shown as real Excel dates (dd/mm/yyyy) where ``days`` has one (a
    date32 array, null elsewhere) and as ``text`` where it has none (partial dates)."""

    def __init__(self, days: pa.Array, text: pa.Array):
        if len(days) != len(text):
            raise ValueError("dates and their text of different lengths")
        self.days, self.text = days.cast(pa.date32()), text.cast(pa.large_string())

    def __len__(self) -> int:
        return len(self.days)


def _date_cells(dates: Dates, reference: str) -> tuple[pa.Array, np.ndarray]:
    """Dates -> date cells, or text cells where a value has no date."""
    days = dates.days.to_numpy(zero_copy_only=False).astype("datetime64[D]")
    usable = ~np.isnat(days) & (days >= _FIRST_EXCEL_DATE)
    serial = np.where(usable, (days - _EXCEL_EPOCH).astype(np.int64), 0)
    shown = pa.array(serial, pa.int64()).cast(pa.large_string())
    cell = joined(reference, f'" s="{_DATE_STYLE}"><v>', shown, "</v></c>")
    cell = pc.if_else(pa.array(usable), cell, pa.scalar(None, pa.large_string()))
    text, length = _text_cells(pc.if_else(pa.array(usable), pa.scalar(None, pa.large_string()),
                                          dates.text), reference)
    return pc.coalesce(cell, text), np.where(usable, 10, length)


class Cells:
    """A table's cells rendered to worksheet XML once, for any number of sheets to take rows of.

    ``columns``: Arrow arrays of one length; string columns become text cells (an empty or null
    string is an empty cell), numeric columns become numbers (null or NaN is an empty cell),
    ``Dates`` become date cells.
    Each table row is kept as its ``<row>`` XML cut where the row number goes (in the row and
    in every cell reference): a sheet joins the pieces with the row's number in that sheet.
    ``lengths``: characters shown per cell, a row per column (for column widths); ``sizes``:
    bytes of each row's XML without its numbers.
    """

    def __init__(self, headers: Sequence[str], columns: Sequence[pa.Array]):
        if len(headers) != len(columns) or not columns:
            raise ValueError(f"{len(headers)} headers for {len(columns)} columns")
        self.headers = list(headers)
        letters = column_letters(len(headers))
        lengths, cells = [], []
        for letter, column in zip(letters, columns, strict=True):
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            if len(column) != len(columns[0]):
                raise ValueError("columns of different lengths")
            reference = f'<c r="{letter}{_ROW_NUMBER}'
            if isinstance(column, Dates):
                cell, length = _date_cells(column, reference)
            elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                cell, length = _text_cells(column, reference)
            elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                cell, length = _number_cells(column, reference)
            else:
                raise TypeError(f"column of type {column.type}: only text and numbers are written")
            cells.append(cell)
            lengths.append(length)
        self.lengths = np.vstack(lengths)
        rows = joined(f'<row r="{_ROW_NUMBER}">', *cells, "</row>", null_handling="skip")
        self.sizes = pc.binary_length(rows).to_numpy(zero_copy_only=False)
        self.rows = pc.split_pattern(rows, _ROW_NUMBER)  # empty cells were skipped


def numbered_rows(rows: pa.Array, first: int) -> pa.Buffer:
    """``Cells.rows`` pieces of some rows -> their ``<row>`` elements, numbered from ``first``."""
    if len(rows) == 0:
        return pa.py_buffer(b"")
    numbers = pa.array(np.arange(first, first + len(rows))).cast(pa.large_string())
    return concatenation(pc.binary_join(rows, numbers))


def _widths(headers: Sequence[str], longest: np.ndarray, max_width: float) -> list[float]:
    """Column widths fitting the headers and the longest cells, capped at ``max_width``."""
    return [_width(max(len(header), int(most)), max_width)
            for header, most in zip(headers, longest, strict=True)]


@functools.lru_cache(maxsize=64)
def _header_row(headers: tuple[str, ...]) -> str:
    """The header row's XML (the same few headers open many small workbooks' sheets)."""
    texts = xml_text(pa.array(list(headers), pa.large_string())).to_pylist()
    return '<row r="1">' + "".join(
        f'<c r="{letter}1" s="{_HEADER_STYLE}" t="inlineStr"><is><t xml:space="preserve">'
        f"{text}</t></is></c>"
        for letter, text in zip(column_letters(len(headers)), texts, strict=True)
    ) + "</row>"


def _sheet_head(headers: Sequence[str], count: int, first: bool, widths: list[float]) -> str:
    letters = column_letters(len(headers))
    last = f"{letters[-1]}{count + 1}"
    selected = ' tabSelected="1"' if first else ""
    columns = "".join(
        f'<col min="{index}" max="{index}" width="{width}" customWidth="1"/>'
        for index, width in enumerate(widths, start=1)
    )
    header_row = _header_row(tuple(headers))
    return (
        f'{_DECLARATION}<worksheet xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
        f'<dimension ref="A1:{last}"/>'
        f'<sheetViews><sheetView{selected} workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{columns}</cols>'
        f"<sheetData>{header_row}"
    )


def _sheet_tail(headers: Sequence[str], count: int) -> str:
    last = f"{column_letters(len(headers))[-1]}{count + 1}"
    return (
        f'</sheetData><autoFilter ref="A1:{last}"/>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        "</worksheet>"
    )


def _check_sheet_names(names: Sequence[str]) -> None:
    seen = set()
    for name in names:
        if not name or len(name) > MAX_SHEET_NAME or _SHEET_NAME_FORBIDDEN & set(name):
            raise ValueError(
                f"sheet name {name!r}: Excel needs 1 to {MAX_SHEET_NAME} characters, "
                "none of []:*?/\\"
            )
        if name.lower() in seen:
            raise ValueError(f"sheet name {name!r} is used twice")
        seen.add(name.lower())


def _workbook_parts(names: Sequence[str], last_cells: Sequence[str], creator: str) -> dict:
    sheets = "".join(
        f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, start=1)
    )
    quoted = ["'" + name.replace("'", "''") + "'" for name in names]
    filters = "".join(  # what Excel writes for an autofilter: a hidden name per sheet
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{escape(sheet)}!$A$1:${last}</definedName>"
        for i, (sheet, last) in enumerate(zip(quoted, last_cells, strict=True))
    )
    sheet_types = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        f'ContentType="{_TYPE}.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(names) + 1)
    )
    sheet_links = "".join(
        f'<Relationship Id="rId{i}" Type="{_RELATIONSHIPS}/worksheet" '
        f'Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    return {
        "[Content_Types].xml": (
            f'{_DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.spreadsheetml.sheet.'
            'main+xml"/>'
            f"{sheet_types}"
            f'<Override PartName="/xl/styles.xml" ContentType="{_TYPE}.spreadsheetml.'
            'styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.'
            'openxmlformats-package.core-properties+xml"/>'
            f'<Override PartName="/docProps/app.xml" ContentType="{_TYPE}.extended-'
            'properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'{_DECLARATION}<Relationships xmlns="{_PACKAGE_RELATIONSHIPS}">'
            f'<Relationship Id="rId1" Type="{_RELATIONSHIPS}/officeDocument" '
            'Target="xl/workbook.xml"/>'
            f'<Relationship Id="rId2" Type="{_PACKAGE_RELATIONSHIPS}/metadata/core-properties" '
            'Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_RELATIONSHIPS}/extended-properties" '
            'Target="docProps/app.xml"/>'
            "</Relationships>"
        ),
        "docProps/core.xml": (
            f"{_DECLARATION}<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/"
            'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/">'
            f"<dc:creator>{escape(creator)}</dc:creator></cp:coreProperties>"
        ),
        "docProps/app.xml": (
            f'{_DECLARATION}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
            '2006/extended-properties"><Application>'
            f"{escape(creator)}</Application></Properties>"
        ),
        "xl/workbook.xml": (
            f'{_DECLARATION}<workbook xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
            '<bookViews><workbookView/></bookViews>'
            f"<sheets>{sheets}</sheets><definedNames>{filters}</definedNames></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{_DECLARATION}<Relationships xmlns="{_PACKAGE_RELATIONSHIPS}">{sheet_links}'
            f'<Relationship Id="rId{len(names) + 1}" Type="{_RELATIONSHIPS}/styles" '
            'Target="styles.xml"/></Relationships>'
        ),
    }


MAX_SHEET_ROWS = 1_048_576  # Excel's rows per sheet, the header row included


def _parts(name: str, count: int, rows: int) -> list[tuple[str, int]]:
    """A sheet of ``count`` rows as sheets of at most ``rows`` rows each (the header apart):
    the first keeps the name, the next are named "name (2)", "name (3)", ... (cut to fit)."""
    counts = [min(rows, count - start) for start in range(0, count, rows)] or [0]
    names = [name] + [f"{name[:MAX_SHEET_NAME - 3 - len(str(k))]} ({k})"
                      for k in range(2, len(counts) + 1)]
    return list(zip(names, counts, strict=True))


class Workbook:
    """A workbook written sheet after sheet, each sheet's rows streamed in slices, so memory is
    bounded by a slice, not by the sheet.

    ``sheets``: each sheet's name and row count, in order, and its headers when they are not
    ``headers``. Per sheet: ``begin_sheet`` with the longest cell of each column over its rows
    (for the widths), ``write_rows`` any number of times until the count is reached,
    ``end_sheet``; then ``close``. A sheet longer than Excel's 1,048,576 rows goes on over
    sheets of its own ("name (2)", ...), each with the header row.

    ``path``: a file name or a binary file. ``header_fill``: the header row's background, as RGB
    hex. ``level``: zlib compression level of the zip (measured on the 1M-people lists: level 1
    compresses in a third of the CPU time of zlib's default 6, for files ~20 % bigger).
    """

    def __init__(
        self,
        path,
        headers: Sequence[str],
        sheets: Sequence[tuple],
        *,
        header_fill: str = "DDEBF7",
        max_width: float = 60,
        creator: str = "",
        level: int = 1,
    ):
        if not sheets:
            raise ValueError("a workbook needs at least one sheet")
        _check_sheet_names([sheet[0] for sheet in sheets])
        # per sheet as asked, its parts as written (a part per Excel sheet)
        self.sheets = [(list(sheet[2]) if len(sheet) > 2 else list(headers),
                        _parts(sheet[0], sheet[1], MAX_SHEET_ROWS - 1)) for sheet in sheets]
        names = [name for _, parts in self.sheets for name, _ in parts]
        _check_sheet_names(names)
        self.counts = [sheet[1] for sheet in sheets]
        self.max_width, self.level = max_width, level
        last_cells = [f"{column_letters(len(heads))[-1]}${count + 1}"
                      for heads, parts in self.sheets for _, count in parts]
        parts = _workbook_parts(names, last_cells, creator)
        parts["xl/styles.xml"] = _STYLES.replace("{fill}", header_fill.upper())
        self.archive = zipfile.ZipFile(path, "w")
        for name, content in parts.items():
            self.archive.writestr(self._entry(name), content.encode())
        self.sheet = 0  # sheets begun
        self.part = 0  # Excel sheets begun
        self.out = None
        self.written = 0  # rows of the open sheet
        self.in_part = 0  # rows of the open Excel sheet

    def _entry(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
        info.external_attr = 0o600 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = self.level  # what writestr sets from its argument
        return info

    def begin_sheet(self, longest: Sequence[int], size: int = 0) -> None:
        """The next sheet; ``longest``: the longest cell (characters) of each column over its
        rows; ``size``: about how many bytes its rows take (``Cells.sizes``), so that a sheet
        over 2 GiB is written in ZIP64."""
        if self.out is not None or self.sheet == len(self.sheets):
            raise ValueError("begin_sheet: a sheet is open, or every sheet is written")
        self.sheet += 1
        headers, parts = self.sheets[self.sheet - 1]
        self.widths = _widths(headers, np.asarray(longest), self.max_width)
        self.size, self.next_part, self.written = size, 0, 0
        self._begin_part()

    def _begin_part(self) -> None:
        headers, parts = self.sheets[self.sheet - 1]
        count = parts[self.next_part][1]
        share = count / max(1, self.counts[self.sheet - 1])
        numbers = (len(headers) + 1) * len(str(count + 1)) * count  # row number per cell
        zip64 = (self.size * share + numbers) * 1.05 > zipfile.ZIP64_LIMIT
        self.part += 1
        self.out = self.archive.open(
            self._entry(f"xl/worksheets/sheet{self.part}.xml"), "w", force_zip64=zip64)
        self.out.write(_sheet_head(headers, count, self.part == 1, self.widths).encode())
        self.next_part += 1
        self.in_part = 0

    def _end_part(self) -> None:
        headers, parts = self.sheets[self.sheet - 1]
        count = parts[self.next_part - 1][1]
        if self.in_part != count:
            raise ValueError(f"sheet {self.sheet}: {self.written} rows written of "
                             f"{self.counts[self.sheet - 1]}")
        self.out.write(_sheet_tail(headers, count).encode())
        self.out.close()
        self.out = None

    def write_rows(self, rows: pa.Array) -> None:
        """The next rows of the open sheet: ``Cells.rows`` pieces (``cells.rows.take(...)``)."""
        if self.written + len(rows) > self.counts[self.sheet - 1]:
            raise ValueError(f"sheet {self.sheet}: more rows than its count")
        parts = self.sheets[self.sheet - 1][1]
        while len(rows):
            if self.in_part == parts[self.next_part - 1][1]:  # full: the sheet goes on
                self._end_part()
                self._begin_part()
            room = parts[self.next_part - 1][1] - self.in_part
            here = rows.slice(0, room)
            self.out.write(numbered_rows(here, self.in_part + 2))  # row 1 is the header
            self.in_part += len(here)
            self.written += len(here)
            rows = rows.slice(len(here))

    def end_sheet(self) -> None:
        count = self.counts[self.sheet - 1]
        if self.written != count:
            raise ValueError(f"sheet {self.sheet}: {self.written} rows written of {count}")
        self._end_part()

    def close(self) -> None:
        if self.out is not None or self.sheet != len(self.sheets):
            self.archive.close()
            raise ValueError(f"workbook closed with {self.sheet} of {len(self.sheets)} sheets")
        self.archive.close()


def write_workbook(
    path: Path,
    cells: Cells,
    sheets: Sequence[tuple[str, np.ndarray]],
    **options,
) -> None:
    """One workbook at ``path``: a sheet per ``(name, row indices of cells)``, in that order
    (``options``: those of ``Workbook``)."""
    sheets = [(name, np.asarray(rows, dtype=np.int64)) for name, rows in sheets]
    book = Workbook(path, cells.headers, [(name, len(rows)) for name, rows in sheets], **options)
    for _, rows in sheets:
        longest = cells.lengths[:, rows].max(axis=1, initial=0)
        book.begin_sheet(longest, int(cells.sizes[rows].sum()))
        book.write_rows(cells.rows.take(pa.array(rows, pa.int64())))
        book.end_sheet()
    book.close()
