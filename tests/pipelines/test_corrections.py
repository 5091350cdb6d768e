"""The corrections feed: only certain links, only the differences the core system can fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines.corrections import EXACT_ID, REVIEWER_CONFIRMATION, certain_fixes
from popsync import store
from popsync.contracts import CORRECTION_COLUMNS


def _row(vss_code, reasons, status="needs_correction", id_agrees=True, confirmed=False, **fields):
    row = {"vss_code": vss_code, "province_code": "01", "status": status,
           "reasons": np.array(reasons, dtype=object), "id_agrees": id_agrees,
           "confirmed": confirmed, "full_name": "Nguyễn Văn An", "birth_date": "1990-01-02",
           "gender": "M", "national_id": "001090000001", "suggested_full_name": None,
           "suggested_birth_date": None, "suggested_gender": None,
           "suggested_national_id": None}
    return {**row, **fields}


def test_only_certain_links_and_fixable_differences_go_in():
    rows = pd.DataFrame([
        # exact ID, a name without diacritics and a year-only birth date: both fixed
        _row("0100000001", ["name_mismatch", "birth_date_partial"], full_name="NGUYEN VAN AN",
             suggested_full_name="Nguyễn Văn An", birth_date="1990",
             suggested_birth_date="1990-01-02"),
        # exact ID but another name (not a respelling): a clerk's
        _row("0100000002", ["name_mismatch"], full_name="Nguyễn Văn Bình",
             suggested_full_name="Nguyễn Văn An"),
        # exact ID but another full birth date, or gender: a clerk's
        _row("0100000003", ["birth_date_mismatch"], birth_date="1991-01-02",
             suggested_birth_date="1990-01-02"),
        _row("0100000004", ["gender_mismatch"], gender="F", suggested_gender="M"),
        # exact ID, a name respelt, but a duplicate registration too: a clerk's
        _row("0100000005", ["name_mismatch", "duplicate_registration"], full_name="Nguyen Van An",
             suggested_full_name="Nguyễn Văn An"),
        # linked by a fuzzy match (the ID differs): never in the feed
        _row("0100000006", ["id_not_found", "name_mismatch"], id_agrees=False,
             national_id="001090000009", suggested_national_id="001090000001",
             full_name="Nguyen Van An", suggested_full_name="Nguyễn Văn An"),
        # a reviewer's confirmation: every difference, the personal ID included
        _row("0100000007", ["missing_id", "gender_mismatch"], id_agrees=False, confirmed=True,
             national_id=None, suggested_national_id="001090000001", gender="F",
             suggested_gender="M"),
        # in review: not linked, never in the feed
        _row("0100000008", ["ambiguous"], status="needs_review", confirmed=True,
             full_name="Nguyen Van An", suggested_full_name="Nguyễn Văn An"),
    ])
    feed = certain_fixes(rows)
    assert tuple(feed.columns) == CORRECTION_COLUMNS
    assert feed.fillna("")[["vss_code", "field", "registry_value", "population_value", "evidence"]
                ].values.tolist() == [
        ["0100000001", "full_name", "NGUYEN VAN AN", "Nguyễn Văn An", EXACT_ID],
        ["0100000001", "birth_date", "1990", "1990-01-02", EXACT_ID],
        ["0100000007", "gender", "F", "M", REVIEWER_CONFIRMATION],
        ["0100000007", "national_id", "", "001090000001", REVIEWER_CONFIRMATION],
    ]


def test_the_published_feed_fixes_exact_id_links_only(published):
    folder = published / store.publication_path("2026-11-20")
    feed = pd.read_parquet(folder / "corrections.parquet")
    csv = pd.read_csv(folder / "corrections.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns) == list(CORRECTION_COLUMNS) and len(csv) == len(feed) > 0
    assert csv["vss_code"].tolist() == feed["vss_code"].tolist()
    results = pd.read_parquet(folder / "results.parquet").set_index("vss_code")
    fixed = results.loc[feed["vss_code"].unique()]
    assert fixed["status"].eq("needs_correction").all() and fixed["id_agrees"].all()
    assert set(feed["evidence"]) == {EXACT_ID}
    assert set(feed["field"]) <= {"full_name", "birth_date"}
    assert feed["vss_code"].is_monotonic_increasing
    manifest = pd.read_json(folder / "manifest.json", typ="series")
    assert manifest["corrections"] == len(feed)
    assert pq.read_schema(folder / "corrections.parquet").names == list(CORRECTION_COLUMNS)
