"""What the engineers' run pages show, read from the run's record (``runs``, ``run_tasks``,
``run_gates``, ``publications``): figures only, never row values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from popsync import store
from portal.security import as_utc

VALIDATION_REPORT = "validation_report.html"
MANIFEST = "manifest.json"


def _seconds(started, finished) -> float | None:
    if started is None or finished is None:
        return None
    return (as_utc(finished) - as_utc(started)).total_seconds()


def recent_runs(engine: sa.Engine, limit: int) -> list[dict]:
    """The latest attempts, newest first, each with its duration and whether it is the one
    published for its run date."""
    runs, publications = store.runs, store.publications
    query = (
        sa.select(runs, (publications.c.run_id == runs.c.run_id).label("published"))
        .outerjoin(publications, publications.c.run_date == runs.c.run_date)
        .order_by(runs.c.run_id.desc()).limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [{**row, "published": bool(row["published"]),
             "seconds": _seconds(row["started_at"], row["finished_at"])} for row in rows]


@dataclass
class RunDetail:
    run: dict
    steps: list[dict]  # per step, in the order the steps began
    failures: list[dict]  # the failed attempts, oldest first
    gates: list[dict]
    report: Path | None  # the run's validation report, when there is one to read
    # the reviewers' decisions the night applied, and the engine's own decision scored on
    # them as labels (precision, recall): from the published manifest, None before it
    decisions: dict | None = None
    # the night's false- and missed-link rates estimated from its probabilities, nation and
    # per province (the manifest's ``error_estimates``), None before it
    estimates: dict | None = None


def _steps(tasks: list[dict]) -> list[dict]:
    steps: dict[str, dict] = {}
    for task in sorted(tasks, key=lambda t: t["started_at"]):
        step = steps.setdefault(task["step"], {
            "step": task["step"], "labels": set(), "attempts": 0, "failed": 0,
            "started_at": task["started_at"], "finished_at": task["finished_at"],
            "cpu_seconds": 0.0, "hosts": set()})
        step["labels"].add(task["label"])
        step["attempts"] += 1
        step["failed"] += task["status"] == "failed"
        step["finished_at"] = max(step["finished_at"], task["finished_at"])
        step["cpu_seconds"] += task["cpu_seconds"]
        step["hosts"].add(task["host"].rsplit(":", 1)[0])
    return [{**s, "tasks": len(s.pop("labels")), "hosts": sorted(s["hosts"]),
             "seconds": _seconds(s["started_at"], s["finished_at"])} for s in steps.values()]


def run_detail(engine: sa.Engine, out_dir: Path, run_id: int) -> RunDetail | None:
    runs, tasks, gates = store.runs, store.run_tasks, store.run_gates
    with engine.connect() as connection:
        run = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if run is None:
            return None
        published = connection.execute(sa.select(store.publications.c.path).where(
            store.publications.c.run_id == run_id)).scalar()
        rows = [dict(r) for r in connection.execute(
            sa.select(tasks).where(tasks.c.run_id == run_id)).mappings()]
        checked = [dict(r) for r in connection.execute(
            sa.select(gates).where(gates.c.run_id == run_id).order_by(gates.c.checked_at)
        ).mappings()]
    folder = out_dir / (published or store.work_path(run["run_date"], run_id))
    manifest = _manifest(folder) if published else {}
    report = folder / VALIDATION_REPORT
    return RunDetail(
        run={**run, "published": published is not None,
             "seconds": _seconds(run["started_at"], run["finished_at"])},
        steps=_steps(rows),
        failures=sorted((r for r in rows if r["status"] == "failed"),
                        key=lambda r: r["started_at"]),
        gates=checked,
        report=report if report.is_file() else None,
        decisions=manifest.get("decisions"),
        estimates=manifest.get("error_estimates"),
    )


def _manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}
