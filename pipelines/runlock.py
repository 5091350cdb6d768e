"""One run at a time per run date: a lock row in the publication database (``store.run_locks``),
taken when a run starts, renewed by each of its steps, released when it publishes or fails for
good. The database is the one place every Celery worker of every host shares with the others."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from popsync import store
from popsync.errors import PopsyncError, RunStopped

# Longer than any step and than Airflow's retry delays: a holder silent for this long died.
STALE_AFTER = timedelta(hours=2)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def acquire(connection: sa.Connection, run_date: str, run_id: int) -> int | None:
    """Take the run date's lock for ``run_id`` inside the caller's transaction. Returns the run
    id of a stale holder it took over (that run is then abandoned), or None. Raises a
    PopsyncError naming the holder when a live run holds it."""
    now = datetime.now(UTC)
    locks = store.run_locks
    current = connection.execute(
        sa.select(locks).where(locks.c.run_date == run_date)).mappings().first()
    if current is None:
        try:
            with connection.begin_nested():
                connection.execute(sa.insert(locks).values(
                    run_date=run_date, run_id=run_id, holder=holder(), acquired_at=now,
                    heartbeat_at=now))
        except sa.exc.IntegrityError:
            raise PopsyncError(
                f"run date {run_date} was locked by another run starting at the same moment; "
                "this run stops"
            ) from None
        return None
    heartbeat = _aware(current["heartbeat_at"])
    if now - heartbeat < STALE_AFTER:
        raise PopsyncError(
            f"run date {run_date} is being run by run {current['run_id']} ({current['holder']}, "
            f"started {_aware(current['acquired_at']):%Y-%m-%d %H:%M} UTC, last step "
            f"{heartbeat:%H:%M} UTC); this run stops. Wait for it to publish or fail; a run "
            f"silent for {STALE_AFTER.total_seconds() / 3600:g} hours is taken over"
        )
    taken = connection.execute(
        sa.update(locks)
        .where(locks.c.run_date == run_date, locks.c.run_id == current["run_id"],
               locks.c.heartbeat_at == current["heartbeat_at"])
        .values(run_id=run_id, holder=holder(), acquired_at=now, heartbeat_at=now))
    if taken.rowcount != 1:
        raise PopsyncError(f"run date {run_date} was taken over by another run; this run stops")
    return int(current["run_id"])


def abandon_dead_runs(connection: sa.Connection, run_id: int) -> list[int]:
    """Attempts of any run date still ``running`` without a live lock (killed unseen, or silent
    for ``STALE_AFTER`` and so taken to be dead) are marked ``abandoned`` by ``run_id`` starting,
    and their stale locks freed: so a killed night of another date does not stay ``running`` for
    ever, and recovery removes its staging folder. Returns their run ids."""
    now = datetime.now(UTC)
    locks, runs = store.run_locks, store.runs
    held = connection.execute(sa.select(locks.c.run_date, locks.c.run_id, locks.c.heartbeat_at))
    stale = {row.run_date: row.run_id for row in held
             if now - _aware(row.heartbeat_at) >= STALE_AFTER and row.run_id != run_id}
    for run_date, holder_id in stale.items():
        connection.execute(sa.delete(locks).where(locks.c.run_date == run_date,
                                                  locks.c.run_id == holder_id))
    live = sa.select(locks.c.run_id)
    dead = list(connection.execute(
        sa.select(runs.c.run_id).where(runs.c.status == "running", runs.c.run_id != run_id,
                                       runs.c.run_id.not_in(live))).scalars())
    if dead:
        connection.execute(
            sa.update(runs).where(runs.c.run_id.in_(dead)).values(
                status="abandoned", finished_at=now,
                message=f"abandoned: found without a live lock by run {run_id} (killed, or "
                f"silent for {STALE_AFTER.total_seconds() / 3600:g} hours)"))
    return dead


def renew(db_url: str, run_date: str, run_id: int) -> None:
    """A step of ``run_id`` begins: renew its lock, or stop it if another run took it over."""
    try:
        engine = store.engine_for(db_url)
        with engine.begin() as connection:
            renewed = connection.execute(
                sa.update(store.run_locks)
                .where(store.run_locks.c.run_date == run_date,
                       store.run_locks.c.run_id == run_id)
                .values(heartbeat_at=datetime.now(UTC)))
            if renewed.rowcount == 1:
                return
            current = connection.execute(
                sa.select(store.run_locks.c.run_id).where(store.run_locks.c.run_date == run_date)
            ).scalar()
    except sa.exc.SQLAlchemyError as exc:
        raise PopsyncError(
            f"{store.unreachable(db_url, exc)}; nothing was published, the previous publication "
            "stays; rerun when the database is back"
        ) from None
    raise RunStopped(
        f"run {run_id} no longer holds run date {run_date}"
        + (f": run {current} took it over after this run fell silent" if current else "")
        + "; this run stops without publishing"
    )


def release(connection: sa.Connection, run_date: str, run_id: int) -> None:
    connection.execute(sa.delete(store.run_locks).where(
        store.run_locks.c.run_date == run_date, store.run_locks.c.run_id == run_id))
