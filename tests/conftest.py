"""Fixtures every test package may use: throwaway PostgreSQL and Redis servers
(tests/services.py), started once per test session on first use."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

# the helpers beside the tests import by name; the project root goes before them, or a bare
# `pytest` (no `python -m`, so no current folder on the path) takes tests/matching/ for the
# `matching` package
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
import services  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of this session's PostgreSQL cluster (no database: add ``/name``)."""
    with services.postgres_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new empty database in the session's cluster, dropped after the test."""
    name = f"popsync_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    with services.redis_server() as url:
        yield url
