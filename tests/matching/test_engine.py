"""The engine's contract: one result per registry row, statuses, reasons, one-to-one, errors."""

import json
import unicodedata

import pandas as pd
import pytest

import matching
from popsync.contracts import REASONS, RESULT_COLUMNS, STATUSES
from popsync.errors import PopsyncError

POPULATION = [
    {"personal_id": "079190001234", "full_name": "Nguyễn Thị Thủy", "birth_date": "1990-04-15",
     "gender": "F", "old_id_number": "023456789", "province_code": "79"},
    {"personal_id": "001085004321", "full_name": "Trần Văn Hoà", "birth_date": "1985-11-02",
     "gender": "M", "province_code": "01"},
    {"personal_id": "074201009999", "full_name": "Đặng Minh Khoa", "birth_date": "2001-07-21",
     "gender": "M", "province_code": "74", "is_deceased": True},
    {"personal_id": "048178005555", "full_name": "Lê Thị Mỹ Duyên", "birth_date": "1978-12-30",
     "gender": "F", "province_code": "48"},
    {"personal_id": "036195006666", "full_name": "Phạm Quốc Bảo", "birth_date": "1995-03-09",
     "gender": "M", "province_code": "36"},
]


def nation(make_registry, make_population, registry_rows, extra_people=0):
    """A population of the five people above plus generated fillers, and a registry."""
    people = list(POPULATION)
    given = ["An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Hùng", "Khánh", "Long", "Minh",
             "Nam", "Phúc", "Quân", "Sơn", "Tâm", "Thắng", "Tuấn", "Việt", "Vinh", "Yên"]
    family = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Võ", "Đỗ", "Bùi", "Ngô"]
    for i in range(extra_people):
        year = 1950 + i % 60
        people.append({
            "personal_id": f"0{(i % 90) + 1:02d}0{year % 100:02d}{i:06d}",
            "full_name": f"{family[i % 10]} Văn {given[(i // 10) % 20]} {given[(i // 200) % 20]}",
            "birth_date": f"{year}-{i % 12 + 1:02d}-{i % 28 + 1:02d}", "gender": "M",
        })
    return make_registry(registry_rows), make_population(people)


def one(results, vss_code):
    return results.set_index("vss_code").loc[vss_code]


@pytest.fixture
def small(make_registry, make_population):
    rows = [
        # 0: everything agrees after normalization (upper case, old tone style, NFD)
        {"vss_code": "7900000001", "full_name": unicodedata.normalize("NFD", "NGUYỄN THỊ THUỶ"),
         "birth_date": "1990-04-15", "gender": "F", "national_id": "079190001234"},
        # 1: no diacritics, no ID: found by name and date, must be corrected
        {"vss_code": "0100000002", "full_name": "Tran Van Hoa", "birth_date": "1985-11-02",
         "gender": "M", "national_id": None, "province_code": "74"},
        # 2: deceased person still registered
        {"vss_code": "7400000003", "full_name": "Đặng Minh Khoa", "birth_date": "2001-07-21",
         "gender": "M", "national_id": "074201009999", "province_code": "74"},
        # 3: transposed ID digits, year-only birth date
        {"vss_code": "4800000004", "full_name": "Lê Thị Mỹ Duyên", "birth_date": "1978",
         "gender": "F", "national_id": "048178050555", "province_code": "48"},
        # 4: old ID number, day and month swapped into an impossible date (unparsable)
        {"vss_code": "7900000005", "full_name": "Nguyễn Thị Thủy", "birth_date": "1990-15-04",
         "gender": "F", "national_id": "023456789"},
        # 5: not in the population
        {"vss_code": "7900000006", "full_name": "John Smith", "birth_date": "1970-01-01",
         "gender": "M", "national_id": None},
        # 6: bad input: letters in the ID, unparsable date, unknown gender and province
        {"vss_code": "3600000007", "full_name": "Phạm Quốc Bảo", "birth_date": "09/03/1995",
         "gender": "X", "national_id": "03619500666A", "province_code": "00"},
        # 7: empty name, nothing else usable
        {"vss_code": "3600000008", "full_name": "", "birth_date": "", "gender": "",
         "national_id": "", "province_code": "36"},
    ]
    registry, population = nation(make_registry, make_population, rows, extra_people=3000)
    return registry, population, matching.link(registry, population)


def test_one_result_per_registry_row_with_contract_columns(small):
    registry, _, linked = small
    results = linked.results
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert len(results) == len(registry)
    assert list(results["vss_code"]) == list(registry["vss_code"])
    assert set(results["status"]) <= set(STATUSES)
    for status, reasons in zip(results["status"], results["reasons"], strict=True):
        assert isinstance(reasons, list) and set(reasons) <= set(REASONS)
        assert (reasons == []) == (status == "synchronized")
    assert results["match_probability"].dropna().between(0, 1).all()
    json.dumps(linked.report)  # plain JSON-able figures


def test_statuses_reasons_and_suggestions(small):
    results = small[2].results
    row = one(results, "7900000001")
    assert row["status"] == "synchronized" and row["personal_id"] == "079190001234"
    assert row["name_agrees"] and row["birth_date_agrees"] and row["id_agrees"]

    row = one(results, "0100000002")
    assert row["status"] == "needs_correction" and row["personal_id"] == "001085004321"
    assert set(row["reasons"]) == {"missing_id", "name_mismatch"}
    assert row["suggested_full_name"] == "Trần Văn Hoà"
    assert row["suggested_national_id"] == "001085004321"
    assert not row["name_agrees"] and row["birth_date_agrees"]

    row = one(results, "7400000003")
    assert row["status"] == "needs_correction" and row["reasons"] == ["deceased"]

    row = one(results, "4800000004")
    assert row["personal_id"] == "048178005555"
    assert {"id_not_found", "birth_date_partial"} <= set(row["reasons"])
    assert row["suggested_birth_date"] == "1978-12-30"

    explanation = json.loads(row["explanation"])
    assert explanation["national_id"][0] == "one_edit"
    assert explanation["birth_date"][0] == "partial_compatible"


def test_unmatched_and_bad_input_rows_are_kept_with_reasons(small):
    results = small[2].results
    row = one(results, "7900000006")
    assert row["status"] == "unmatched" and pd.isna(row["personal_id"])
    assert set(row["reasons"]) == {"missing_id", "no_candidate"}
    assert pd.isna(row["name_agrees"])

    row = one(results, "3600000007")
    assert "id_invalid" in row["reasons"]
    assert row["province_code"] == "00" and "province_unknown" in row["reasons"]
    assert not any("province_unknown" in reasons for reasons in
                   results.loc[results["vss_code"] != "3600000007", "reasons"])

    row = one(results, "3600000008")
    assert row["status"] == "unmatched"
    assert {"missing_id", "name_mismatch", "no_candidate"} <= set(row["reasons"])
    bad = small[2].report["bad_input"]
    assert bad["birth_date_unparsable"] == 2 and bad["gender_unknown"] == 1
    assert bad["province_unknown"] == 1 and bad["id_invalid"] == 1 and bad["name_empty"] == 1


def test_old_id_number_links_and_asks_for_the_personal_id(small):
    results = small[2].results
    row = one(results, "7900000005")
    # the same person as row 7900000001, which is better: this one is a duplicate registration
    assert row["personal_id"] == "079190001234"
    assert row["status"] == "needs_correction"
    assert {"old_id_number", "duplicate_registration"} <= set(row["reasons"])
    assert row["suggested_national_id"] == "079190001234"


def test_resolve_flags_duplicates_across_partitions(small):
    registry, population, _ = small
    first = matching.link(registry.iloc[:2], population).results
    second = matching.link(registry.iloc[2:], population).results
    assert "duplicate_registration" not in sum(second["reasons"], [])
    resolved = matching.resolve(pd.concat([first, second]))
    assert resolved.set_index("vss_code").loc["7900000005", "reasons"].count(
        "duplicate_registration") == 1
    assert resolved.set_index("vss_code").loc["7900000001", "status"] == "synchronized"
    # idempotent, and equal to reconcile on the whole registry
    again = matching.resolve(resolved)
    assert again["reasons"].tolist() == resolved["reasons"].tolist()
    whole = matching.reconcile(registry, population)
    assert whole["status"].tolist() == resolved["status"].tolist()


def test_ambiguous_candidates_go_to_review(make_registry, make_population):
    twins = [
        {"personal_id": "001090000001", "full_name": "Nguyễn Văn An", "birth_date": "1990-01-01",
         "gender": "M"},
        {"personal_id": "001090000002", "full_name": "Nguyễn Văn An", "birth_date": "1990-01-01",
         "gender": "M"},
    ]
    row = {"full_name": "Nguyễn Văn An", "birth_date": "1990-01-01", "gender": "M",
           "national_id": None}
    registry, filler = nation(make_registry, make_population, [row], extra_people=2000)
    population = pd.concat([make_population(twins), filler], ignore_index=True)
    row = matching.reconcile(registry, population).iloc[0]
    assert row["status"] == "needs_review" and "ambiguous" in row["reasons"]
    assert row["personal_id"] in {"001090000001", "001090000002"}


def test_duplicate_vss_codes_and_missing_columns_raise(make_registry, make_population):
    registry = make_registry([
        {"vss_code": "7900000001", "full_name": "A", "birth_date": "1990"},
        {"vss_code": "7900000001", "full_name": "B", "birth_date": "1991"},
    ])
    population = make_population(POPULATION)
    with pytest.raises(PopsyncError, match="7900000001"):
        matching.link(registry, population)
    with pytest.raises(PopsyncError, match="birth_date"):
        matching.link(registry.drop(columns=["birth_date"]).iloc[:1], population)
    with pytest.raises(PopsyncError, match="is_deceased"):
        matching.link(registry.iloc[:1], population.drop(columns=["is_deceased"]))


def test_settings_from_mapping_names_bad_keys():
    settings = matching.Settings.from_mapping({"max_block_size": 100, "link_probability": 0.99,
                                               "blocking_passes": ["name_year", "id_suffix"]})
    assert settings.max_block_size == 100 and settings.blocking_passes == ("name_year",
                                                                           "id_suffix")
    with pytest.raises(ValueError, match="no_such_knob"):
        matching.Settings.from_mapping({"no_such_knob": 1})
    with pytest.raises(ValueError, match="link_probability"):
        matching.Settings.from_mapping({"link_probability": 1.5})
    with pytest.raises(ValueError, match="blocking_passes"):
        matching.Settings.from_mapping({"blocking_passes": ["surname_only"]})
    with pytest.raises(ValueError, match="max_block_size"):
        matching.Settings.from_mapping({"max_block_size": "big"})



def test_empty_tables_give_contract_shaped_results(make_registry, make_population):
    registry = make_registry([{"full_name": "Lê Lan", "birth_date": "1990"}])
    population = make_population(POPULATION)
    empty = matching.reconcile(registry.iloc[:0], population)
    assert len(empty) == 0 and list(empty.columns) == list(RESULT_COLUMNS)
    alone = matching.reconcile(registry, population.iloc[:0])
    assert alone["status"].tolist() == ["unmatched"]
    assert alone["reasons"].tolist() == [["missing_id", "no_candidate"]]


def test_resolve_after_a_parquet_round_trip(small, tmp_path):
    results = small[2].results
    results.to_parquet(tmp_path / "part.parquet", index=False)
    resolved = matching.resolve(pd.read_parquet(tmp_path / "part.parquet"))
    assert all(isinstance(r, list) for r in resolved["reasons"])
    assert resolved["reasons"].tolist() == results["reasons"].tolist()
    assert resolved["status"].tolist() == results["status"].tolist()


def test_pure_and_deterministic(small):
    registry, population, first = small
    registry_before, population_before = registry.copy(), population.copy()
    second = matching.link(registry, population)
    pd.testing.assert_frame_equal(first.results, second.results)
    pd.testing.assert_frame_equal(registry, registry_before)
    pd.testing.assert_frame_equal(population, population_before)
