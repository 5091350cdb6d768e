"""Time ``lists.write_lists`` (the ``stage_lists`` tasks' lists) on a 1M-people work folder.

    .venv/bin/python bench/bench_lists.py [--work DIR] [--repeats 3]

Loads the rows to fix with their registry fields per province group, as ``gather_lists``
leaves them, then writes every group's lists (63 and 34 schemes) into a fresh temporary folder
per repeat, each group's rows fed in slices of ``lists.SLICE_ROWS`` as ``stage_lists`` feeds
them. Prints wall and CPU time and the peak resident memory of each repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, however the venv was installed
sys.path.insert(0, str(ROOT / "bench"))


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None,
                        help="a night's work folder (default: bench/night.py's 1M night)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import pyarrow.parquet as pq
    from night import work_folder

    from pipelines import lists

    started = time.perf_counter()
    listed_folder = (args.work or work_folder()) / "listed"
    groups = {unit: offices for batch in json.loads((listed_folder / "batches.json").read_text())
              for unit, offices in batch.items()}
    listed = {unit: pq.read_table(listed_folder / f"unit={unit}").sort_by(
                  [("office_code", "ascending"), ("vss_code", "ascending")])
              for unit in groups if (listed_folder / f"unit={unit}").exists()}
    rows = sum(table.num_rows for table in listed.values())
    print(f"loaded {rows:,} rows to fix in {time.perf_counter() - started:.1f} s", flush=True)
    for repeat in range(1, args.repeats + 1):
        with tempfile.TemporaryDirectory(prefix="bench-lists-") as folder:
            wall, cpu = time.perf_counter(), cpu_seconds()
            files = sum(
                lists.write_lists(
                    (b.to_pandas() for b in listed[unit].to_batches(lists.SLICE_ROWS)),
                    offices, Path(folder), ("63", "34"), scratch=Path(folder))
                for unit, offices in groups.items() if unit in listed
            )
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
        print(
            f"repeat {repeat}: write_lists {wall:.2f} s wall, {cpu:.2f} s CPU; "
            f"{files} files, {size / 1e6:.1f} MB; peak resident "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
