"""Every employer workbook of a night through a real spreadsheet application: generate a nation,
run the night, then convert every workbook of the 63-scheme zips (every sheet) to CSV with
LibreOffice headless and compare each with the workbook's cells.

    .venv/bin/python bench/bench_employers.py --people 1000000 [--seed 7] [--out DIR]

Prints the night's time, the workbooks and rows written, the conversion's wall time and the
workbooks that differ (none expected), as one JSON line at the end. The 34-scheme zips hold the
same workbooks byte for byte (tests/pipelines/test_employers.py checks it), so they are not
converted again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, however the venv was installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="work here (default: a temp dir)")
    args = parser.parse_args(argv)

    from pipelines import cli, spreadsheet_check
    from popsync import store
    from popsync.synthetic import generate_chunks, write_chunks

    folder = args.out or Path(tempfile.mkdtemp(prefix="bench-employers-"))
    nation = folder / "nation"
    if not (nation / "registry.parquet").exists():
        write_chunks(generate_chunks(args.people, args.seed), nation, force=True)
    config = folder / "employers.yaml"  # employer workbooks are off by default
    config.write_text("output:\n  employer_workbooks: true\n", "utf-8")
    started = time.perf_counter()
    code = cli.main(["run", "--registry", str(nation / "registry.parquet"), "--population",
                     str(nation / "population.parquet"), "--out", str(folder / "out"),
                     "--run-date", "2026-12-02", "--config", str(config)])
    night = time.perf_counter() - started
    if code != 0:
        print(f"the night failed ({code})", file=sys.stderr)
        return code
    publication = folder / "out" / store.publication_path("2026-12-02")
    figures = {"people": args.people, "night_seconds": round(night, 1), "workbooks": 0,
               "convert_seconds": 0.0, "differences": []}
    for zipped in sorted((publication / "employers" / "63").glob("*/employers.zip")):
        with tempfile.TemporaryDirectory(prefix="books-", dir=folder) as books:
            with zipfile.ZipFile(zipped) as archive:
                archive.extractall(books)
            workbooks = sorted(Path(books).glob("*.xlsx"))
            converted = Path(books) / "csv"
            started = time.perf_counter()
            spreadsheet_check.convert(workbooks, converted)
            figures["convert_seconds"] += time.perf_counter() - started
            figures["workbooks"] += len(workbooks)
            figures["differences"] += spreadsheet_check.differences(workbooks, converted)
        print(f"{zipped.parent.name}: {figures['workbooks']:,} workbooks so far, "
              f"{len(figures['differences'])} differing", flush=True)
    figures["convert_seconds"] = round(figures["convert_seconds"], 1)
    print(json.dumps(figures, ensure_ascii=False))
    return 0 if not figures["differences"] else 1


if __name__ == "__main__":
    sys.exit(main())
