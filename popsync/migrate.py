"""Schema versions of the publication database (Alembic, ``popsync/migrations``): a new empty
database is created at the latest version; an existing one of an earlier version is upgraded by
``popsync db upgrade``, never behind the user's back."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import sqlalchemy as sa

from popsync import store
from popsync.errors import PopsyncError

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema of the releases before versioning


def _config(connection: sa.Connection | None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None)).get_current_head()


def current(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    # every step checks the version: Alembic's INFO lines ("Context impl ...") would fill the
    # task logs; `popsync db upgrade` prints what it did itself
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return MigrationContext.configure(connection).get_current_revision()


def _is_empty(connection: sa.Connection) -> bool:
    return not set(sa.inspect(connection).get_table_names()) & set(store.metadata.tables)


def _create(connection: sa.Connection) -> None:
    """A new empty database: every table at once, marked at the latest version."""
    from alembic import command

    store.metadata.create_all(connection)
    command.stamp(_config(connection), "head")


CREATE_LOCK = 0x706F7073  # PostgreSQL advisory lock key ("pops") taken while creating tables


def _lock_for_creation(connection: sa.Connection) -> None:
    """Hold the database's write lock until the transaction ends, so that two processes seeing
    one new empty database at once create it once: the second waits, then sees it made. Without
    it, SQLite's driver commits each CREATE TABLE on its own and the second process would find
    tables without a version and refuse them as an old release."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(CREATE_LOCK)))


def prepare(engine: sa.Engine) -> None:
    """Create the tables of a new empty database; refuse one at another schema version."""
    with engine.connect() as connection:
        revision = current(connection)
    if revision != head():
        with engine.connect() as connection:
            _lock_for_creation(connection)
            revision = current(connection)
            if revision is None and _is_empty(connection):
                _create(connection)
                revision = head()
            connection.commit()
    if revision == head():
        return
    shown = engine.url.render_as_string(hide_password=True)
    raise PopsyncError(
        f"publication database {shown} is at schema version "
        f"{revision or 'of a release before versioning'}; this popsync needs {head()}: "
        f"run `popsync db upgrade --db-url {shown}` first (back the database up before)"
    )


def upgrade(db_url: str) -> tuple[str | None, str]:
    """Bring the database to the latest version; returns (version before, version after)."""
    from alembic import command

    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            before = current(connection)
            if before is None and _is_empty(connection):
                _create(connection)
                return None, head()
            if before is None:  # made by a release before versioning: its schema is the baseline
                command.stamp(_config(connection), BASELINE)
            command.upgrade(_config(connection), "head")
    except sa.exc.OperationalError as exc:
        raise PopsyncError(
            f"publication database {engine.url.render_as_string(hide_password=True)} is "
            f"unreachable: {str(exc.orig or exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return before, head()
