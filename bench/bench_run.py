"""Measure ``popsync run`` end to end against the matching engine's own time on the same nation.

    .venv/bin/python bench/bench_run.py [--people 1000000] [--seed 3] [--max-rows 250000]
                                        [--workers N]

Two fresh child processes on the same generated nation (cached under bench/data/, git-ignored):
1. the engine alone: read both Parquet files, ``matching.reconcile`` (no validation, no output);
2. ``popsync run`` (extract, GX validation, birth-year bands, link per band, resolve, GX result
   checks, metrics, 194 list files, publication to SQLite).
Prints wall time, peak RSS of each, the ratio (target: run <= 2x engine), the run's time per
step, and how far the banded run's decisions agree with the whole-nation ``reconcile``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, however the venv was installed
sys.path.insert(0, str(ROOT / "bench"))
from night import nation  # noqa: E402  (the benchmarks' shared data)


def child_engine(folder: Path, out: Path) -> dict:
    import pandas as pd

    import matching

    started = time.perf_counter()
    registry = pd.read_parquet(folder / "registry.parquet")
    population = pd.read_parquet(folder / "population.parquet")
    results = matching.reconcile(registry, population, matching.Settings())
    wall = time.perf_counter() - started
    results[["vss_code", "status", "personal_id"]].to_parquet(out / "engine_results.parquet")
    return {"wall": wall}


def child_run(folder: Path, out: Path, max_rows: int, workers: int | None) -> dict:
    from pipelines import night, nightly_cli
    from pipelines.config import build_config

    config = build_config(
        {"partition": {"max_rows": max_rows}, "workers": workers},
        registry=folder / "registry.parquet", population=folder / "population.parquet",
        out_dir=out / "run",
    )
    started = time.perf_counter()
    work_dir = night.run_night(config, "2026-11-22")
    wall = time.perf_counter() - started
    print(nightly_cli.summary(work_dir), file=sys.stderr)
    steps: dict[str, float] = {}
    for path in Path(work_dir, "timings").glob("*.json"):
        timing = json.loads(path.read_text("utf-8"))
        steps[timing["step"]] = steps.get(timing["step"], 0.0) + timing["seconds"]
    bands = len(list(Path(work_dir, "timings").glob("match-*.json")))
    return {"wall": wall, "steps": steps, "bands": bands, "work_dir": work_dir,
            "workers": config.workers}


def spawn(kind: str, folder: Path, out: Path, max_rows: int, workers: int | None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--folder", str(folder), "--out", str(out),
         "--max-rows", str(max_rows), *(["--workers", str(workers)] if workers else [])],
        capture_output=True, text=True, cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{done.stderr[-4000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def agreement(out: Path, work_dir: str, folder: Path) -> dict:
    import pandas as pd

    whole = pd.read_parquet(out / "engine_results.parquet")
    published = out / "run" / "publications" / "2026-11-22" / "results.parquet"
    banded = pd.read_parquet(published, columns=["vss_code", "status", "personal_id"])
    both = whole.merge(banded, on="vss_code", suffixes=("_whole", "_banded"))
    same_status = (both["status_whole"] == both["status_banded"]).mean()
    same_person = (both["personal_id_whole"].fillna("-") == both["personal_id_banded"].fillna("-"))
    truth = pd.read_parquet(folder / "truth.parquet", columns=["vss_code", "personal_id"])
    scored = {}
    for name, frame in (("whole", whole), ("banded", banded)):
        merged = frame.merge(truth, on="vss_code", suffixes=("", "_true"))
        linked = merged["status"].isin(["synchronized", "needs_correction"])
        correct = linked & (merged["personal_id"] == merged["personal_id_true"]).fillna(False)
        precision = correct.sum() / max(linked.sum(), 1)
        recall = correct.sum() / max(merged["personal_id_true"].notna().sum(), 1)
        scored[name] = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"same_status": float(same_status), "same_person": float(same_person.mean()),
            "f1_whole": float(scored["whole"]), "f1_banded": float(scored["banded"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="popsync run's local processes (default: the CPUs)")
    parser.add_argument("--child", choices=["engine", "run"])
    parser.add_argument("--folder")
    parser.add_argument("--out")
    args = parser.parse_args()

    if args.child:
        child = child_engine if args.child == "engine" else child_run
        extra = () if args.child == "engine" else (args.max_rows, args.workers)
        result = child(Path(args.folder), Path(args.out), *extra)
        own = resource.getrusage(resource.RUSAGE_SELF)
        workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # forked workers, if any
        result["peak_gib"] = own.ru_maxrss / 2**20
        result["worker_peak_gib"] = workers.ru_maxrss / 2**20
        result["cpu"] = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
        print("RESULT " + json.dumps(result))
        return 0

    folder = nation(args.people, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        out = Path(scratch)
        engine = spawn("engine", folder, out, args.max_rows, None)
        run = spawn("run", folder, out, args.max_rows, args.workers)
        load = open("/proc/loadavg").read().split()[0]
        print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, 2 cores, "
              f"load {load}; {args.people:,} people, seed {args.seed}, bands of {args.max_rows:,}")
        print(f"engine alone (reconcile)  {engine['wall']:7.1f} s   cpu {engine['cpu']:6.1f} s   "
              f"peak {engine['peak_gib']:.2f} GiB")
        print(f"popsync run end to end    {run['wall']:7.1f} s   cpu {run['cpu']:6.1f} s   "
              f"peak {run['peak_gib']:.2f} GiB main, {run['worker_peak_gib']:.2f} GiB largest "
              f"worker   ({run['bands']} bands, workers {run['workers']})")
        print(f"ratio run / engine        {run['wall'] / engine['wall']:7.2f}   (target <= 2)")
        print("run steps (wall; match: the sum over its bands): " + ", ".join(
            f"{k} {v:.1f} s" for k, v in sorted(run["steps"].items(), key=lambda kv: -kv[1])),
            flush=True)
        agree = agreement(out, run["work_dir"], folder)
    print(f"banded vs whole: same status {agree['same_status']:.4%}, same person "
          f"{agree['same_person']:.4%}; F1 whole {agree['f1_whole']:.4f}, "
          f"banded {agree['f1_banded']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
