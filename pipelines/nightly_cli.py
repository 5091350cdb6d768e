"""``popsync run``: the night's steps of the Airflow DAG, in the same order, on one machine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pipelines import steps
from pipelines.config import load_config
from popsync import parallel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="registry file or URL (overrides registry.source)")
    parser.add_argument("--population", help="population file or URL (overrides population.source)")
    parser.add_argument("--out", help="output folder (overrides output.dir; default ./out)")
    parser.add_argument("--config", help="run configuration YAML (see config/popsync.example.yaml)")
    parser.add_argument(
        "--run-date",
        default=steps.run_date_of(datetime.now(UTC)),
        help="run date YYYY-MM-DD (default: today in Asia/Ho_Chi_Minh, as the nightly DAG)",
    )
    parser.add_argument("--db-url", help="publication database URL (default: SQLite under --out)")


def _call(call: tuple) -> object:
    function, *args = call
    return function(*args)


def _phase(label: str, calls: list[tuple], workers: int) -> list:
    """Run independent steps (or a step's mapped tasks) at once, on up to ``workers`` processes."""
    print(f"  {label:<34}", end="", flush=True, file=sys.stderr)
    started = time.perf_counter()
    results = parallel.map_forked(_call, calls, workers)
    print(f"done in {time.perf_counter() - started:6.1f} s", file=sys.stderr)
    return results


def _match_band(work_dir: str, spec_path: str) -> str:
    return steps.match_partition(work_dir, spec_path=spec_path)


def run_night(config, run_date: str) -> str:
    """All steps for one run date, in the DAG's order and with its independence: steps the DAG
    runs side by side run at once here too. Returns the work folder."""
    work_dir = steps.start_run(config, run_date)
    workers = config.workers
    print(f"popsync run {run_date}: work folder {work_dir}", file=sys.stderr)
    _phase("extract", [(steps.extract_sources, work_dir)], 1)
    _, specs = _phase(
        "validate inputs | plan bands",
        [(steps.validate_inputs, work_dir), (steps.plan_partitions, work_dir)],
        workers,
    )
    parts = _phase(
        f"match {len(specs)} band{'' if len(specs) == 1 else 's'}",
        [(_match_band, work_dir, spec) for spec in specs],
        workers,
    )
    _phase("resolve", [(steps.resolve_results, work_dir, parts)], 1)
    _phase(
        "validate results | stage",
        [(steps.validate_results, work_dir), (steps.stage_publication, work_dir)],
        workers,
    )
    _phase("publish", [(steps.publish_run, work_dir)], 1)
    return work_dir


def summary(work_dir: str) -> str:
    """One screen: rows read, quarantined, statuses, national rate, slowest step, outputs."""
    state = json.loads((Path(work_dir) / steps.RUN_FILE).read_text("utf-8"))
    folder = Path(state["out_dir"]) / "publications" / state["run_date"]
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    timings: dict[str, float] = {}
    for path in (Path(work_dir) / "timings").glob("*.json"):
        timing = json.loads(path.read_text("utf-8"))
        timings[timing["step"]] = timings.get(timing["step"], 0.0) + timing["seconds"]
    slowest = max(timings, key=timings.get)
    statuses = "  ".join(f"{k} {v:,}" for k, v in manifest["statuses"].items())
    return "\n".join(
        [
            f"popsync run {state['run_date']} (run {state['run_id']}): published",
            f"  rows read      registry {manifest['rows']['registry']:,}  "
            f"population {manifest['rows']['population']:,}",
            f"  quarantined    registry {manifest['quarantined']['registry']:,}  "
            f"population {manifest['quarantined']['population']:,}  (quarantine.parquet)",
            f"  statuses       {statuses}",
            f"  national rate  {manifest['sync_rate']:.2%}",
            f"  slowest step   {slowest} ({timings[slowest]:.1f} s of the steps' "
            f"{sum(timings.values()):.1f} s; independent steps and bands run side by side)",
            f"  publication    {folder}",
            f"  lists          {folder / 'lists'}/<63|34>/<province>/unsynchronized.xlsx|csv",
            f"  report         {folder / 'validation_report.html'}",
            f"  database       {state['db_url'].split('@')[-1]}",
        ]
    )


def main(args: argparse.Namespace) -> int:
    config = load_config(
        args.config,
        registry=args.registry,
        population=args.population,
        out_dir=args.out,
        db_url=args.db_url,
    )
    work_dir = run_night(config, args.run_date)
    print(summary(work_dir))
    return 0
