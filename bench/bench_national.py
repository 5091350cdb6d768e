"""Measure a national night: ``popsync run`` on a nation of N people, step by step, with the wall
time, CPU, memory of the whole process tree and size of the work folder.

    .venv/bin/python bench/bench_national.py --people 10000000 [--people 30000000 ...] [--seed 3]
        [--data DIR] [--workers N] [--keep] [--generate-only] [--delete-nation]
    .venv/bin/python bench/bench_national.py --nation FOLDER [--data DIR] [--workers N] [--keep]

For each size, the nation is ``DIR/national_nN_sS`` (default DIR: bench/data, git-ignored),
generated with ``popsync generate`` when missing (its wall time, CPU and peak memory measured
too); ``--nation`` uses an existing folder holding registry.parquet and population.parquet
instead. ``popsync run`` then runs as a child process into ``DIR/national_out_nN`` while
bench/procmem.py samples every half second the PSS of its process tree (forked workers
included; PSS counts a page shared by several processes once, RSS in each) and the size of
its ``work/`` folder. Per step, from the run's ``timings/*.json``: tasks, wall, CPU and the
memory peaks over the step's span (when the timings give ``started``/``finished`` and
``cpu_seconds``; otherwise wall is the sum of the tasks' seconds and only whole-run peaks are
given). Whole run: wall, CPU of the tree (``wait4``), peaks, work folder vs input size,
seconds per million participants. Figures go to ``DIR/national_nN_result.json`` and a Markdown
table to paste into bench/RESULTS.md. When the nation has its truth (``popsync generate``
writes it), the published night is scored against it (``bench_quality.py``: precision, recall,
calibration, the error estimates) into the JSON. The out folder is deleted afterwards unless
``--keep`` (or the run failed); the nation is kept unless ``--delete-nation``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from procmem import Sample, TreeSampler, folder_size, peaks_between  # noqa: E402

POPSYNC = ROOT / ".venv" / "bin" / "popsync"
RUN_DATE = "2026-11-22"
GIB = 2**30
INPUTS = ("registry.parquet", "population.parquet")


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def git_commit() -> str:
    """The short commit, marked ``+dirty`` when tracked files differ from it: the benchmark runs
    the working tree, which may not be what the commit holds."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def gib(value: int | None, decimals: int = 2) -> str:
    return "—" if value is None else f"{value / GIB:.{decimals}f}"


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def measure(command: list[str], log: Path, folder: Path | None = None) -> dict:
    """Run ``command`` to its end, sampling its process tree (and ``folder``); output to ``log``."""
    with open(log, "wb") as output:
        started = time.time()
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        with TreeSampler(process.pid, folder=folder) as sampler:
            # wait4 rather than wait(): its rusage covers the child and every descendant it
            # waited for (the forked workers), and ru_maxrss is the exact largest-process peak.
            _, status, usage = os.wait4(process.pid, 0)
        finished = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait
    peaks = peaks_between(sampler.samples, started, finished)
    return {
        "returncode": process.returncode,
        "started": started,
        "finished": finished,
        "wall_s": finished - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_tree_pss": peaks.tree_pss,
        "peak_largest_pss": peaks.largest_pss,
        "peak_largest_rss": peaks.largest_rss,
        "max_rss_kernel": usage.ru_maxrss * 1024,  # KiB on Linux
        "peak_folder_bytes": peaks.folder_bytes,
        "samples": sampler.samples,
    }


def failed(what: str, measured: dict, log: Path) -> str:
    code = measured["returncode"]
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return f"{what} failed ({how}) after {measured['wall_s']:.1f} s; last lines of {log}:\n" + tail(
        log
    )


def is_nation(folder: Path) -> bool:
    try:
        return all(pq.ParquetFile(folder / name).metadata is not None for name in INPUTS)
    except (OSError, pa.ArrowException):  # missing, or a file cut short
        return False


def generation_file(nation: Path) -> Path:
    return nation.parent / f"{nation.name}_generation.json"


def generate(people: int, seed: int, folder: Path) -> dict:
    """Generate the nation into ``folder``, measured; raises SystemExit when it fails."""
    log = folder.parent / f"{folder.name}_generate.log"
    command = [str(POPSYNC), "generate", "--people", str(people), "--seed", str(seed),
               "--out", str(folder)]
    if folder.exists():  # an earlier generation's leftovers: popsync refuses a non-empty folder
        command.append("--force")
    print(f"generating {people:,} people (seed {seed}) into {folder}", file=sys.stderr, flush=True)
    measured = measure(command, log)
    if measured["returncode"] != 0:
        raise SystemExit(failed("popsync generate", measured, log))
    del measured["samples"], measured["peak_folder_bytes"]
    measured.update(nation_bytes=folder_size(folder), date=date.today().isoformat(),
                    commit=git_commit())
    generation_file(folder).write_text(json.dumps(measured, indent=1), "utf-8")
    print(f"  generated in {measured['wall_s']:.1f} s (CPU {measured['cpu_s']:.1f} s), peak PSS "
          f"{gib(measured['peak_tree_pss'])} GiB, largest process RSS "
          f"{gib(measured['max_rss_kernel'])} GiB; {gib(measured['nation_bytes'], 3)} GiB "
          f"on disk", file=sys.stderr, flush=True)
    return measured


def newest_work_folder(out: Path) -> Path:
    folders = [p for p in (out / "work").iterdir() if p.is_dir()]
    return max(folders, key=lambda p: p.stat().st_mtime)


def step_figures(work_dir: Path, samples: list[Sample]) -> list[dict]:
    """One row per step (mapped tasks, which share a step name, aggregated), in running order."""
    tasks_of: dict[str, list[dict]] = {}
    for path in (work_dir / "timings").glob("*.json"):
        timing = json.loads(path.read_text("utf-8"))
        # Without "started", the file's time less the step's seconds still orders the steps.
        timing["_order"] = timing.get("started", path.stat().st_mtime - timing["seconds"])
        tasks_of.setdefault(timing["step"], []).append(timing)
    rows = []
    for step, tasks in tasks_of.items():
        spanned = all("started" in t and "finished" in t for t in tasks)
        row = {"step": step, "tasks": len(tasks), "wall_is_sum": not spanned,
               "task_seconds": sum(t["seconds"] for t in tasks),
               "cpu_s": (sum(t["cpu_seconds"] for t in tasks)
                         if all("cpu_seconds" in t for t in tasks) else None),
               "started": None, "finished": None, "peak_largest_pss": None,
               "peak_tree_pss": None, "peak_work_bytes": None,
               "_order": min(t["_order"] for t in tasks)}
        if spanned:
            row["started"] = min(t["started"] for t in tasks)
            row["finished"] = max(t["finished"] for t in tasks)
            peaks = peaks_between(samples, row["started"], row["finished"])
            row.update(peak_largest_pss=peaks.largest_pss, peak_tree_pss=peaks.tree_pss,
                       peak_work_bytes=peaks.folder_bytes)
        row["wall_s"] = row["finished"] - row["started"] if spanned else row["task_seconds"]
        rows.append(row)
    rows.sort(key=lambda r: r.pop("_order"))
    return rows


def write_workers_config(folder: Path, workers: int) -> Path:
    path = folder / "workers.yaml"
    path.write_text(f"workers: {workers}\n", "utf-8")
    return path


def run_night(nation: Path, out: Path, log: Path, workers: int | None) -> dict:
    """``popsync run`` on ``nation`` into ``out``, measured; the returned figures include the
    run's steps when it succeeded."""
    if out.exists():  # an earlier --keep: its runs would mix with this one's work folder
        print(f"removing the previous out folder {out}", file=sys.stderr)
        shutil.rmtree(out)
    command = [str(POPSYNC), "run", "--registry", str(nation / "registry.parquet"),
               "--population", str(nation / "population.parquet"), "--out", str(out),
               "--run-date", RUN_DATE]
    with tempfile.TemporaryDirectory(prefix="bench-national-") as scratch:
        if workers is not None:
            command += ["--config", str(write_workers_config(Path(scratch), workers))]
        print(f"popsync run on {nation} into {out}", file=sys.stderr, flush=True)
        measured = measure(command, log, folder=out / "work")
    samples = measured.pop("samples")
    measured["peak_work_bytes"] = measured.pop("peak_folder_bytes")
    measured["samples"] = len(samples)
    if (out / "work").is_dir():  # the steps that finished, also when the run did not
        measured["steps"] = step_figures(newest_work_folder(out), samples)
    if measured["returncode"] == 0:
        measured["out_bytes"] = folder_size(out)
    return measured


def run_summary(log: Path) -> str:
    """The summary ``popsync run`` prints last (rows, statuses, national rate, outputs)."""
    lines = log.read_text("utf-8", errors="replace").splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("popsync run ")
             and line.endswith(": published")]
    return "\n".join(lines[heads[-1]:]) if heads else tail(log, 12)


def print_steps(steps: list[dict]) -> None:
    print(f"  {'step':<20} {'tasks':>5} {'wall s':>9} {'CPU s':>8} "
          f"{'largest process GiB':>20} {'all processes (PSS) GiB':>24}")
    for row in steps:
        wall = f"{row['wall_s']:.1f}" + ("*" if row["wall_is_sum"] and row["tasks"] > 1 else " ")
        cpu = "—" if row["cpu_s"] is None else f"{row['cpu_s']:.1f}"
        print(f"  {row['step']:<20} {row['tasks']:>5} {wall:>9} {cpu:>8} "
              f"{gib(row['peak_largest_pss']):>20} {gib(row['peak_tree_pss']):>24}")
    if any(row["wall_is_sum"] and row["tasks"] > 1 for row in steps):
        print("  * the sum of the tasks' own times (no start/finish in the timings; they may have "
              "run side by side)")
    if all(row["started"] is None for row in steps):
        print("  (the timings give no start/finish: memory peaks for the whole run only)")


def print_result(result: dict) -> None:
    run = result["run"]
    print(f"\n== {result['people']:,} people: {result['nation']} ==")
    print(f"date {result['date']}, commit {result['commit']}, {result['machine']}, "
          f"{result['cpus']} CPUs, load {result['load_before']:.1f} before, "
          f"{result['load_after']:.1f} after; workers {result['workers'] or 'default (CPUs)'}")
    if result.get("generation"):
        g = result["generation"]
        print(f"generation     {g['wall_s']:8.1f} s wall, {g['cpu_s']:.1f} s CPU, peak PSS "
              f"{gib(g['peak_tree_pss'])} GiB, largest process RSS {gib(g['max_rss_kernel'])} GiB")
    print_steps(run["steps"])
    print(f"run wall       {run['wall_s']:8.1f} s")
    steps = run["steps"]
    if steps and all(row["started"] is not None for row in steps):
        # Interpreter start and imports (Great Expectations alone takes seconds) are in no step.
        before = min(row["started"] for row in steps) - run["started"]
        after = run["finished"] - max(row["finished"] for row in steps)
        print(f"  outside steps  {before:.1f} s before the first (start, imports, run setup), "
              f"{after:.1f} s after the last")
    else:
        print(f"  steps' own seconds, summed: {sum(row['task_seconds'] for row in steps):.1f} s "
              f"(steps side by side count each; start, imports and run setup count in none)")
    print(f"run CPU        {run['cpu_s']:8.1f} s   (the whole process tree, from wait4)")
    print(f"peak PSS       {gib(run['peak_tree_pss']):>8} GiB   all processes")
    print(f"peak largest   {gib(run['peak_largest_pss']):>8} GiB   PSS, sampled "
          f"(RSS: {gib(run['peak_largest_rss'])} sampled, {gib(run['max_rss_kernel'])} exact)")
    print(f"peak work/     {gib(run['peak_work_bytes'], 3):>8} GiB   vs input "
          f"{gib(result['input_bytes'], 3)} GiB: {result['work_to_input']:.2f}x "
          f"(out folder after the run: {gib(run['out_bytes'], 3)} GiB)")
    print(f"rows           registry {result['registry_rows']:,}, "
          f"population {result['population_rows']:,}")
    print(f"per million    {result['seconds_per_million']:8.1f} s per million participants "
          f"(registry rows)", flush=True)


def markdown(results: list[dict]) -> str:
    first = results[0]
    lines = [
        f"national night, {first['date']}, commit {first['commit']} "
        f"(bench/bench_national.py, {first['cpus']} CPUs)",
        "",
        "| people | registry rows | workers | run wall | run CPU | s per M participants "
        "| peak PSS, all processes | peak largest process (PSS) | peak work folder / input "
        "| load | generation |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        run, g = r["run"], r.get("generation")
        generation = (f"{g['wall_s']:.0f} s, {gib(g['peak_tree_pss'])} GiB" if g else "—")
        lines.append(
            f"| {r['people']:,} | {r['registry_rows']:,} | {r['workers'] or 'default'} "
            f"| {run['wall_s']:.1f} s | {run['cpu_s']:.1f} s | {r['seconds_per_million']:.1f} s "
            f"| {gib(run['peak_tree_pss'])} GiB | {gib(run['peak_largest_pss'])} GiB "
            f"| {r['work_to_input']:.2f}x ({gib(run['peak_work_bytes'], 3)} / "
            f"{gib(r['input_bytes'], 3)} GiB) | {r['load_before']:.1f}-{r['load_after']:.1f} "
            f"| {generation} |"
        )
    return "\n".join(lines)


def nations(args: argparse.Namespace, data: Path) -> Iterator[tuple[int, Path, dict | None]]:
    """(people, folder, generation figures or None) per size, each generated when missing just
    before its run (so --delete-nation holds one nation on disk at a time)."""
    if args.nation:
        folder = Path(args.nation).resolve()
        if not is_nation(folder):
            raise SystemExit(f"--nation {folder}: needs readable {' and '.join(INPUTS)}")
        yield pq.ParquetFile(folder / "population.parquet").metadata.num_rows, folder, None
        return
    for people in args.people:
        folder = data / f"national_n{people}_s{args.seed}"
        if not is_nation(folder):
            generate(people, args.seed, folder)
        # Generated by an earlier call too: its figures were kept beside the nation.
        figures = generation_file(folder)
        generation = json.loads(figures.read_text("utf-8")) if figures.exists() else None
        yield people, folder, generation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--people", type=int, action="append", metavar="N",
                        help="nation size; repeat for several")
    source.add_argument("--nation", metavar="FOLDER",
                        help="an existing nation folder (registry.parquet, population.parquet)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--data", default=str(ROOT / "bench" / "data"), metavar="DIR",
                        help="where nations, out folders and results go (default: bench/data)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="popsync run's local processes (default: the CPUs)")
    parser.add_argument("--keep", action="store_true", help="keep the run's out folder")
    parser.add_argument("--generate-only", action="store_true",
                        help="generate (and measure) the nations, do not run")
    parser.add_argument("--delete-nation", action="store_true",
                        help="delete each nation folder once measured")
    args = parser.parse_args()
    if args.generate_only and args.nation:
        parser.error("--generate-only generates nations: give --people, not --nation")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if not POPSYNC.exists():
        raise SystemExit(f"{POPSYNC} not found: run `make install` first")

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    commit, today = git_commit(), date.today().isoformat()  # today: as `date -I`
    results, status = [], 0
    for people, nation, generation in nations(args, data):
        if args.generate_only:
            continue
        out = data / f"national_out_n{people}"
        if out == nation or out in nation.parents:
            raise SystemExit(f"the out folder {out} would hold the nation {nation}: move it")
        log = data / f"national_n{people}_run.log"
        load_before = load_average()
        run = run_night(nation, out, log, args.workers)
        registry_rows = pq.ParquetFile(nation / "registry.parquet").metadata.num_rows
        input_bytes = sum((nation / name).stat().st_size for name in INPUTS)
        result = {
            "date": today, "commit": commit, "people": people, "nation": str(nation),
            "seed": None if args.nation else args.seed, "workers": args.workers,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_before": load_before, "load_after": load_average(),
            "registry_rows": registry_rows,
            "population_rows": pq.ParquetFile(nation / "population.parquet").metadata.num_rows,
            "input_bytes": input_bytes,
            "work_to_input": (run["peak_work_bytes"] or 0) / input_bytes,
            "seconds_per_million": run["wall_s"] / (registry_rows / 1e6),
            "generation": generation, "run": run,
        }
        result_path = data / f"national_n{people}_result.json"
        result_path.write_text(json.dumps(result, indent=1), "utf-8")
        if run["returncode"] != 0:
            # The out folder stays for the post-mortem; the figures up to the failure are in JSON.
            print(failed("popsync run", run, log), file=sys.stderr)
            print(f"out folder kept: {out}; figures up to the failure: {result_path}",
                  file=sys.stderr)
            status = 1
            break
        truth = nation / "truth.parquet"
        published = sorted(out.glob("publications/*/results.parquet"))
        if truth.is_file() and published:
            # scored before the out folder goes: bounded memory, DuckDB (bench_quality.py)
            from bench_quality import evaluate, report

            result["quality"] = evaluate(published[-1], truth, scratch=out)
            result_path.write_text(json.dumps(result, indent=1), "utf-8")
            print(report(result["quality"]))
        print(run_summary(log))
        print_result(result)
        print(f"figures: {result_path}")
        results.append(result)
        if not args.keep:
            shutil.rmtree(out)
        if args.delete_nation:
            shutil.rmtree(nation)
    if results:
        print("\n" + markdown(results))
    return status


if __name__ == "__main__":
    sys.exit(main())
