"""The review tests' nation: a generated one where some registrations are made undecidable
(their personal ID blanked, their person given a namesake twin), and real nights over it."""

from __future__ import annotations

import dataclasses

import pandas as pd

from pipelines import cli
from popsync import store

PEOPLE, SEED, PROVINCE = 3000, 1, "79"
NIGHTS = ("2026-12-01", "2026-12-02")


def night(nation, out, run_date) -> pd.DataFrame:
    assert cli.main(["run", "--registry", str(nation / "registry.parquet"), "--population",
                     str(nation / "population.parquet"), "--out", str(out),
                     "--run-date", run_date]) == 0
    return pd.read_parquet(out / store.publication_path(run_date) / "results.parquet")


def with_namesakes(nation, rows: int):
    """The nation with ``rows`` registrations of PROVINCE made undecidable: their personal ID
    is blanked and their person gets a namesake (same name, birth date, gender and place, a
    personal ID of their own)."""
    registry, population = nation.registry.copy(), nation.population.copy()
    ids = set(population["personal_id"])
    chosen = registry[(registry["province_code"] == PROVINCE)
                      & registry["national_id"].isin(ids)].head(rows)
    twins = population[population["personal_id"].isin(chosen["national_id"])].copy()
    fresh = []
    for pid in twins["personal_id"]:
        twin = pid[:6] + f"{(int(pid[6:]) + 1) % 10**6:06d}"
        while twin in ids:
            twin = twin[:6] + f"{(int(twin[6:]) + 1) % 10**6:06d}"
        ids.add(twin)
        fresh.append(twin)
    twins["personal_id"] = fresh
    registry.loc[chosen.index, "national_id"] = None
    return dataclasses.replace(nation, registry=registry,
                               population=pd.concat([population, twins], ignore_index=True))
