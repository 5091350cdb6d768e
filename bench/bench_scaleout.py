"""Wall time of one popsync_nightly run on a real CeleryExecutor cluster with 1 or 2 workers.

    .venv/bin/python bench/bench_scaleout.py --workers 1 --people 200000
    .venv/bin/python bench/bench_scaleout.py --workers 2 --people 200000

Generates (once, cached under bench/data/) a synthetic nation, starts the cluster of
tests/deploy/airflow_cluster.py (PostgreSQL metadata and metrics databases, Redis broker, workers
with ``--concurrency 1``), triggers the DAG and prints: the wall time from trigger to the end of
the run, the time per task (mapped tasks: count, sum, longest), and the peak memory of each
worker's process tree (the worker itself plus the task it runs) sampled every half second.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "deploy"))
sys.path.insert(0, str(REPO / "tests"))

import services  # noqa: E402
from airflow_cluster import VENV_BIN, AirflowCluster, snapshot_code  # noqa: E402

DAG_ID = "popsync_nightly"
LOGICAL_DATE = "2026-11-20T18:00:00+00:00"


def nation_folder(people: int, seed: int) -> Path:
    folder = REPO / "bench" / "data" / f"nation-{people}-{seed}"
    if not (folder / "population.parquet").exists():
        subprocess.run(
            [str(VENV_BIN / "popsync"), "generate", "--people", str(people), "--seed", str(seed),
             "--out", str(folder)],
            check=True,
        )
    return folder


class WorkerMemory(threading.Thread):
    """Peak resident memory of each worker's process tree and of each task process.

    The task SDK titles a task's process ``airflow worker -- <task instance id>``, which ties a
    process to its row in ``task_instance``.
    """

    def __init__(self, cluster: AirflowCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.peak: dict[str, int] = defaultdict(int)
        self.idle: dict[str, int] = {}
        self.task_peak: dict[str, int] = defaultdict(int)
        self.stopping = threading.Event()

    def run(self) -> None:
        workers = [c for c in self.cluster.components if c.name.startswith("w")]
        while not self.stopping.wait(0.5):
            for component in workers:
                try:
                    root = psutil.Process(component.process.pid)
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                total = 0
                for process in tree:
                    try:
                        rss = process.memory_info().rss
                        title = " ".join(process.cmdline())
                    except psutil.Error:
                        continue
                    total += rss
                    if title.startswith("airflow worker -- "):
                        ti_id = title.split(" -- ", 1)[1].strip()
                        self.task_peak[ti_id] = max(self.task_peak[ti_id], rss)
                self.idle.setdefault(component.name, total)
                self.peak[component.name] = max(self.peak[component.name], total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, choices=(1, 2), required=True)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--band-rows", type=int, default=25_000,
                        help="registry rows per mapped matching task (partition.max_rows)")
    args = parser.parse_args()

    nation = nation_folder(args.people, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        tmp_path = Path(tmp)
        code = snapshot_code(tmp_path / "code")
        servers = contextlib.ExitStack()
        pg_server_url = servers.enter_context(services.postgres_cluster())
        redis_url = servers.enter_context(services.redis_server())
        cluster = AirflowCluster(
            code / "dags", tmp_path / "cluster", pg_server_url, redis_url, workers=args.workers,
            code_path=code
        )
        config = {
            "registry": {"source": str(nation / "registry.parquet")},
            "population": {"source": str(nation / "population.parquet")},
            "output": {"dir": str(tmp_path / "out"), "db_url": cluster.metrics_db_url},
            "partition": {"max_rows": args.band_rows},
        }
        (tmp_path / "popsync.yaml").write_text(yaml.safe_dump(config))
        cluster.extra_env = {"POPSYNC_CONFIG": str(tmp_path / "popsync.yaml")}

        started = time.monotonic()
        with servers, cluster:  # the servers stop after the cluster
            print(f"cluster up in {time.monotonic() - started:.0f} s", flush=True)
            cluster.wait_for_dag(DAG_ID)
            memory = WorkerMemory(cluster)
            memory.start()
            triggered = time.monotonic()
            run_id = cluster.trigger(DAG_ID, logical_date=LOGICAL_DATE)
            state = cluster.wait_for_run(DAG_ID, run_id, timeout=3600)
            wall = time.monotonic() - triggered
            memory.stopping.set()
            memory.join()
            task_instances = cluster.task_instances(DAG_ID, run_id)
            if state != "success":
                print(cluster.log_tails(), file=sys.stderr)

    print(f"\nDAG {DAG_ID}: {state}; {args.people} people, bands of {args.band_rows} rows, "
          f"{args.workers} Celery worker(s) x concurrency 1; {psutil.cpu_count()} cores, "
          f"{platform.python_version()}")
    print(f"wall time, trigger to end of run: {wall:.1f} s")
    by_task: dict[str, list] = defaultdict(list)
    for ti in task_instances:
        if ti["start_date"] and ti["end_date"]:
            by_task[ti["task_id"]].append(ti)
    print(f"{'task':<28}{'tasks':>6}{'sum s':>9}{'max s':>9}{'peak MiB':>10}  workers")
    for task_id, tis in sorted(by_task.items(), key=lambda kv: min(t["start_date"] for t in kv[1])):
        seconds = [(t["end_date"] - t["start_date"]).total_seconds() for t in tis]
        peak = max(memory.task_peak.get(str(t["id"]), 0) for t in tis) / 2**20
        hosts = sorted({t["hostname"].split("-")[0] for t in tis})
        print(f"{task_id:<28}{len(tis):>6}{sum(seconds):>9.1f}{max(seconds):>9.1f}{peak:>10.0f}  "
              + ",".join(hosts))
    for name, rss in sorted(memory.peak.items()):
        print(f"worker {name} process tree: peak {rss / 2**20:.0f} MiB, "
              f"idle {memory.idle[name] / 2**20:.0f} MiB")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
