"""matching.resolve against a row-by-row statement of the one-person-one-registration rule, for
every form the reasons column arrives in (Python lists, arrays read back from Parquet, an Arrow
list column), and for reason lists the engine would not write."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import matching
from popsync.contracts import REASONS, RESULT_COLUMNS
from popsync.errors import PopsyncError

DUPLICATE = "duplicate_registration"
LINKED = ("synchronized", "needs_correction")


def rule(results: pd.DataFrame) -> pd.DataFrame:
    """The rule, one row at a time: among linked rows of one person the highest weight (then the
    smallest vss_code) keeps its status, the others become needs_correction with the duplicate
    reason; a row flagged earlier that is no longer such a loser loses the flag (and becomes
    synchronized when no reason is left)."""
    rows = [dict(r, reasons=list(r["reasons"])) for r in results.to_dict("records")]
    by_person: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row["status"] in LINKED and isinstance(row["personal_id"], str):
            by_person.setdefault(row["personal_id"], []).append(i)
    losers = set()
    for members in by_person.values():
        def rank(i):
            weight = rows[i]["match_weight"]
            return (math.isnan(weight), -weight if not math.isnan(weight) else 0.0,
                    rows[i]["vss_code"])
        losers |= set(sorted(members, key=rank)[1:])
    linked = {i for members in by_person.values() for i in members}
    for i, row in enumerate(rows):
        if i in losers:
            if DUPLICATE not in row["reasons"]:
                row["reasons"] = sorted([*row["reasons"], DUPLICATE], key=REASONS.index)
            row["status"] = "needs_correction"
        elif i in linked and DUPLICATE in row["reasons"]:
            row["reasons"] = [x for x in row["reasons"] if x != DUPLICATE]
            if not row["reasons"]:
                row["status"] = "synchronized"
    return pd.DataFrame(rows)


def band_results(seed: int, n: int = 400, twelve_digit_ids: bool = True) -> pd.DataFrame:
    """Results as bands write them: few persons so many rows share one, weight ties, missing
    weights, some rows already flagged duplicate by their band."""
    rng = np.random.default_rng(seed)
    persons = [f"0791900{i:05d}" if twelve_digit_ids else f"P-{i}" for i in range(n // 4)]
    status = rng.choice(["synchronized", "needs_correction", "needs_review", "unmatched"], n,
                        p=[0.5, 0.3, 0.1, 0.1])
    personal_id = [None if s == "unmatched" or rng.random() < 0.05 else str(rng.choice(persons))
                   for s in status]
    weight = rng.choice([10.0, 12.5, 20.0, np.nan], n, p=[0.3, 0.3, 0.3, 0.1])
    reasons = []
    for s in status:
        if s == "synchronized":
            codes = []
        else:
            codes = sorted(rng.choice(len(REASONS), rng.integers(1, 4), replace=False).tolist())
            if s == "needs_correction" and rng.random() < 0.2:
                codes = [REASONS.index(DUPLICATE)]  # only the flag: becomes synchronized if kept
        reasons.append([REASONS[c] for c in codes])
    frame = pd.DataFrame({
        "vss_code": [f"79{i:08d}" for i in rng.permutation(n)],
        "province_code": "79",
        "status": pd.Series(status, dtype="str"),
        "reasons": reasons,
        "personal_id": pd.Series(personal_id, dtype="str"),
        "match_weight": weight,
    })
    for column in RESULT_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series([None] * n, dtype="str")
    return frame[list(RESULT_COLUMNS)]


def as_read_back(results: pd.DataFrame, tmp_path, arrow: bool) -> pd.DataFrame:
    path = tmp_path / f"part-{arrow}.parquet"
    results.to_parquet(path, index=False)
    if not arrow:
        return pd.read_parquet(path)  # reasons as numpy arrays
    table = pq.read_table(path)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_list(t)
                           else None)


def check_same(resolved: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(resolved.columns) == list(expected.columns)
    assert resolved["status"].tolist() == expected["status"].tolist()
    assert resolved["reasons"].tolist() == expected["reasons"].tolist()
    assert all(type(r) is list for r in resolved["reasons"])
    assert len({id(r) for r in resolved["reasons"]}) == len(resolved)  # no shared list objects


@pytest.mark.parametrize("twelve_digit_ids", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resolve_follows_the_rule_for_every_reasons_form(seed, twelve_digit_ids, tmp_path):
    bands = [band_results(seed * 10 + i, twelve_digit_ids=twelve_digit_ids) for i in range(3)]
    parts = pd.concat(bands, ignore_index=True)
    expected = rule(parts)
    assert (expected["status"] != parts["status"]).any()  # the rule changes something here
    assert (expected["reasons"].map(len) < parts["reasons"].map(len)).any()  # flags cleared
    for form in (parts, as_read_back(parts, tmp_path, False), as_read_back(parts, tmp_path, True)):
        resolved = matching.resolve(form)
        check_same(resolved, expected)
        assert str(resolved["status"].dtype) == "str"
        unchanged = [c for c in RESULT_COLUMNS if c not in ("status", "reasons")]
        pd.testing.assert_frame_equal(resolved[unchanged], parts[unchanged])
    again = matching.resolve(matching.resolve(parts))
    check_same(again, expected)


def test_lists_the_engine_would_not_write_are_kept_and_changed_alike():
    parts = band_results(7, n=40)
    parts["status"] = "needs_correction"
    parts["personal_id"] = "079190000001"  # one person: row 0 keeps, every other is a duplicate
    parts["match_weight"] = np.linspace(30, 10, len(parts))
    parts.at[0, "reasons"] = ["name_mismatch", DUPLICATE, "missing_id"]  # out of order
    parts.at[1, "reasons"] = ["gender_mismatch", "missing_id"]  # out of order, gains the flag
    parts.at[2, "reasons"] = ["missing_id", "missing_id"]  # repeated
    parts["status"] = parts["status"].astype("str")
    resolved = matching.resolve(parts)
    expected = rule(parts)
    check_same(resolved, expected)
    assert resolved.at[0, "reasons"] == ["name_mismatch", "missing_id"]
    assert resolved.at[1, "reasons"] == ["missing_id", "gender_mismatch", DUPLICATE]
    assert resolved.at[2, "reasons"] == ["missing_id", "missing_id", DUPLICATE]


def test_unknown_reason_codes_pass_through_for_the_result_checks():
    parts = band_results(8, n=20)
    parts["personal_id"] = pd.Series([f"0791900{i:05d}" for i in range(20)], dtype="str")
    parts.at[3, "reasons"] = ["typo"]
    resolved = matching.resolve(parts)
    assert resolved.at[3, "reasons"] == ["typo"]
    check_same(resolved, rule(parts))


def test_a_missing_reasons_list_is_named():
    parts = band_results(9, n=20)
    parts.at[5, "reasons"] = None
    with pytest.raises(PopsyncError, match="rows 5"):
        matching.resolve(parts)


def test_empty_results_resolve_to_empty():
    empty = band_results(1, n=8).iloc[:0]
    assert len(matching.resolve(empty)) == 0
