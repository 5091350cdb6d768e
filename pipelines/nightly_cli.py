"""``popsync run``: the night's graph (``pipelines.night``), the Airflow DAG's, on one machine."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from pipelines import night, steps
from pipelines.config import load_config
from pipelines.context import RunContext
from popsync import store
from popsync.errors import PopsyncError


def _run_date(text: str) -> str:
    try:
        return steps.iso_date(text)
    except PopsyncError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="registry file or URL (overrides registry.source)")
    parser.add_argument("--population", help="population file or URL (overrides population.source)")
    parser.add_argument("--out", help="output folder (overrides output.dir; default ./out)")
    parser.add_argument("--config", help="run configuration YAML (see config/popsync.example.yaml)")
    parser.add_argument(
        "--run-date",
        default=steps.run_date_of(datetime.now(UTC)),
        type=_run_date,
        help="run date YYYY-MM-DD (default: today in Asia/Ho_Chi_Minh, as the nightly DAG)",
    )
    parser.add_argument("--db-url", help="publication database URL (default: SQLite under --out)")


def summary(work_dir: str) -> str:
    """One screen: rows read, quarantined, statuses, national rate, slowest step, outputs."""
    ctx = RunContext.load(work_dir)
    folder = ctx.out_dir / store.publication_path(ctx.run_date)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    timings: dict[str, float] = {}
    for path in (Path(work_dir) / "timings").glob("*.json"):
        timing = json.loads(path.read_text("utf-8"))
        timings[timing["step"]] = timings.get(timing["step"], 0.0) + timing["seconds"]
    slowest = max(timings, key=timings.get)
    statuses = "  ".join(f"{k} {v:,}" for k, v in manifest["statuses"].items())
    return "\n".join(
        [
            f"popsync run {ctx.run_date} (run {ctx.run_id}): published",
            f"  rows read      registry {manifest['rows']['registry']:,}  "
            f"population {manifest['rows']['population']:,}",
            f"  quarantined    registry {manifest['quarantined']['registry']:,}  "
            f"population {manifest['quarantined']['population']:,}  (quarantine.parquet)",
            f"  statuses       {statuses}",
            f"  national rate  {manifest['sync_rate']:.2%}",
            f"  slowest step   {slowest} ({timings[slowest]:.1f} s of the steps' "
            f"{sum(timings.values()):.1f} s; independent steps and fanned-out tasks run side "
            "by side)",
            f"  publication    {folder}",
            f"  lists          {folder / 'lists'}/<63|34>/<province>/unsynchronized.xlsx|csv",
            f"  report         {folder / 'validation_report.html'}",
            f"  database       {ctx.db_url.split('@')[-1]}",
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
    work_dir = night.run_night(config, args.run_date)
    print(summary(work_dir))
    return 0
