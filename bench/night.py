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
    """A night's work folder up to validated results (nothing published): parts/, results."""
    out = DATA / f"night_n{people}_s{seed}"
    marker = out / "work_folder.json"
    if marker.exists():
        return Path(json.loads(marker.read_text("utf-8"))["work_dir"])
    from pipelines import steps
    from pipelines.config import build_config

    source = nation(people, seed)
    config = build_config(
        registry=source / "registry.parquet", population=source / "population.parquet",
        out_dir=out,
    )
    print(f"building the benchmark night under {out} (once)", file=sys.stderr)
    work_dir = steps.start_run(config, RUN_DATE)
    steps.extract_sources(work_dir)
    steps.validate_inputs(work_dir)
    specs = steps.plan_partitions(work_dir)
    parts = [steps.match_partition(work_dir, spec_path=spec) for spec in specs]
    steps.resolve_results(work_dir, parts)
    steps.validate_results(work_dir)
    marker.write_text(json.dumps({"work_dir": work_dir}), "utf-8")
    return Path(work_dir)
