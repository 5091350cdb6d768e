"""A province's work list as the clerk filtered it, as a file: CSV (UTF-8 with BOM) streamed a
batch of rows at a time, or an Excel workbook written row by row (openpyxl's write-only mode);
headers and codes in the page's language. Text a spreadsheet would run as a formula gets a
leading apostrophe, and control characters are dropped (names come from the registry)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

import openpyxl

from popsync import reasons
from portal import i18n

# the file's columns: the page's, then the population database's values and the row's office
COLUMNS = ("vss_code", "full_name", "birth_date", "gender", "national_id", "province_code",
           "status", "reasons", "work_status", "suggested_full_name", "suggested_birth_date",
           "suggested_gender", "suggested_national_id", "other_vss_codes", "ward_code",
           "employer_code", "employer_name")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORMULA = re.compile(r"^[=+\-@\t\r]")


def cell(value) -> str:
    """A value as safe text for a spreadsheet."""
    if value is None:
        return ""
    text = _CONTROL.sub("", str(value))
    return "'" + text if _FORMULA.match(text) else text


def _values(row: dict, lang: str) -> list[str]:
    pick = 0 if lang == "vi" else 1
    shown = dict(row)
    codes = row["reasons"].split(",") if row["reasons"] else []
    shown["reasons"] = "; ".join(reasons.BY_CODE[c].label[pick] if c in reasons.BY_CODE else c
                                 for c in codes)
    shown["status"] = i18n.label(row["status"], lang)
    shown["work_status"] = i18n.label(f"work_{row['work_status']}", lang)
    return [cell(shown.get(column)) for column in COLUMNS]


def headers(lang: str) -> list[str]:
    return [i18n.label(f"col_{column}", lang) for column in COLUMNS]


def csv_chunks(batches: Iterable[list[dict]], lang: str) -> Iterator[bytes]:
    """The CSV, a batch of rows per chunk, the first with the BOM and the headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers(lang))
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(_values(row, lang) for row in batch)
        yield buffer.getvalue().encode("utf-8")


def xlsx_bytes(batches: Iterable[list[dict]], lang: str) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(i18n.label("worklist", lang)[:31])
    sheet.append(headers(lang))
    for batch in batches:
        for row in batch:
            sheet.append(_values(row, lang))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
