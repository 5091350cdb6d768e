"""The publication database's schema versions: a database of the releases before versioning,
with data, is upgraded by `popsync db upgrade` and reads back whole; a new one is created at the
latest version; the migrations build the same schema as store.py declares."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import cli
from popsync import migrate, store
from popsync.errors import PopsyncError

BEFORE = Path(__file__).parent / "data"
T0 = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
ROWS = {
    "runs": [
        {"run_id": 1, "run_date": "2026-11-20", "started_at": T0, "finished_at": T0,
         "status": "succeeded", "message": None, "participants": 1000, "quarantined": 3,
         "sync_rate": 0.95},
        {"run_id": 2, "run_date": "2026-11-21", "started_at": T0, "finished_at": None,
         "status": "running", "message": "attempt 1", "participants": None, "quarantined": None,
         "sync_rate": None},
    ],
    "run_locks": [{"run_date": "2026-11-21", "run_id": 2, "holder": "worker-1:42",
                   "acquired_at": T0, "heartbeat_at": T0}],
    "publications": [{"run_date": "2026-11-20", "run_id": 1, "published_at": T0,
                      "path": "publications/2026-11-20"}],
    "metrics": [{"run_date": "2026-11-20", "scheme": s, "line": "all", "province_code": "79",
                 "participants": 1000, "synchronized": 950, "needs_correction": 30,
                 "needs_review": 10, "unmatched": 10, "sync_rate": 0.95, "rank": 1,
                 "change": None} for s in ("34", "63")],
    "reason_counts": [{"run_date": "2026-11-20", "scheme": "63", "province_code": "79",
                       "status": "needs_correction", "reason": "missing_id", "count": 30}],
}


def _previous_release(url: str) -> None:
    """The schema as the releases before versioning created it, and a night's data in it."""
    engine = sa.create_engine(url)
    ddl = (BEFORE / f"schema_before_versioning.{engine.dialect.name}.sql").read_text("utf-8")
    ddl = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    with engine.begin() as connection:
        for statement in filter(str.strip, ddl.split(";")):
            connection.exec_driver_sql(statement)
        old = sa.MetaData()
        old.reflect(connection)
        for table, rows in ROWS.items():
            connection.execute(old.tables[table].insert(), rows)
    engine.dispose()


def _read_back(url: str) -> dict[str, list[dict]]:
    engine = store.engine_for(url)  # refuses a database not at the latest version
    with engine.connect() as connection:
        found = {table: [dict(r) for r in connection.execute(
            sa.select(store.metadata.tables[table]).order_by(
                *store.metadata.tables[table].primary_key.columns)).mappings()]
            for table in ROWS}
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return found, version


def _same(found: list[dict], expected: list[dict]) -> None:
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        for key, value in want.items():
            if isinstance(value, datetime):  # SQLite hands back naive UTC
                got_value = got[key] if got[key].tzinfo else got[key].replace(tzinfo=UTC)
                assert got_value == value, key
            else:
                assert got[key] == value, key


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'popsync.db'}"
    return request.getfixturevalue("postgres_url")


def test_popsync_db_upgrade_keeps_the_previous_release_data(database_url, capsys):
    _previous_release(database_url)
    with pytest.raises(PopsyncError, match="popsync db upgrade"):
        store.engine_for(database_url)  # nothing runs on an old schema unmigrated

    assert cli.main(["db", "upgrade", "--db-url", database_url]) == 0
    assert f"-> {migrate.head()}" in capsys.readouterr().out
    found, version = _read_back(database_url)
    assert version == migrate.head()
    for table, rows in ROWS.items():
        _same(found[table], rows)
    assert [r["stopped_by"] for r in found["runs"]] == [None, None]  # the column 0002 adds

    assert cli.main(["db", "upgrade", "--db-url", database_url]) == 0
    assert "already at schema version" in capsys.readouterr().out


def test_a_new_database_is_created_at_the_latest_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    engine = store.engine_for(url)
    with engine.connect() as connection:
        assert migrate.current(connection) == migrate.head()
        assert set(store.metadata.tables) <= set(sa.inspect(connection).get_table_names())


def test_the_migrations_build_the_schema_store_declares(postgres_url):
    """Upgrading an empty database step by step (not create_all) gives store.metadata exactly."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        command.upgrade(migrate._config(connection), "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": lambda obj, name, type_, *_: type_ != "table"
            or name in store.metadata.tables})
        assert compare_metadata(context, store.metadata) == []
    engine.dispose()


def _open(url: str, start, errors) -> None:
    start.wait()
    try:
        store.engine_for(url).dispose()
    except Exception as exc:  # noqa: BLE001 - the parent reports what the child met
        errors.put(str(exc))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_processes_opening_one_new_database_at_once_all_get_it_at_the_latest_version(
    database_url
):
    """Two nights started together on a new output (CI saw it): the second must not find the
    first's half-made tables and refuse them as a release before versioning."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start, errors = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_open, args=(database_url, start, errors))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and [w.exitcode for w in workers] == [0] * 4
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert migrate.current(connection) == migrate.head()
    engine.dispose()
