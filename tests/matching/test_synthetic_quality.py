"""End to end on generated nations (several seeds and error profiles): the contract holds and
the links meet the issue's precision and recall."""

import pytest

import matching
from popsync.contracts import REASONS, RESULT_COLUMNS, STATUSES
from popsync.synthetic import generate_nation

LINKED = ("synchronized", "needs_correction")


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "profile"), [(11, "default"), (12, "dirty"), (13, "clean")])
def test_precision_and_recall_on_generated_nations(seed, profile):
    nation = generate_nation(30_000, seed, profile)
    results = matching.reconcile(nation.registry, nation.population)

    assert list(results.columns) == list(RESULT_COLUMNS)
    assert len(results) == len(nation.registry)
    assert sorted(results["vss_code"]) == sorted(nation.registry["vss_code"])
    assert set(results["status"]) <= set(STATUSES)
    assert all(set(reasons) <= set(REASONS) for reasons in results["reasons"])

    merged = results.merge(nation.truth, on="vss_code", suffixes=("", "_true"))
    linked = merged["status"].isin(LINKED)
    correct = linked & (merged["personal_id"] == merged["personal_id_true"]).fillna(False)
    present = merged["personal_id_true"].notna()
    precision = correct.sum() / linked.sum()
    recall = correct.sum() / present.sum()
    assert precision >= 0.9995, precision
    assert recall >= 0.998, recall

    # one person, one registration: further rows of a person are flagged, never silent
    persons = merged.loc[linked, "personal_id"]
    repeated = merged.loc[linked & persons.duplicated(keep=False)]
    for _, group in repeated.groupby("personal_id"):
        flagged = group["reasons"].map(lambda r: "duplicate_registration" in r)
        assert flagged.sum() == len(group) - 1
    deceased = merged["error_tags"].fillna("").str.contains("deceased") & correct
    assert merged.loc[deceased, "reasons"].map(lambda r: "deceased" in r).all()
