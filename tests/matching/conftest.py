"""Small hand-written registry and population tables for the matching tests."""

import pandas as pd
import pytest

from popsync.contracts import POPULATION_REQUIRED, REGISTRY_REQUIRED


def registry_table(rows: list[dict]) -> pd.DataFrame:
    """Registry rows with defaults for the columns a test does not care about."""
    defaults = {"province_code": "79", "scheme_si_compulsory": True, "scheme_si_voluntary": False,
                "scheme_hi": True, "scheme_ui": False, "national_id": None, "gender": "M"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    if "vss_code" not in frame:
        frame["vss_code"] = [f"79{i:08d}" for i in range(len(frame))]
    return frame[list(REGISTRY_REQUIRED)]


def population_table(rows: list[dict]) -> pd.DataFrame:
    defaults = {"province_code": "79", "old_id_number": None, "is_deceased": False,
                "death_date": None, "gender": "M"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    return frame[list(POPULATION_REQUIRED)]


@pytest.fixture
def make_registry():
    return registry_table


@pytest.fixture
def make_population():
    return population_table
