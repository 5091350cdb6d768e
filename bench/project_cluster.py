"""Project a night measured by bench_national.py onto a Celery cluster of N two-core workers,
from its measured per-task costs and the night's declared waves (pipelines/night.py).

    .venv/bin/python bench/project_cluster.py bench/data/national_n101000000_result.json \
        [--workers 1 2 4 8] [--task-overhead 7] [--scale 1.0]

A fanned-out step's tasks are single-process work: with N workers of 2 slots each, the step
takes max(its longest task, the sum of its tasks' CPU seconds / 2N) plus the per-task start of
Airflow (``--task-overhead`` seconds, measured ~6-7 s by bench_scaleout.py) for each round of
2N tasks (the longest task is taken as the mean). A step of one task (the DuckDB sorts and
joins, the gates, publish) runs on one worker and keeps its measured wall time. Steps of one
wave run side by side: the wave takes its longest. ``--scale`` multiplies every measured
figure (e.g. 92/94.8 projects a measured 94.8 M-participant night to 92 M). Prints the
projection per wave and in total.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.night import levels  # noqa: E402


def project(steps: dict[str, dict], workers: int, overhead: float, scale: float) -> list:
    rows = []
    for wave in levels():
        times = {}
        for declared in wave:
            measured = steps.get(declared.name)
            if measured is None:
                continue
            if declared.over is None:
                times[declared.name] = measured["wall_s"] * scale + overhead
                continue
            slots = 2 * workers
            tasks = measured["tasks"]
            longest = measured.get("longest_task_s") or measured["task_seconds"] / tasks
            work = measured["cpu_s"] * scale  # CPU-bound tasks: their CPU time is the work
            times[declared.name] = (max(longest * scale, work / slots)
                                    + math.ceil(tasks / slots) * overhead)
        if times:
            rows.append((" | ".join(times), max(times.values())))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a national_nN_result.json of bench_national")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--task-overhead", type=float, default=7.0)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text("utf-8"))
    steps = {s["step"]: s for s in result["run"]["steps"]}
    print(f"{result['people']:,} people, {result['registry_rows']:,} participants, measured "
          f"{result['date']} at {result['commit']} on {result['cpus']} CPUs "
          f"(run wall {result['run']['wall_s']:.0f} s)")
    for workers in args.workers:
        rows = project(steps, workers, args.task_overhead, args.scale)
        total = sum(t for _, t in rows)
        print(f"\n{workers} worker(s) x 2 cores: {total / 60:.1f} min")
        for label, seconds in rows:
            print(f"  {label:<44} {seconds:8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
