"""Publication into a real PostgreSQL server, the production database (the test session's own
cluster: tests/conftest.py)."""

from __future__ import annotations

import pandas as pd
from pipeline_helpers import read_table, run

from popsync import store


def test_publication_to_postgresql_is_complete_and_idempotent(
    tmp_path, registry_path, population_path, published, postgres_url
):
    out = tmp_path / "out"
    assert run(out, registry_path, population_path, "2026-11-20", "--db-url", postgres_url) == 0
    assert run(out, registry_path, population_path, "2026-11-20", "--db-url", postgres_url) == 0
    metrics = read_table(out, store.metrics, postgres_url)
    assert not metrics.duplicated(["run_date", "scheme", "line", "province_code"]).any()
    sqlite_metrics = read_table(published, store.metrics)  # the same night on SQLite
    keys = ["scheme", "line", "province_code"]
    pd.testing.assert_frame_equal(
        metrics.sort_values(keys).reset_index(drop=True)[["participants", "synchronized", "rank"]],
        sqlite_metrics.sort_values(keys).reset_index(drop=True)[
            ["participants", "synchronized", "rank"]
        ],
    )
    assert read_table(out, store.runs, postgres_url)["status"].tolist() == ["succeeded"] * 2
    assert read_table(out, store.publications, postgres_url)["run_id"].tolist() == [2]
    assert len(read_table(out, store.reason_counts, postgres_url)) == len(
        read_table(published, store.reason_counts)
    )
    for table in (store.breakdowns, store.coverage):  # replaced by the rerun, as on SQLite
        keys = [c.name for c in table.primary_key]
        on_postgres = read_table(out, table, postgres_url).sort_values(keys)
        on_sqlite = read_table(published, table).sort_values(keys)
        assert len(on_postgres) and len(on_postgres) == len(on_sqlite), table.name
        pd.testing.assert_frame_equal(on_postgres.reset_index(drop=True),
                                      on_sqlite.reset_index(drop=True), check_dtype=False)
    assert not (out / store.DB_FILE).exists()  # nothing went to the embedded default
