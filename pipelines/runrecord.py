"""The run's record for the engineers' run page: each task as it ends (``run_tasks``) and each
validation gate's outcome (``run_gates``). Figures only, never row values. Recording is
best-effort: a database that fails here fails the step's next lock renewal anyway, and the
step's own outcome is what matters."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

import sqlalchemy as sa

from popsync import store
from popsync.errors import PopsyncError

log = logging.getLogger(__name__)

# what a failed expectation keeps for the run page: counts and bounds, not its masked samples
# or observed values
FINDING_FIELDS = ("expectation", "column", "severity", "reason", "unexpected_count",
                  "unexpected_percent", "expected")


def host() -> str:
    """Where a task ran: host name and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def task(db_url: str, run_id: int, step: str, label: str, started: float, finished: float,
         cpu_seconds: float, failure: str | None) -> None:
    row = {
        "run_id": run_id, "step": step, "label": label[:200], "host": host()[:200],
        "started_at": datetime.fromtimestamp(started, UTC),
        "finished_at": datetime.fromtimestamp(finished, UTC),
        "cpu_seconds": round(cpu_seconds, 3),
        "status": "succeeded" if failure is None else "failed",
        "message": None if failure is None else failure[:2000],
    }
    _write(db_url, f"task {label}", lambda c: c.execute(sa.insert(store.run_tasks), row))


def suite_figures(outcome: dict) -> dict:
    """A suite's outcome as the run page shows it: its rows and its failed expectations."""
    return {
        "suite": outcome["suite"], "rows": outcome["rows"], "success": outcome["success"],
        "failed": [{k: f.get(k) for k in FINDING_FIELDS}
                   for f in outcome["findings"] if not f["success"]],
    }


def gate(db_url: str, run_id: int, name: str, passed: bool, outcomes: list[dict],
         why: list[str], extra: dict | None = None) -> None:
    """A gate's outcome; a retried gate replaces its earlier row."""
    figures = {"suites": [suite_figures(o) for o in outcomes], "why": why, **(extra or {})}
    row = {"run_id": run_id, "gate": name, "passed": passed, "checked_at": datetime.now(UTC),
           "figures": figures}

    def replace(connection: sa.Connection) -> None:
        gates = store.run_gates
        connection.execute(sa.delete(gates).where(gates.c.run_id == run_id, gates.c.gate == name))
        connection.execute(sa.insert(gates), row)

    _write(db_url, f"gate {name}", replace)


def _write(db_url: str, what: str, statement) -> None:
    try:
        engine = store.engine_for(db_url)
        try:
            with engine.begin() as connection:
                statement(connection)
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, PopsyncError) as exc:
        log.warning("could not record %s of the run for the run page: %s", what,
                    store.first_line(exc))
