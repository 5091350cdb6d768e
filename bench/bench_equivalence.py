"""Check that this checkout's night publishes what an earlier revision's night publishes on the
same nation: results row by row (by VSS code), metrics, reason counts, every province list and
the quarantine. Lists every difference it finds.

    .venv/bin/python bench/bench_equivalence.py --baseline 34ac81a [--people 1000000] [--seed 3]
        [--config FILE] [--keep]

The baseline revision is checked out as a git worktree under bench/data/ and run with this
checkout's virtual environment (its own packages first on the path); the nation is the cached
one of bench/night.py. Prints each night's wall time and the comparison; exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from night import DATA, RUN_DATE, nation  # noqa: E402

RUN = "import sys; sys.path.insert(0, sys.argv[1]); from pipelines.cli import main; " \
      "sys.exit(main(sys.argv[2:]))"


def run_night(code: Path, registry: Path, population: Path, out: Path, config: Path | None):
    shutil.rmtree(out, ignore_errors=True)
    extra = ["--config", str(config)] if config else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(code), "run", "--registry", str(registry),
         "--population", str(population), "--out", str(out), "--run-date", RUN_DATE, *extra],
        cwd=code, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the night of {code} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def _table(out: Path, name: str) -> pd.DataFrame:
    with sqlite3.connect(out / "popsync.db") as connection:
        frame = pd.read_sql(f"SELECT * FROM {name}", connection)
    frame = frame.drop(columns=[c for c in ("run_id",) if c in frame])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def compare(baseline: Path, current: Path) -> list[str]:
    """Every difference between two output folders' publications of RUN_DATE."""
    a, b = baseline / "publications" / RUN_DATE, current / "publications" / RUN_DATE
    found = []
    ra = pd.read_parquet(a / "results.parquet").set_index("vss_code").sort_index()
    rb = pd.read_parquet(b / "results.parquet").set_index("vss_code").sort_index()
    if not ra.index.equals(rb.index):
        found.append(f"results: {len(ra):,} vs {len(rb):,} rows, or other VSS codes")
        return found
    for column in ra.columns:
        x, y = ra[column], rb[column]
        if column == "reasons":
            x, y = x.map(",".join), y.map(",".join)
        differs = ~((x == y) | (x.isna() & y.isna()))
        if differs.any():
            found.append(f"results.{column}: {int(differs.sum()):,} rows differ")
    for name in ("metrics", "reason_counts"):
        if not _table(baseline, name).equals(_table(current, name)):
            found.append(f"{name} differ")
    lists_a = sorted(p.relative_to(a) for p in (a / "lists").rglob("*.csv"))
    lists_b = sorted(p.relative_to(b) for p in (b / "lists").rglob("*.csv"))
    if lists_a != lists_b:
        found.append(f"list files: {len(lists_a)} vs {len(lists_b)}")
    for path in set(lists_a) & set(lists_b):
        x, y = pd.read_csv(a / path, dtype=str), pd.read_csv(b / path, dtype=str)
        x = x.sort_values(list(x.columns)).reset_index(drop=True)
        y = y.sort_values(list(y.columns)).reset_index(drop=True)
        if not x.equals(y):
            found.append(f"list {path}: rows differ ({len(x)} vs {len(y)})")
    qa, qb = (pd.read_parquet(p / "quarantine.parquet") for p in (a, b))
    keys = ["source", "row", "reason"]
    try:  # (an empty quarantine's column types differ between versions: values count)
        pd.testing.assert_frame_equal(qa.sort_values(keys).reset_index(drop=True),
                                      qb.sort_values(keys).reset_index(drop=True),
                                      check_dtype=False, check_index_type=False)
    except AssertionError:
        found.append(f"quarantine: {len(qa):,} vs {len(qb):,} rows")
    found.append(f"compared {len(ra):,} results, {len(lists_a)} list files")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--config", type=Path, help="run configuration for both nights")
    parser.add_argument("--keep", action="store_true", help="keep both output folders")
    args = parser.parse_args(argv)
    source = nation(args.people, args.seed)
    tree = DATA / f"baseline-{args.baseline}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline],
                       cwd=ROOT, check=True, capture_output=True)
    outs = {"baseline": DATA / "equivalence-baseline", "current": DATA / "equivalence-current"}
    for label, code in (("baseline", tree), ("current", ROOT)):
        seconds = run_night(code, source / "registry.parquet", source / "population.parquet",
                            outs[label], args.config)
        print(f"{label} ({code.name}): {seconds:.1f} s", flush=True)
    found = compare(outs["baseline"], outs["current"])
    print("\n".join(found))
    if not args.keep:
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
    return 1 if len(found) > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
