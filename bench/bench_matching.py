"""Benchmark of the matching engine on generated nations: wall time, peak memory, precision,
recall, F1 and recall per injected error type; optionally Splink 5 on DuckDB as the reference.

    .venv/bin/python bench/bench_matching.py                      # 100k and 1M, seed 1, default
    .venv/bin/python bench/bench_matching.py --sizes 100000 --seeds 1 2 3 \
        --profiles default dirty clean --splink                   # + Splink at 100k (.venv-splink)

Each run is a fresh child process, so its peak memory (ru_maxrss) is its own. Generated data is
cached under bench/data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine of this checkout, however the venv was installed
DATA = ROOT / "bench" / "data"
SPLINK_PYTHON = ROOT / ".venv-splink" / "bin" / "python"
LINKED = ("synchronized", "needs_correction")


def evaluate(results, truth) -> dict:
    """Precision, recall and F1 of the links, and recall per injected error type."""
    import pandas as pd

    merged = results[["vss_code", "status", "personal_id"]].merge(
        truth, on="vss_code", how="left", suffixes=("", "_true")
    )
    linked = merged["status"].isin(LINKED).to_numpy()
    true_id = merged["personal_id_true"]
    correct = linked & (merged["personal_id"] == true_id).fillna(False).to_numpy()
    present = true_id.notna().to_numpy()
    tp, n_linked, n_present = int(correct.sum()), int(linked.sum()), int(present.sum())
    precision = tp / n_linked if n_linked else 1.0
    recall = tp / n_present if n_present else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tags = merged["error_tags"].fillna("").str.split(",")
    per_tag = {}
    exploded = pd.DataFrame({"tag": tags, "correct": correct, "present": present}).explode("tag")
    for tag, group in exploded[exploded["tag"] != ""].groupby("tag"):
        in_population = group[group["present"]]
        per_tag[tag] = {"rows": int(len(in_population)),
                        "recall": float(in_population["correct"].mean())
                        if len(in_population) else None}
    return {"precision": precision, "recall": recall, "f1": f1, "true_links": tp,
            "false_links": n_linked - tp, "missed": n_present - tp, "per_error": per_tag}


def run_one(folder: Path) -> dict:
    """Child process: run the engine on one generated nation and measure it."""
    import pandas as pd

    import matching

    registry = pd.read_parquet(folder / "registry.parquet")
    population = pd.read_parquet(folder / "population.parquet")
    truth = pd.read_parquet(folder / "truth.parquet")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    linked = matching.link(registry, population)
    results = matching.resolve(linked.results)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(results) == len(registry) and results["vss_code"].is_unique
    figures = evaluate(results, truth)
    report = linked.report
    return {"engine": "popsync", "registry_rows": len(registry),
            "population_rows": len(population), "wall_s": wall, "peak_mib": peak,
            "rss_before_mib": before, "stage_s": report["seconds"],
            "status_counts": report["status_counts"],
            "candidate_pairs": report["candidate_search"]["distinct_pairs"],
            "cut": {p["name"]: [p["rows_cut"], p["pairs_cut"]]
                    for p in report["candidate_search"]["passes"]},
            **figures}


def nation(people: int, seed: int, profile: str) -> Path:
    folder = DATA / f"n{people}_s{seed}_{profile}"
    if not (folder / "truth.parquet").exists():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "generate", "--people",
                        str(people), "--seed", str(seed), "--profile", profile, "--out",
                        str(folder)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return folder


def child(command: list[str]) -> dict:
    done = subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| engine | people | seed | profile | registry rows | wall s | peak MiB | precision "
             "| recall | F1 | false links | missed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['people']:,} | {r['seed']} | {r['profile']} "
            f"| {r['registry_rows']:,} | {r['wall_s']:.1f} | {r['peak_mib']:,.0f} "
            f"| {r['precision']:.5f} | {r['recall']:.5f} | {r['f1']:.5f} | {r['false_links']} "
            f"| {r['missed']} |")
    return "\n".join(lines)


def error_table(rows: list[dict]) -> str:
    runs = [r for r in rows if r["engine"] == "popsync"]
    tags = sorted({tag for r in runs for tag in r["per_error"]})
    head = "| error type | " + " | ".join(
        f"{r['people'] // 1000}k s{r['seed']} {r['profile']}" for r in runs) + " |"
    lines = [head, "|---|" + "---|" * len(runs)]
    for tag in tags:
        cells = []
        for r in runs:
            figure = r["per_error"].get(tag)
            cells.append("–" if not figure or figure["recall"] is None
                         else f"{figure['recall']:.4f} ({figure['rows']})")
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--profiles", nargs="+", default=["default"])
    parser.add_argument("--splink", action="store_true",
                        help="also run Splink 5 (in .venv-splink) on runs of <= 100k people")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0

    rows = []
    for people in args.sizes:
        for seed in args.seeds:
            for profile in args.profiles:
                folder = nation(people, seed, profile)
                runs = [[sys.executable, __file__, "--one", str(folder)]]
                if args.splink and people <= 100_000:
                    if not SPLINK_PYTHON.exists():
                        raise SystemExit("Splink reference needs .venv-splink: python3 -m venv "
                                         ".venv-splink && .venv-splink/bin/pip install -r "
                                         "bench/requirements-splink.txt")
                    runs.append([str(SPLINK_PYTHON), str(ROOT / "bench" / "splink_reference.py"),
                                 str(folder)])
                for command in runs:
                    figures = child(command)
                    figures.update(people=people, seed=seed, profile=profile)
                    rows.append(figures)
                    print(f"{figures['engine']:8s} {people:>9,} seed {seed} {profile:8s} "
                          f"{figures['wall_s']:7.1f} s {figures['peak_mib']:8,.0f} MiB  "
                          f"P {figures['precision']:.5f}  R {figures['recall']:.5f}  "
                          f"F1 {figures['f1']:.5f}", flush=True)
    print()
    print(table(rows))
    print()
    print("Recall per injected error type (rows of that type present in the population):")
    print(error_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
