"""Fixtures every test package may use: throwaway PostgreSQL and Redis servers
(tests/services.py), started once per test session on first use."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
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
