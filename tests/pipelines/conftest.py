"""Shared fixtures: a small synthetic nation on disk and a way to run ``popsync run`` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_helpers import run

from popsync.synthetic import generate_nation, write_nation

PEOPLE = 1500


@pytest.fixture(scope="session")
def nation_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("nation")
    write_nation(generate_nation(PEOPLE, seed=11), folder, force=True)
    return folder


@pytest.fixture(scope="session")
def registry_path(nation_dir) -> Path:
    return nation_dir / "registry.parquet"


@pytest.fixture(scope="session")
def population_path(nation_dir) -> Path:
    return nation_dir / "population.parquet"


@pytest.fixture(scope="session")
def published(tmp_path_factory, registry_path, population_path) -> Path:
    """One successful run (2026-11-20) shared by read-only tests, employer workbooks on."""
    out = tmp_path_factory.mktemp("published")
    config = out / "employers.yaml"
    config.write_text("output:\n  employer_workbooks: true\n", "utf-8")
    assert run(out, registry_path, population_path, "2026-11-20", "--config", str(config)) == 0
    return out
