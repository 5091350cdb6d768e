"""Reviewers' decisions as input of the engine: confirmed pairs link as if by exact personal ID
(fields still compared), rejected pairs never link, rows decided not in the population stay
unmatched; a decision the data now contradicts goes back to review with a reason saying so."""

import pandas as pd
import pytest

import matching
from matching.tables import InputError
from popsync.errors import PopsyncError
from tests.matching.test_engine import nation, one

TWINS = [  # two people no field tells apart but the personal ID
    {"personal_id": "038180007001", "full_name": "Phạm Văn Tùng", "birth_date": "1980-05-05",
     "gender": "M", "province_code": "38"},
    {"personal_id": "038180007002", "full_name": "Phạm Văn Tùng", "birth_date": "1980-05-05",
     "gender": "M", "province_code": "38"},
]
ROWS = [
    # 0: one of the twins, no ID: needs_review without a decision
    {"vss_code": "3800000001", "full_name": "Pham Van Tung", "birth_date": "1980-05-05",
     "gender": "M", "national_id": None, "province_code": "38"},
    # 1: no diacritics, no ID: linked to 001085004321 by name and date
    {"vss_code": "0100000002", "full_name": "Tran Van Hoa", "birth_date": "1985-11-02",
     "gender": "M", "national_id": None, "province_code": "74"},
    # 2: every field agrees, exact personal ID
    {"vss_code": "7900000001", "full_name": "Nguyễn Thị Thủy", "birth_date": "1990-04-15",
     "gender": "F", "national_id": "079190001234"},
    # 3: not in the population
    {"vss_code": "7900000006", "full_name": "John Smith", "birth_date": "1970-01-01",
     "gender": "M", "national_id": None},
]


@pytest.fixture
def tables(make_registry, make_population):
    registry, population = nation(make_registry, make_population, ROWS, extra_people=3000)
    return registry, pd.concat([population, make_population(TWINS)], ignore_index=True)


def decisions(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["vss_code", "personal_id", "decision"])


def test_without_decisions_the_twin_goes_to_review(tables):
    row = one(matching.reconcile(*tables), "3800000001")
    assert row["status"] == "needs_review"


def test_a_confirmed_candidate_links_with_its_differences_to_correct(tables):
    registry, population = tables
    results = matching.reconcile(registry, population, decisions=decisions(
        ("3800000001", "038180007002", "confirmed")))
    row = one(results, "3800000001")
    assert row["status"] == "needs_correction" and row["personal_id"] == "038180007002"
    assert row["reasons"] == ["missing_id", "name_mismatch"]
    assert row["suggested_national_id"] == "038180007002"
    assert row["suggested_full_name"] == "Phạm Văn Tùng"
    assert row["match_probability"] == 1.0 and row["birth_date_agrees"]
    # the other rows are decided exactly as without the decision
    plain = matching.reconcile(registry, population)
    others = results["vss_code"] != "3800000001"
    pd.testing.assert_frame_equal(results[others], plain[others])


def test_a_confirmed_pair_whose_fields_agree_is_synchronized(tables, make_registry):
    registry, population = tables
    registry = pd.concat([registry, make_registry([{
        "vss_code": "3800000009", "full_name": "Phạm Văn Tùng", "birth_date": "1980-05-05",
        "gender": "M", "national_id": "038180007001", "province_code": "38"}])],
        ignore_index=True)
    # the ID links it anyway; confirming another person moves the link there
    results = matching.reconcile(registry, population, decisions=decisions(
        ("3800000009", "038180007001", "confirmed"), ("3800000001", "038180007002", "confirmed")))
    assert one(results, "3800000009")["status"] == "synchronized"
    row = one(results, "3800000001")
    assert row["status"] == "needs_correction" and row["personal_id"] == "038180007002"


def test_a_confirmation_overrides_the_registry_s_own_id(tables):
    registry, population = tables
    results = matching.reconcile(registry, population, decisions=decisions(
        ("7900000001", "038180007001", "confirmed")))
    row = one(results, "7900000001")
    assert row["personal_id"] == "038180007001" and row["status"] == "needs_correction"
    assert {"id_not_found", "name_mismatch", "birth_date_mismatch",
            "gender_mismatch"} <= set(row["reasons"])
    assert row["suggested_national_id"] == "038180007001"


def test_a_rejected_pair_is_never_linked(tables):
    registry, population = tables
    results = matching.reconcile(registry, population, decisions=decisions(
        ("0100000002", "001085004321", "rejected"),
        ("7900000001", "079190001234", "rejected"),  # even by exact personal ID
        ("3800000001", "038180007001", "rejected")))
    for vss_code, rejected in [("0100000002", "001085004321"), ("7900000001", "079190001234")]:
        row = one(results, vss_code)
        assert row["personal_id"] != rejected and row["status"] in ("unmatched", "needs_review")
    # the twin rejected, the other twin is the only candidate left: it links
    row = one(results, "3800000001")
    assert row["personal_id"] == "038180007002" and row["status"] == "needs_correction"


def test_not_in_population_keeps_the_row_unmatched_while_nothing_changes(tables):
    registry, population = tables
    decided = decisions(("0100000002", "001085004321", "not_in_population"),
                        ("7900000006", None, "not_in_population"))
    results = matching.reconcile(registry, population, decisions=decided)
    row = one(results, "0100000002")
    assert row["status"] == "unmatched" and pd.isna(row["personal_id"])
    assert row["reasons"] == ["missing_id", "not_in_population"]
    row = one(results, "7900000006")
    assert row["status"] == "unmatched" and row["reasons"] == ["missing_id", "not_in_population"]


def test_not_in_population_is_reviewed_again_when_a_new_person_fits(tables, make_population):
    registry, population = tables
    arrived = make_population([{"personal_id": "079170000077", "full_name": "John Smith",
                                "birth_date": "1970-01-01", "gender": "M"},
                               {"personal_id": "001085000078", "full_name": "Trần Văn Hòa",
                                "birth_date": "1985-11-02", "gender": "M"}])
    population = pd.concat([population, arrived], ignore_index=True)
    decided = decisions(("0100000002", "001085004321", "not_in_population"),
                        ("7900000006", None, "not_in_population"))
    results = matching.reconcile(registry, population, decisions=decided)
    for vss_code, person in [("0100000002", "001085000078"), ("7900000006", "079170000077")]:
        row = one(results, vss_code)
        assert row["status"] == "needs_review" and row["personal_id"] == person
        assert "decision_outdated" in row["reasons"]
        assert "not_in_population" not in row["reasons"]


def test_a_confirmed_person_now_deceased_goes_back_to_review(tables):
    registry, population = tables
    population = population.copy()
    population.loc[population["personal_id"] == "038180007002", "is_deceased"] = True
    results = matching.reconcile(registry, population, decisions=decisions(
        ("3800000001", "038180007002", "confirmed")))
    row = one(results, "3800000001")
    assert row["status"] == "needs_review" and row["personal_id"] == "038180007002"
    assert {"confirmed_person_deceased", "deceased"} <= set(row["reasons"])


def test_a_confirmed_person_claimed_by_another_registration_goes_back_to_review(
        tables, make_registry):
    registry, population = tables
    claimant = make_registry([{"vss_code": "3800000010", "full_name": "Phạm Văn Tùng",
                               "birth_date": "1980-05-05", "gender": "M",
                               "national_id": "038180007002", "province_code": "38"}])
    registry = pd.concat([registry, claimant], ignore_index=True)
    results = matching.reconcile(registry, population, decisions=decisions(
        ("3800000001", "038180007002", "confirmed")))
    row = one(results, "3800000001")
    assert row["status"] == "needs_review" and "confirmed_person_claimed" in row["reasons"]
    assert one(results, "3800000010")["status"] == "synchronized"


def test_a_confirmed_person_gone_from_the_population_is_not_linked_on_trust(tables):
    registry, population = tables
    population = population[population["personal_id"] != "001085004321"]
    results = matching.reconcile(registry, population, decisions=decisions(
        ("0100000002", "001085004321", "confirmed")))
    row = one(results, "0100000002")
    assert row["status"] != "needs_correction" and "decision_outdated" in row["reasons"]


def test_decisions_on_other_registries_rows_are_ignored(tables):
    registry, population = tables
    results = matching.reconcile(registry, population, decisions=decisions(
        ("9999999999", "038180007002", "confirmed")))
    pd.testing.assert_frame_equal(results, matching.reconcile(registry, population))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("3800000001", "038180007002", "maybe")], "expected one of"),
        ([("3800000001", None, "confirmed")], "12-digit"),
        ([("3800000001", "038180007001", "confirmed"), ("3800000001", "038180007002",
                                                          "confirmed")], "*******001"),
        ([("3800000001", "038180007001", "confirmed"), ("3800000001", "038180007001",
                                                          "rejected")], "contradict"),
        ([("3800000001", "038180007001", "confirmed"), ("3800000001", None,
                                                          "not_in_population")], "contradict"),
    ],
)
def test_bad_decisions_are_refused_with_what_to_do(tables, rows, message):
    registry, population = tables
    with pytest.raises(InputError, match=message.replace("*", r"\*")) as caught:
        matching.link(registry, population, decisions=decisions(*rows))
    assert isinstance(caught.value, PopsyncError)
    assert "038180007001" not in str(caught.value) and "3800000001" not in str(caught.value)


def test_the_report_counts_the_decisions_and_scores_the_engine_on_them(tables):
    registry, population = tables
    report = matching.link(registry, population, decisions=decisions(
        ("3800000001", "038180007002", "confirmed"),  # the engine sends it to review: missed
        ("7900000001", "079190001234", "confirmed"),  # the engine links it: a true link
        ("0100000002", "001085004321", "rejected"),  # the engine links it: a false link
        ("7900000006", None, "not_in_population"))).report["decisions"]
    assert report == {
        "confirmed": 2, "rejected": 1, "not_in_population": 1, "links_confirmed": 2,
        "kept_unmatched": 1, "contradicted": 0,
        "labels": {"confirmed_pairs": 2, "rejected_pairs": 1, "true_links": 1,
                   "false_links": 1, "missed_links": 1, "precision": 0.5, "recall": 0.5}}


def test_a_reviewer_s_verdicts_on_a_generated_nation():
    """A reviewer clears the review queue with the truth and disputes some links: the next
    link publishes every confirmed row linked to its person and no rejected pair, and every
    other row as before."""
    from popsync.synthetic import generate_nation

    nation = generate_nation(20_000, seed=21, profile="dirty")
    before = matching.reconcile(nation.registry, nation.population)
    merged = before.merge(nation.truth, on="vss_code", suffixes=("", "_true"))
    review = merged[(merged["status"] == "needs_review") & merged["personal_id_true"].notna()]
    wrong = merged[merged["status"] == "needs_correction"].iloc[::50]  # disputed links
    assert len(review) >= 1 and len(wrong) >= 20  # the nation gives rows of each to decide
    verdicts = pd.concat([
        review[["vss_code", "personal_id_true"]].set_axis(["vss_code", "personal_id"], axis=1)
        .assign(decision="confirmed"),
        wrong[["vss_code", "personal_id"]].assign(decision="rejected")], ignore_index=True)
    after = matching.reconcile(nation.registry, nation.population, decisions=verdicts)
    merged_after = after.merge(nation.truth, on="vss_code", suffixes=("", "_true"))
    confirmed = merged_after[merged_after["vss_code"].isin(review["vss_code"])]
    assert confirmed["status"].isin(["synchronized", "needs_correction"]).all()
    assert (confirmed["personal_id"] == confirmed["personal_id_true"]).all()
    rejected = after.set_index("vss_code").loc[wrong["vss_code"], "personal_id"]
    assert (rejected != wrong.set_index("vss_code")["personal_id"]).fillna(True).all()
    untouched = ~before["vss_code"].isin(verdicts["vss_code"])
    changed = before[untouched].compare(after[untouched]) if untouched.any() else None
    # only one-person-one-registration may move an undecided row: a confirmed person can no
    # longer be kept by a row the engine linked to it wrongly
    if changed is not None and len(changed):
        moved = before[untouched].loc[changed.index]
        assert moved["personal_id"].isin(verdicts["personal_id"]).all()


def test_a_confirmation_claimed_from_another_band_goes_back_to_review(tables, make_registry):
    """The night links its registry in bands: the claim by exact personal ID and the confirmed
    row are in different links, and only their results side by side show the contradiction."""
    registry, population = tables
    claimant = make_registry([{"vss_code": "3800000010", "full_name": "Phạm Văn Tùng",
                               "birth_date": "1980-05-05", "gender": "M",
                               "national_id": "038180007002", "province_code": "38"}])
    decided = decisions(("3800000001", "038180007002", "confirmed"))
    bands = [matching.link(registry, population, decisions=decided).results,
             matching.link(claimant, population, decisions=decided).results]
    together = pd.concat(bands, ignore_index=True)
    assert one(together, "3800000001")["status"] == "needs_correction"  # each band alone
    results = matching.resolve(together, decisions=decided)
    row = one(results, "3800000001")
    assert row["status"] == "needs_review" and "confirmed_person_claimed" in row["reasons"]
    assert "duplicate_registration" not in row["reasons"]
    assert one(results, "3800000010")["status"] == "synchronized"
    # without the decisions, one person one registration decides between the two
    plain = matching.resolve(together)
    assert {one(plain, "3800000001")["status"], one(plain, "3800000010")["status"]} == {
        "synchronized", "needs_correction"}
