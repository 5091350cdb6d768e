"""Per-province lists of participants to fix: ``unsynchronized.xlsx`` (a sheet per status) and
``unsynchronized.csv`` (UTF-8 with BOM), with Vietnamese headers, in each province scheme.

Cells that a spreadsheet would run as a formula (``= + - @``, tab, CR) are neutralized with a
leading apostrophe, and the workbook stores every text cell as text.
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from pipelines.metrics import in_scheme, reasons_text
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


def neutralize(text: pd.Series) -> pd.Series:
    """Prefix an apostrophe to cells a spreadsheet would read as a formula."""
    return text.mask(text.str.contains(_FORMULA_START, regex=True, na=False), "'" + text)


def list_rows(listed: pd.DataFrame) -> pd.DataFrame:
    """Unsynchronized results (joined with the registry's fields) -> the list's cells, as text."""
    labels = reasons_text(listed["reasons"])
    for code, label in REASON_LABELS.items():
        labels = labels.str.replace(rf"\b{code}\b", label, regex=True)
    cells = pd.DataFrame(
        {
            **{c: listed[c] for c in HEADERS if c in listed and c not in ("status", "reasons")},
            "status": listed["status"].map(STATUS_LABELS),
            "reasons": labels.str.replace(",", "; "),
            "gender": listed["gender"].map(GENDER_LABELS).fillna(listed["gender"]),
            "suggested_gender": listed["suggested_gender"].map(GENDER_LABELS),
        }
    )[list(HEADERS)]
    for column in cells.columns:
        if column != "match_probability":
            cells[column] = neutralize(cells[column].astype("str").fillna(""))
    return cells.reset_index(drop=True)


class _Cells:
    """The list's cells as plain arrays, built once for the nation and sliced per province."""

    def __init__(self, cells: pd.DataFrame, status: pd.Series):
        self.frame = cells
        self.status = status.to_numpy()
        probability = cells["match_probability"].round(3)
        self.columns = [
            (
                probability.astype(object).where(probability.notna(), None)
                if c == "match_probability"
                else cells[c].fillna("")
            ).to_numpy(dtype=object)
            for c in cells.columns
        ]
        self.lengths = np.column_stack(
            [cells[c].astype("str").fillna("").str.len().to_numpy() for c in cells.columns]
        ).reshape(len(cells), len(cells.columns))


def _write_xlsx(path: Path, cells: _Cells, rows: np.ndarray) -> None:
    """One workbook: a sheet per status, header frozen, filters on, widths fitting the content."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "in_memory": True,
        },
    )
    header_format = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    headers = list(HEADERS.values())
    header_widths = np.array([len(h) for h in headers])
    for code, sheet_name in STATUS_LABELS.items():
        sheet = workbook.add_worksheet(sheet_name)
        chosen = rows[cells.status[rows] == code]
        sheet.write_row(0, 0, headers, header_format)
        for index, values in enumerate(cells.columns):
            sheet.write_column(1, index, values[chosen].tolist())
        widths = np.maximum(header_widths, cells.lengths[chosen].max(axis=0, initial=0)) + 2
        for index, width in enumerate(np.minimum(widths, _MAX_WIDTH).tolist()):
            sheet.set_column(index, index, width)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(chosen), len(headers) - 1)
    workbook.close()


# The nation's cells, set before the list writers fork so they share them without copying.
_shared: dict = {}


def _write_province(job: tuple[Path, str, str, np.ndarray]) -> int:
    folder, scheme, code, rows = job
    xlsx = folder / store.list_path(scheme, code, "xlsx")
    xlsx.parent.mkdir(parents=True, exist_ok=True)
    _write_xlsx(xlsx, _shared["cells"], rows)
    _shared["csv"].iloc[rows].to_csv(
        folder / store.list_path(scheme, code, "csv"), index=False, encoding="utf-8-sig"
    )
    return 2


def write_lists(
    listed_all: pd.DataFrame, folder: Path, schemes: tuple[str, ...], workers: int = 2
) -> int:
    """Write every province's lists under ``folder`` (a publication); returns files written.

    ``listed_all``: every result row joined with the registry's fields, with ``office_code``.
    Each province with participants gets its files, even when it has nobody to fix.
    Workbooks are written by ``workers`` forked processes (xlsxwriter is pure Python, so
    threads would not help), biggest provinces first so the workers finish together.
    """
    unsynchronized = listed_all[listed_all["status"] != SYNCHRONIZED]
    cells = _Cells(list_rows(unsynchronized), unsynchronized["status"])
    _shared.update(cells=cells, csv=cells.frame.rename(columns=HEADERS))
    jobs, copies = [], []
    for scheme in schemes:
        province = in_scheme(unsynchronized["office_code"], scheme).to_numpy()
        for code in sorted(in_scheme(listed_all["office_code"], scheme).dropna().unique()):
            if scheme == "34" and "63" in schemes and codes_63_of(code) == [code]:
                copies.append(code)  # a unit the 2025 merger left alone: same rows as in 63
                continue
            jobs.append((folder, scheme, code, np.flatnonzero(province == code)))
    jobs.sort(key=lambda job: -len(job[3]))
    try:
        # A daemonic process (e.g. some worker pools) may not start children: write in-process.
        if workers > 1 and len(jobs) > 1 and not multiprocessing.current_process().daemon:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                written = sum(pool.map(_write_province, jobs))
        else:
            written = sum(map(_write_province, jobs))
    finally:
        _shared.clear()
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
