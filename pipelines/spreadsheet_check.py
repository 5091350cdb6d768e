"""Open workbooks in a real spreadsheet application (LibreOffice headless), convert every sheet
back to CSV, and compare it with the cells the workbook holds: what the tests and
``bench/bench_employers.py`` check each workbook with. Needs Debian's libreoffice-calc-nogui
(``make services`` installs it).

The CSV is written "as shown" (dates as their dd/mm/yyyy format shows them), so a date cell
compares with the date's dd/mm/yyyy text, a number with its shortest form.
"""

from __future__ import annotations

import csv
import datetime
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import openpyxl

# LibreOffice's CSV filter: comma, double quote, UTF-8, from row 1, cells as shown, every sheet
# to a file of its own ("<workbook>-<sheet>.csv").
_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
BATCH = 200  # workbooks per LibreOffice start


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        raise RuntimeError("LibreOffice is missing: run `make services` (apt-get install "
                           "libreoffice-calc-nogui)")
    return found


def convert(workbooks: Sequence[Path], out: Path, timeout: float = 1800) -> None:
    """Every sheet of every workbook to ``out/<stem>-<sheet>.csv``, LibreOffice started once
    per ``BATCH`` workbooks, with a profile of its own (another LibreOffice may be running)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        for start in range(0, len(workbooks), BATCH):
            batch = [str(w) for w in workbooks[start:start + BATCH]]
            done = subprocess.run(
                [soffice(), f"-env:UserInstallation=file://{profile}", "--headless",
                 "--norestore", "--convert-to", _FILTER, "--outdir", str(out), *batch],
                capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"LibreOffice failed ({done.returncode}) on "
                                   f"{len(batch)} workbooks: {done.stderr.strip()[:500]}")


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return f"{value:.15g}"
    return str(value)


def cells(workbook: Path) -> dict[str, list[list[str]]]:
    """Each sheet's cells as text, as the workbook holds them (openpyxl)."""
    book = openpyxl.load_workbook(workbook, read_only=True)
    try:
        sheets = {}
        for sheet in book.worksheets:
            rows = [[_shown(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            sheets[sheet.title] = rows
        return sheets
    finally:
        book.close()


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as source:
        return list(csv.reader(source))


def differences(workbooks: Iterable[Path], converted: Path) -> list[str]:
    """Where LibreOffice's CSV of a sheet differs from the workbook's cells (first difference
    per sheet, cells masked: they hold personal data)."""
    found = []
    for workbook in workbooks:
        for name, expected in cells(workbook).items():
            path = converted / f"{workbook.stem}-{name}.csv"
            if not path.is_file():
                found.append(f"{workbook.name}: sheet {name!r} not converted")
                continue
            shown = read_csv(path)
            width = max((len(r) for r in expected), default=0)
            padded = [r + [""] * (width - len(r)) for r in expected]
            if shown != padded:
                row = next((i for i, (a, b) in enumerate(zip(shown, padded, strict=False))
                            if a != b), min(len(shown), len(padded)))
                found.append(f"{workbook.name}: sheet {name!r} differs from row {row + 1} "
                             f"({len(shown)} rows read, {len(padded)} written)")
    return found
