"""A run's typed context: its work folder, run id and date, publication database and config,
read once from the work folder that every step receives (only paths travel between tasks)."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from pipelines.config import RunConfig, load_config
from popsync import store

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def write_json(path: Path, value) -> None:
    """Write ``value`` as JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(value)}")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1, default=str), "utf-8")
    tmp.replace(path)


def read_json(path: Path):
    return json.loads(Path(path).read_text("utf-8"))


@dataclass(frozen=True)
class RunContext:
    work: Path
    run_id: int
    run_date: str
    out_dir: Path
    db_url: str

    @classmethod
    def load(cls, work_dir: str | Path) -> RunContext:
        work = Path(work_dir)
        state = read_json(work / RUN_FILE)
        return cls(work, state["run_id"], state["run_date"], Path(state["out_dir"]),
                   state["db_url"])

    def save(self, started_at: str) -> None:
        write_json(self.work / RUN_FILE, {
            "run_id": self.run_id, "run_date": self.run_date, "out_dir": str(self.out_dir),
            "db_url": self.db_url, "started_at": started_at,
        })

    @cached_property
    def config(self) -> RunConfig:
        return load_config(self.work / CONFIG_FILE)

    @cached_property
    def engine(self) -> sa.Engine:
        return store.engine_for(self.db_url)

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    @contextmanager
    def sql(self):
        """A DuckDB connection for the night's whole-nation sorts, joins and repartitions:
        memory capped by ``partition.sql_memory``, spilling into a folder of its own in the
        work folder, removed when it closes."""
        import duckdb

        spill = Path(tempfile.mkdtemp(prefix="spill-", dir=self.work))
        connection = duckdb.connect(config={
            "memory_limit": self.config.sql_memory,
            "threads": max(1, self.config.workers),
            "temp_directory": str(spill),
            "preserve_insertion_order": False,
            # A partitioned write keeps each partition's rows in memory up to this many before
            # writing them out (default 524 288): with the 379 bands of the national registry
            # that held most of it, outside the memory limit (5.9 GiB in one process).
            "partitioned_write_flush_threshold": 65_536,
        })
        try:
            yield connection
        finally:
            connection.close()
            shutil.rmtree(spill, ignore_errors=True)
