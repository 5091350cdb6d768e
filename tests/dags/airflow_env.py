"""A throw-away Airflow installation for the DAG tests: temp AIRFLOW_HOME with a SQLite metadata
database, the repository's dags folder, no examples. Airflow runs in subprocesses so it reads
this environment, whatever else the test session imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        **extra,
    }
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # the temp home's SQLite, never a real one
    return env


def python(code_or_script: list[str], env: dict[str, str], timeout: int = 600):
    return subprocess.run([sys.executable, *code_or_script], env=env, cwd=REPO, timeout=timeout,
                          capture_output=True, text=True)


def migrate(env: dict[str, str]) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], env=env, cwd=REPO, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
