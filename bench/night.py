"""Data the benchmarks share, built once and cached under bench/data/ (git-ignored):
a generated nation, and a work folder of one night stopped before publication (its band
outputs, results, metrics), for benchmarks of the steps after matching."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, however the venv was installed
DATA = ROOT / "bench" / "data"
RUN_DATE = "2026-11-22"


def nation(people: int, seed: int) -> Path:
    folder = DATA / f"run_n{people}_s{seed}"
    if not (folder / "registry.parquet").exists():
        from popsync.synthetic.nation import generate_chunks, write_chunks

        write_chunks(generate_chunks(people, seed, "default"), folder, force=True)
    return folder


def work_folder(people: int = 1_000_000, seed: int = 3) -> Path:
    """A night's work folder up to checked results and gathered lists (nothing published):
    persons/ (band results by person), results/ (resolved partitions), listed/ (rows to fix per
    group)."""
    out = DATA / f"night_n{people}_s{seed}"
    marker = out / "work_folder.json"
    if marker.exists():
        return Path(json.loads(marker.read_text("utf-8"))["work_dir"])
    from pipelines import night
    from pipelines.config import build_config

    source = nation(people, seed)
    config = build_config(
        registry=source / "registry.parquet", population=source / "population.parquet",
        out_dir=out,
    )
    print(f"building the benchmark night under {out} (once)", file=sys.stderr)
    work_dir = night.run_night(config, RUN_DATE, until="gather_lists")
    marker.write_text(json.dumps({"work_dir": work_dir}), "utf-8")
    return Path(work_dir)
