"""Memory and time of one matching task (``match``) at a given population size, the figure that
bounds the national night's matching: a cohort whose slice holds as many persons as the
national nation's largest (about 6.6 M).

    .venv/bin/python bench/bench_cohort.py --work WORK_DIR [--persons 6600000] [--band N]
    .venv/bin/python bench/bench_cohort.py --work WORK_DIR --cohort N

``WORK_DIR``: a night's work folder with its source chunks, band specs and quoted persons, of a
night stopped after ``prepare_population`` (or a copy of a running night's; never the running
night's own: the task writes its results and report into it). The task is
the night's own (``steps.match_cohort``) on a cohort of one band whose years are widened, around
the band's, until its population slice holds ``--persons`` persons: a smaller nation then
stands for a denser one. ``--cohort N`` runs the night's own cohort N as planned instead (all
its bands, one preparation of its slice): at the national size, the real per-task cost. Runs the
task in a child process and prints its peak resident memory
(``ru_maxrss``), wall and CPU seconds, and what it read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def widened(work: Path, band_index: int | None, persons: int) -> dict:
    """A cohort of one band (the largest, or ``band_index``) whose years reach ``persons``."""
    import duckdb

    from expectations.nation import files_sql
    from pipelines import partition

    bands = [b for p in sorted((work / "bands").glob("cohort-*.json"))
             for b in json.loads(p.read_text())["bands"]]
    bands = [b for b in bands if b["year_min"] is not None]
    band = (max(bands, key=lambda b: b["rows"]) if band_index is None
            else next(b for b in bands if b["index"] == band_index))
    chunks = sorted(str(p) for p in (work / "sources" / "population").glob("*.parquet"))
    per_year = dict(duckdb.sql(
        f"SELECT {partition.BIRTH_YEAR}, count(*) FROM read_parquet({files_sql(chunks)}) "
        "GROUP BY ALL").fetchall())
    lo, hi = band["year_min"], band["year_max"]

    def slice_persons(lo: int, hi: int) -> int:
        return per_year.get(None, 0) + sum(per_year.get(y, 0) for y in range(
            lo - partition.YEAR_MARGIN, hi + partition.YEAR_MARGIN + 1))

    years = sorted(y for y in per_year if y is not None)
    while slice_persons(lo, hi) < persons and (lo > years[0] or hi < years[-1]):
        if slice_persons(lo - 1, hi) - slice_persons(lo, hi) >= slice_persons(lo, hi + 1) - \
                slice_persons(lo, hi) and lo > years[0]:
            lo -= 1
        elif hi < years[-1]:
            hi += 1
        else:
            lo -= 1
    spec = {**band, "year_min": lo, "year_max": hi}
    return {"index": 99999, "bands": [spec], "year_min": lo, "year_max": hi, "partitions": 1,
            "persons": slice_persons(lo, hi)}


def planned(work: Path, index: int) -> dict:
    """The night's cohort ``index`` as planned, renumbered so that what it writes is removed."""
    cohort = json.loads((work / "bands" / f"cohort-{index:05d}.json").read_text())
    return {**cohort, "index": 99999}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (forked workers of the task)."""
    times = os.times()
    return times.children_user + times.children_system


def child(work: str, spec: str) -> None:
    from pipelines import steps

    started, cpu = time.perf_counter(), time.process_time()
    steps.match_cohort(work, work, piece=spec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": time.perf_counter() - started,
                      "cpu_s": time.process_time() - cpu + _children_cpu(),
                      "peak_rss_gib": usage.ru_maxrss / 2**20}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--persons", type=int, default=6_600_000)
    parser.add_argument("--band", type=int, default=None)
    parser.add_argument("--cohort", type=int, default=None, metavar="N",
                        help="the night's cohort N as planned (bands/cohort-N.json)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    cohort = (widened(args.work, args.band, args.persons) if args.cohort is None else
              planned(args.work, args.cohort))
    with tempfile.TemporaryDirectory(prefix="bench-cohort-", dir=args.work) as folder:
        spec = Path(folder) / "cohort-99999.json"
        spec.write_text(json.dumps(cohort))
        out = subprocess.run(
            [sys.executable, __file__, "--work", str(args.work), "--child", str(args.work),
             str(spec)], check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    # the test results this wrote into the work folder's person partitions are removed
    for path in (args.work / "persons").glob("part=*/cohort-99999.parquet"):
        path.unlink()
    for path in (args.work / "parts").glob("results-*.json"):
        if json.loads(path.read_text()).get("cohort") == 99999:
            path.unlink()
    band = cohort["bands"][0]
    if args.cohort is not None:
        rows = sum(b["rows"] for b in cohort["bands"])
        print(f"cohort {args.cohort}: {len(cohort['bands'])} bands ({rows:,} registry rows), "
              f"years {cohort['year_min']}-{cohort['year_max']} (+/-1); match task "
              f"{figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU "
              f"({figures['cpu_s'] / rows * 1e6:.1f} s per M rows), peak resident "
              f"{figures['peak_rss_gib']:.2f} GiB")
        return 0
    print(f"band {band['index']} ({band['rows']:,} registry rows), years {cohort['year_min']}-"
          f"{cohort['year_max']} (+/-1): {cohort['persons']:,} persons; match task "
          f"{figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU, peak resident "
          f"{figures['peak_rss_gib']:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
