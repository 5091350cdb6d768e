"""A real Airflow 3 CeleryExecutor cluster on this machine, started and stopped by a test or bench.

``AirflowCluster`` creates a fresh PostgreSQL database for Airflow's metadata (also the Celery
result backend) and one for popsync's metrics, runs ``airflow db migrate``, then starts the
api-server (which also serves the Task Execution API the workers call), the scheduler, the
dag-processor, the triggerer and N Celery workers (``--concurrency 1``, distinct
``--celery-hostname``) on free ports, against the Redis broker it is given. The PostgreSQL server
and the Redis server are the caller's (the test session's own: tests/services.py). Leaving the
``with`` block, even on an error, stops every process it started (by process group) and drops both
databases and its Redis queue. Each run uses its own queue name and worker names, so two clusters
(a test and a bench) can share the Redis server without stealing each other's tasks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Databases are named <prefix><pid>_<token>: a run killed before its cleanup leaves databases
# whose pid is gone, and the next run on the same server drops them.
DB_PREFIX = "popsync_cluster_"


CODE_PACKAGES = ("popsync", "matching", "pipelines", "expectations", "portal", "dags")


def snapshot_code(destination: Path) -> Path:
    """Copy popsync's packages and DAGs, so a run's processes all load the same code.

    Every task is a new process that imports popsync afresh: in a checkout being edited while a
    test runs, an early task and a late one (or the cluster and the reference ``popsync run``)
    would otherwise run different code. Put the copy first on ``PYTHONPATH``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in CODE_PACKAGES:
        shutil.copytree(REPO / name, destination / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _admin_engine(pg_server_url: str) -> sa.Engine:
    return sa.create_engine(f"{pg_server_url}/postgres", isolation_level="AUTOCOMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_orphan_databases(pg_server_url: str) -> list[str]:
    """Drop databases left by earlier clusters whose process no longer exists."""
    engine = _admin_engine(pg_server_url)
    dropped = []
    with engine.connect() as conn:
        names = conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
            {"p": DB_PREFIX + "%"},
        ).scalars()
        for name in list(names):
            pid_part = name.removeprefix(DB_PREFIX).split("_", 1)[0]
            if pid_part.isdigit() and not _pid_alive(int(pid_part)):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                dropped.append(name)
    engine.dispose()
    return dropped


@dataclass
class Component:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None


@dataclass
class AirflowCluster:
    """Start with ``with AirflowCluster(dags_folder, workdir) as cluster:``; see the module doc."""

    dags_folder: Path
    workdir: Path
    pg_server_url: str  # postgresql+psycopg://user@host:port, no database
    redis_url: str  # the Celery broker
    workers: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)
    code_path: Path = REPO  # put first on every process's PYTHONPATH (see snapshot_code)
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.dags_folder = Path(self.dags_folder)
        stem = f"{DB_PREFIX}{os.getpid()}_{self.token}"
        self.airflow_db = f"{stem}_airflow"
        self.metrics_db = f"{stem}_metrics"
        self.airflow_db_url = f"{self.pg_server_url}/{self.airflow_db}"
        self.metrics_db_url = f"{self.pg_server_url}/{self.metrics_db}"
        self.queue = f"popsync_cluster_{self.token}"
        self.api_port = free_port()
        self.worker_names = [f"w{i + 1}-{self.token}@127.0.0.1" for i in range(self.workers)]
        self._created_databases: list[str] = []
        self._secret = secrets.token_urlsafe(32)
        self._trigger_log_port = free_port()

    # ---- configuration -------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The environment every component shares: one metadata DB, one broker, one secret."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        # This code, whatever the processes' working folder and however popsync was installed
        # into the venv.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.code_path), os.environ.get("PYTHONPATH", "")) if p
        )
        secret = self._secret
        env.update(
            {
                "AIRFLOW_HOME": str(self.workdir / "airflow_home"),
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                    f"http://127.0.0.1:{self.api_port}/execution/"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_url,
                # Airflow would derive postgresql+asyncpg, which is not installed; psycopg 3
                # is both sync and async.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.airflow_db_url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.airflow_db_url}",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                # Components sign and check each other's tokens with these: they must be equal.
                "AIRFLOW__API_AUTH__JWT_SECRET": secret,
                "AIRFLOW__API__SECRET_KEY": secret,
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                # Runs only when triggered: unpausing must not start a scheduled night as well.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._trigger_log_port),
            }
        )
        env.update(self.extra_env)
        return env

    def _worker_env(self, name: str) -> dict[str, str]:
        env = self.base_env()
        pythonpath = [str(Path(__file__).parent), env["PYTHONPATH"]]
        env.update(
            {
                "CLUSTER_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_hostname.celery_worker_name",
                # Every worker serves its task logs to the api-server on a port of its own.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "PYTHONPATH": os.pathsep.join(pythonpath),
            }
        )
        return env

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        drop_orphan_databases(self.pg_server_url)
        self._create_databases()
        self.airflow("db", "migrate", timeout=300)
        airflow = str(VENV_BIN / "airflow")
        env = self.base_env()
        self._spawn(
            "api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port",
                           str(self.api_port), "--workers", "1"], env
        )
        self._spawn("scheduler", [airflow, "scheduler"], env)
        self._spawn("dag-processor", [airflow, "dag-processor"], env)
        self._spawn("triggerer", [airflow, "triggerer"], env)
        for name in self.worker_names:
            self._spawn(
                name.split("@")[0],
                [airflow, "celery", "worker", "--concurrency", "1", "--celery-hostname", name],
                self._worker_env(name),
            )
        deadline = time.monotonic() + timeout
        self._wait_api_server(deadline)
        self._wait_workers(deadline)

    def stop(self) -> None:
        """Stop every started process (SIGTERM to its group, SIGKILL after a grace period)."""
        for component in reversed(self.components):
            if component.process and component.process.poll() is None:
                try:
                    os.killpg(component.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for component in self.components:
            process = component.process
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may still hold children (task supervisors, gunicorn/uvicorn workers).
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        self._drop_redis_queue()
        self._drop_databases()

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log_path = self.workdir / "logs" / f"{name}.log"
        component = Component(name, args, env, log_path)
        with open(log_path, "ab") as log:
            component.process = subprocess.Popen(
                args, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.components.append(component)

    def _create_databases(self) -> None:
        engine = _admin_engine(self.pg_server_url)
        with engine.connect() as conn:
            for name in (self.airflow_db, self.metrics_db):
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                self._created_databases.append(name)
        engine.dispose()

    def _drop_databases(self) -> None:
        if not self._created_databases:
            return
        engine = _admin_engine(self.pg_server_url)
        with engine.connect() as conn:
            for name in self._created_databases:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        self._created_databases.clear()

    def _drop_redis_queue(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            # The queue itself and kombu's binding sets that name it.
            for key in list(client.scan_iter(match=f"*{self.queue}*")):
                client.delete(key)
        except redis.RedisError:
            pass
        finally:
            client.close()

    def _check_alive(self) -> None:
        for component in self.components:
            if component.process and component.process.poll() is not None:
                raise RuntimeError(
                    f"{component.name} exited with code {component.process.returncode}:\n"
                    + self.log_tail(component.name)
                )

    def _wait_api_server(self, deadline: float) -> None:
        import httpx

        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(
            "the api-server did not answer its health check\n" + self.log_tail("api-server")
        )

    def _wait_workers(self, deadline: float) -> None:
        """Both workers must be consuming before a run is triggered, or the first takes it all."""
        from celery import Celery

        app = Celery(broker=self.redis_url)
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                replies = app.control.ping(destination=self.worker_names, timeout=2) or []
                answered = {name for reply in replies for name in reply}
                if answered >= set(self.worker_names):
                    return
                time.sleep(1)
        finally:
            app.close()
        raise TimeoutError("Celery workers did not answer a ping\n" + self.log_tails())

    # ---- operations -----------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """Run an ``airflow`` CLI command against this cluster and return its output."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=self.base_env(), cwd=self.workdir,
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def metadata(self) -> sa.Engine:
        return sa.create_engine(self.airflow_db_url)

    def _poll(self, probe, timeout: float):
        """Call ``probe(connection)`` on the metadata DB every 2 s until it returns a value."""
        engine = self.metadata()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                with engine.connect() as conn:
                    value = probe(conn)
                if value is not None:
                    return value
                time.sleep(2)
        finally:
            engine.dispose()
        return None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed and serialized ``dag_id``."""

        def parsed(conn):
            found = conn.execute(
                sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :d"), {"d": dag_id}
            ).scalar_one()
            if found:
                return True
            errors = conn.execute(sa.text("SELECT filename, stacktrace FROM import_error")).all()
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            return None

        if self._poll(parsed, timeout) is None:
            raise TimeoutError(f"{dag_id} was not parsed\n" + self.log_tail("dag-processor"))

    def trigger(self, dag_id: str, conf: Mapping | None = None,
                logical_date: str | None = None) -> str:
        """Unpause and trigger ``dag_id``; returns the run id."""
        self.airflow("dags", "unpause", dag_id)
        run_id = f"cluster_{self.token}_{int(time.time())}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        if logical_date:
            args += ["--logical-date", logical_date]
        self.airflow(*args)
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        """Wait for the run to finish; returns its final state (``success`` or ``failed``)."""

        def finished(conn):
            state = conn.execute(
                sa.text("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r"),
                {"d": dag_id, "r": run_id},
            ).scalar_one_or_none()
            return state if state in ("success", "failed") else None

        state = self._poll(finished, timeout)
        if state is None:
            raise TimeoutError(f"{dag_id} run {run_id} did not finish in {timeout:.0f} s\n"
                               + self.log_tails())
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        engine = self.metadata()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT id, task_id, map_index, state, hostname, start_date, end_date "
                        "FROM task_instance WHERE dag_id = :d AND run_id = :r "
                        "ORDER BY start_date"
                    ),
                    {"d": dag_id, "r": run_id},
                ).mappings().all()
        finally:
            engine.dispose()
        return [dict(row) for row in rows]

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        if not path.exists():
            return f"[no log for {name}]"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {name} ---\n" + "\n".join(text)

    def log_tails(self, lines: int = 25) -> str:
        return "\n".join(self.log_tail(c.name, lines) for c in self.components)
