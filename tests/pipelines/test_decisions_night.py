"""Reviewers' decisions across nights: recorded in the publication database, read by the next
night's matching, audited when superseded or revoked."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pipeline_helpers import read_table, run

from popsync import decisions, store
from popsync.synthetic import generate_nation, write_nation

TWIN_IDS = ("038180007001", "038180007002")
TWIN_ROW = "3800000001"


@pytest.fixture(scope="module")
def nation(tmp_path_factory):
    """A small generated nation, plus two people no field tells apart but the personal ID and a
    registration of one of them without an ID (the engine sends it to review)."""
    generated = generate_nation(1500, seed=11)
    person = generated.population.iloc[0].to_dict()
    twins = [{**person, "personal_id": pid, "full_name": "Phạm Văn Tùng",
              "birth_date": "1980-05-05", "gender": "M", "province_code": "38",
              "is_deceased": False} for pid in TWIN_IDS]
    row = {**generated.registry.iloc[0].to_dict(), "vss_code": TWIN_ROW,
           "full_name": "Pham Van Tung", "birth_date": "1980-05-05", "gender": "M",
           "national_id": None, "province_code": "38", "hi_card_number": None}
    generated.population = pd.concat([generated.population, pd.DataFrame(twins)],
                                     ignore_index=True)
    generated.registry = pd.concat([generated.registry, pd.DataFrame([row])], ignore_index=True)
    folder = tmp_path_factory.mktemp("nation-decisions")
    write_nation(generated, folder, force=True)
    return folder


def _night(out, nation, run_date, *extra):
    assert run(out, nation / "registry.parquet", nation / "population.parquet", run_date,
               *extra) == 0
    folder = out / store.publication_path(run_date)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    return pd.read_parquet(folder / "results.parquet").set_index("vss_code"), manifest


def test_decisions_recorded_after_a_night_are_honoured_by_the_next(tmp_path, nation):
    out = tmp_path / "out"
    first, manifest = _night(out, nation, "2026-11-20")
    assert first.loc[TWIN_ROW, "status"] == "needs_review"
    assert manifest["decisions"]["confirmed"] == 0
    disputed = first[first["status"] == "needs_correction"].index[0]
    disputed_person = first.loc[disputed, "personal_id"]

    engine = store.engine_for(store.default_db_url(out))
    decisions.record(engine, TWIN_ROW, TWIN_IDS[1], "confirmed", "reviewer38",
                     "same person: hospital record")
    decisions.record(engine, disputed, disputed_person, "rejected", "office79", "not her")
    second, manifest = _night(out, nation, "2026-11-21")
    row = second.loc[TWIN_ROW]
    assert row["status"] == "needs_correction" and row["personal_id"] == TWIN_IDS[1]
    assert "missing_id" in row["reasons"]
    assert second.loc[disputed, "personal_id"] != disputed_person
    assert manifest["decisions"]["links_confirmed"] == 1
    # the confirmed link's fixes go in the corrections feed, the personal ID first of all
    feed = pd.read_parquet(out / store.publication_path("2026-11-21") / "corrections.parquet")
    mine = feed[feed["vss_code"] == TWIN_ROW].set_index("field")
    assert mine.loc["national_id", "population_value"] == TWIN_IDS[1]
    assert mine.loc["full_name", "population_value"] == "Phạm Văn Tùng"
    assert set(mine["evidence"]) == {"reviewer_confirmation"}
    # the engine on its own sent the twin to review and linked the disputed pair
    labels = manifest["decisions"]["labels"]
    assert labels["confirmed_pairs"] == 1 and labels["rejected_pairs"] == 1
    assert labels["missed_links"] == 1 and labels["false_links"] == 1
    assert labels["precision"] == 0.0 and labels["recall"] == 0.0

    # the confirmation revoked, the next night decides as the engine does
    confirmation = read_table(out, store.review_decisions)
    decision_id = int(confirmation.loc[confirmation["decision"] == "confirmed",
                                       "decision_id"].iloc[0])
    decisions.revoke(engine, decision_id, "lead", "confirmed by mistake")
    third, _ = _night(out, nation, "2026-11-22")
    assert third.loc[TWIN_ROW, "status"] == "needs_review"
    engine.dispose()


def test_decisions_are_superseded_and_revoked_with_who_when_and_why(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'db.sqlite'}")
    first = decisions.record(engine, TWIN_ROW, TWIN_IDS[0], "confirmed", "a", "looked alike")
    second = decisions.record(engine, TWIN_ROW, TWIN_IDS[1], "confirmed", "b", "ID card seen")
    rejected = decisions.record(engine, TWIN_ROW, TWIN_IDS[0], "rejected", "b", "other twin")
    standing = decisions.standing(engine)
    assert standing.to_dict("records") == [
        {"vss_code": TWIN_ROW, "personal_id": TWIN_IDS[1], "decision": "confirmed"},
        {"vss_code": TWIN_ROW, "personal_id": TWIN_IDS[0], "decision": "rejected"}]
    history = read_table(tmp_path, store.review_decisions,
                         f"sqlite:///{tmp_path / 'db.sqlite'}").set_index("decision_id")
    assert history.loc[first, "revoked_by"] == "b"
    assert history.loc[first, "revoke_note"] == f"superseded by decision {second}"
    decisions.revoke(engine, rejected, "c", "wrong row")
    with pytest.raises(decisions.DecisionError, match="revoked already"):
        decisions.revoke(engine, rejected, "c")
    assert decisions.standing(engine)["decision"].tolist() == ["confirmed"]
    assert decisions.record(engine, TWIN_ROW, None, "not_in_population", "d") > rejected
    assert decisions.standing(engine)["decision"].tolist() == ["not_in_population"]
    with pytest.raises(decisions.DecisionError, match="not 12 digits") as refused:
        decisions.record(engine, TWIN_ROW, "03818000700X2", "confirmed", "e")
    assert "03818000700X2" not in str(refused.value)  # personal data masked
    with pytest.raises(decisions.DecisionError, match="names a person"):
        decisions.record(engine, TWIN_ROW, None, "rejected", "e")
    engine.dispose()


FAR_ROW = "3800000002"
FAR_ID = "038150007003"


@pytest.fixture(scope="module")
def far_nation(tmp_path_factory):
    """A registration without a personal ID whose birth date is decades off its person's: no
    birth-year band of the night reads that person for it unless something quotes them."""
    generated = generate_nation(1500, seed=12)
    person = {**generated.population.iloc[0].to_dict(), "personal_id": FAR_ID,
              "full_name": "Đặng Thị Xuân", "birth_date": "1950-03-08", "gender": "F",
              "province_code": "38", "is_deceased": False}
    row = {**generated.registry.iloc[0].to_dict(), "vss_code": FAR_ROW,
           "full_name": "Dang Thi Xuan", "birth_date": "1995-03-08", "gender": "F",
           "national_id": None, "province_code": "38", "hi_card_number": None}
    generated.population = pd.concat([generated.population, pd.DataFrame([person])],
                                     ignore_index=True)
    generated.registry = pd.concat([generated.registry, pd.DataFrame([row])], ignore_index=True)
    folder = tmp_path_factory.mktemp("nation-far")
    write_nation(generated, folder, force=True)
    return folder


def test_a_confirmed_person_born_outside_the_rows_band_is_linked_not_outdated(tmp_path,
                                                                             far_nation):
    """The reviewer confirmed the person although the registry's birth date is 45 years off:
    the night quotes the person into the row's band, links them and asks to correct the date,
    night after night (not ``decision_outdated`` because the band never read the person)."""
    out = tmp_path / "out"
    config = tmp_path / "bands.yaml"  # bands of a few birth years, each its own matching task
    config.write_text("partition:\n  max_rows: 100\n  cohort_persons: 1\n", "utf-8")
    first, _ = _night(out, far_nation, "2026-11-20", "--config", str(config))
    assert first.loc[FAR_ROW, "personal_id"] != FAR_ID
    engine = store.engine_for(store.default_db_url(out))
    decisions.record(engine, FAR_ROW, FAR_ID, "confirmed", "reviewer38", "birth certificate")
    for run_date in ("2026-11-21", "2026-11-22"):
        night, manifest = _night(out, far_nation, run_date, "--config", str(config))
        row = night.loc[FAR_ROW]
        assert row["personal_id"] == FAR_ID and row["status"] == "needs_correction"
        assert "decision_outdated" not in row["reasons"]
        assert "birth_date_mismatch" in row["reasons"]
        assert manifest["decisions"]["links_confirmed"] == 1
    engine.dispose()
