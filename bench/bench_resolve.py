"""Measure ``matching.resolve`` on the band outputs of a ``popsync run`` work folder, and how much
of ``matching.link`` on one band is building the results table.

    .venv/bin/python bench/bench_resolve.py [--work DIR] [--repeats 3] [--link-band 0]

The work folder defaults to the 1M-people night of ``bench/night.py`` (built once). Its
``parts/results-*.parquet`` are read with ``pd.read_parquet`` each, concatenated (``reasons``
arrives as arrays) and resolved ``--repeats`` times; ``--arrow-input`` also times reading them with
``reasons`` as an Arrow list column (``pipelines.steps._read_results``). With ``--link-band N``,
band N is linked from ``partitions/`` and ``population.parquet`` and the time of its result
building (``assemble``: statuses, reasons, suggestions, explanations, one-to-one) is set against
the whole link. Every figure is wall and CPU (``time.process_time``, all threads) seconds: on a
shared machine trust the CPU figure and the best of the repeats.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine of this checkout, however the venv was installed
sys.path.insert(0, str(ROOT / "bench"))


class Clock:
    """Wall and CPU seconds of one timed block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s wall {self.cpu:6.2f} s CPU"


def read_parts(work: Path, arrow: bool):
    import pandas as pd

    paths = sorted((work / "parts").glob("results-*.parquet"))
    if not paths:
        raise SystemExit(f"no band outputs under {work / 'parts'}: run popsync first")
    if arrow:
        from pipelines.steps import _read_results

        return pd.concat([_read_results(p) for p in paths], ignore_index=True)
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def bench_resolve(work: Path, repeats: int, arrow: bool) -> list[Clock]:
    import matching

    label = "Arrow lists" if arrow else "pd.read_parquet"
    if arrow:
        import pipelines.steps  # noqa: F401  (its imports, GX among them, are not reading time)
    with Clock() as reading:
        parts = read_parts(work, arrow)
    print(f"read {len(parts):,} band rows ({label}):  {reading}")
    clocks = []
    for attempt in range(repeats):
        with Clock() as clock:
            resolved = matching.resolve(parts)
        clocks.append(clock)
        print(f"  resolve #{attempt + 1}:  {clock}")
    changed = (resolved["status"] != parts["status"]).sum()
    print(f"  best {min(c.wall for c in clocks):.2f} s wall, "
          f"{min(c.cpu for c in clocks):.2f} s CPU; {changed:,} statuses changed across bands")
    return clocks


def bench_link(work: Path, band: int, repeats: int) -> None:
    import matching
    from matching import engine
    from pipelines.partition import read_band

    spec = json.loads((work / "partitions" / f"partition-{band:04d}.json").read_text("utf-8"))
    registry, population = read_band(spec, work / "population.parquet")
    print(f"link band {band}: {len(registry):,} registry rows, {len(population):,} persons")
    # result building: assemble, and resolve_duplicates where link still calls it after assemble
    originals = {name: getattr(engine, name) for name in ("assemble", "resolve_duplicates")}
    spent: list[Clock] = []

    def timed(function):
        def run(*args, **kwargs):
            with Clock() as clock:
                results = function(*args, **kwargs)
            spent.append(clock)
            return results
        return run

    for name, function in originals.items():
        setattr(engine, name, timed(function))
    try:
        for attempt in range(repeats):
            spent.clear()
            with Clock() as whole:
                linked = matching.link(registry, population)
            wall, cpu = sum(c.wall for c in spent), sum(c.cpu for c in spent)
            print(f"  link #{attempt + 1}: {whole}; results building {wall:.2f} s wall "
                  f"{cpu:.2f} s CPU = {wall / whole.wall:.0%} wall, {cpu / whole.cpu:.0%} CPU; "
                  f"stages {linked.report['seconds']}")
    finally:
        for name, function in originals.items():
            setattr(engine, name, function)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None,
                        help="a popsync run work folder (default: bench/night.py's 1M night)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arrow-input", action="store_true",
                        help="also time resolve on parts read with reasons as Arrow lists")
    parser.add_argument("--link-band", type=int, default=None,
                        help="also link this band and time its result building")
    args = parser.parse_args()
    if args.work is None:
        from night import work_folder

        args.work = work_folder()
    bench_resolve(args.work, args.repeats, arrow=False)
    if args.arrow_input:
        bench_resolve(args.work, args.repeats, arrow=True)
    if args.link_band is not None:
        bench_link(args.work, args.link_band, args.repeats)


if __name__ == "__main__":
    main()
