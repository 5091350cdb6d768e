"""The synthetic nation generator: contracts, Vietnam-like shape, identifiers, injected errors."""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest

from popsync.contracts import (
    POPULATION_REQUIRED,
    REGISTRY_OPTIONAL,
    REGISTRY_REQUIRED,
    TRUTH_COLUMNS,
)
from popsync.reference import PROVINCES_63, personal_id_consistent
from popsync.synthetic import ERROR_PROFILES, ERROR_TAGS, generate_nation

PEOPLE = 40_000


@pytest.fixture(scope="module")
def nation():
    return generate_nation(PEOPLE, seed=11)


@pytest.fixture(scope="module")
def dirty():
    return generate_nation(PEOPLE, seed=12, profile="dirty")


def _joined(nation) -> pd.DataFrame:
    """Registry rows beside their truth and the true person's population record."""
    rows = nation.registry.merge(nation.truth, on="vss_code", validate="one_to_one")
    return rows.merge(nation.population, on="personal_id", how="left", suffixes=("", "_true"),
                      validate="many_to_one")


def _tagged(rows: pd.DataFrame, tag: str) -> pd.Series:
    return rows["error_tags"].str.split(",").apply(lambda tags: tag in tags)


def test_contract_columns_and_types(nation):
    assert tuple(nation.population.columns) == POPULATION_REQUIRED
    assert tuple(nation.registry.columns) == (*REGISTRY_REQUIRED, *REGISTRY_OPTIONAL)
    assert tuple(nation.truth.columns) == TRUTH_COLUMNS
    for frame in (nation.population, nation.registry, nation.truth):
        for column in frame.columns:
            if column.startswith("scheme_") or column == "is_deceased":
                assert frame[column].dtype == bool, column
            else:
                assert pd.api.types.is_string_dtype(frame[column].dtype), column
    assert len(nation.population) == PEOPLE
    assert set(nation.population["gender"]) == {"M", "F"}
    assert set(nation.registry["gender"]) == {"M", "F"}
    assert nation.population["birth_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert nation.registry["birth_date"].str.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?").all()
    assert (nation.population["death_date"].notna() == nation.population["is_deceased"]).all()


def test_all_63_provinces_occur_everywhere(nation):
    population, registry = nation.population, nation.registry
    assert set(population["province_code"]) == set(PROVINCES_63)
    assert set(population["personal_id"].str[1:3]) == set(PROVINCES_63)
    assert set(registry["province_code"]) == set(PROVINCES_63)


def test_personal_ids_unique_and_decode_to_gender_and_birth_year(nation):
    population = nation.population
    ids = population["personal_id"]
    assert ids.str.fullmatch(r"0\d{11}").all()
    assert ids.is_unique
    year = population["birth_date"].str[:4].astype(int)
    century_digit = 2 * (year // 100 - 19) + (population["gender"] == "F").astype(int)
    assert (ids.str[3].astype(int) == century_digit).all()
    assert (ids.str[4:6].astype(int) == year % 100).all()
    # The reference module's decoder agrees on a sample.
    sample = population.sample(2000, random_state=0)
    assert all(personal_id_consistent(pid, gender, int(date[:4])) for pid, gender, date in
               zip(sample["personal_id"], sample["gender"], sample["birth_date"], strict=True))


def test_old_ids_only_for_older_people(nation):
    population = nation.population
    has_old = population["old_id_number"].notna()
    assert population.loc[has_old, "old_id_number"].str.fullmatch(r"\d{9}").all()
    assert population.loc[has_old, "old_id_number"].is_unique
    born = population["birth_date"].str[:4].astype(int)
    assert not has_old[born > 2007].any()
    assert has_old[born <= 2000].mean() > 0.8


def test_vss_codes_and_health_cards(nation):
    registry = nation.registry
    assert registry["vss_code"].is_unique
    assert registry["vss_code"].str.fullmatch(r"\d{10}").all()
    assert (registry["vss_code"].str[:2] == registry["province_code"]).all()
    assert (registry["hi_card_number"].notna() == registry["scheme_hi"]).all()
    cards = registry.loc[registry["scheme_hi"]]
    assert cards["hi_card_number"].str.fullmatch(r"[A-Z]{2}[1-5]\d{2}\d{10}").all()
    assert (cards["hi_card_number"].str[-10:] == cards["vss_code"]).all()


def test_truth_one_row_per_registry_row(nation):
    assert (nation.truth["vss_code"] == nation.registry["vss_code"]).all()
    rows = _joined(nation)
    outsiders = _tagged(rows, "not_in_population")
    assert rows.loc[outsiders, "personal_id"].isna().all()
    assert rows.loc[~outsiders, "personal_id"].isin(set(nation.population["personal_id"])).all()
    # Foreigners' (or unknown people's) IDs are never a population person's.
    assert not rows.loc[outsiders, "national_id"].dropna().isin(
        set(nation.population["personal_id"])).any()


def test_health_coverage_is_uneven_like_vss_reports_it():
    """Near-complete under 6 and for pensioners; provinces drawing migrants lag (Bình Dương
    ~85 %, Hà Tĩnh ~94 % in VSS's figures)."""
    nation = generate_nation(60_000, seed=11)
    rows = _joined(nation)
    insured = set(rows.loc[rows["scheme_hi"] & rows["personal_id"].notna(), "personal_id"])
    living = nation.population.loc[~nation.population["is_deceased"]]
    covered = living["personal_id"].isin(insured)
    age = 2026 - living["birth_date"].str.slice(0, 4).astype(int)
    assert covered[age < 6].mean() > 0.97 and covered[age >= 60].mean() > 0.95
    assert covered[(age >= 18) & (age < 60)].mean() < 0.92
    by_province = covered.groupby(living["province_code"]).mean()
    assert by_province["74"] < 0.89 < 0.92 < by_province["42"]
    assert by_province.idxmin() in {"74", "79", "75", "27"}  # where the migrants go


def test_insurance_lines_have_realistic_shares(nation):
    population, rows = nation.population, _joined(nation)
    living = population.loc[~population["is_deceased"], "personal_id"]
    registered = rows.loc[rows["personal_id"].notna() & ~_tagged(rows, "deceased")]
    assert registered["personal_id"].nunique() / len(living) > 0.9
    people_with_hi = registered.loc[registered["scheme_hi"], "personal_id"].nunique()
    assert people_with_hi / len(living) == pytest.approx(0.92, abs=0.02)
    people_compulsory = registered.loc[registered["scheme_si_compulsory"], "personal_id"].nunique()
    assert 0.12 < people_compulsory / len(living) < 0.24
    registry = nation.registry
    assert not (registry["scheme_ui"] & ~registry["scheme_si_compulsory"]).any()
    assert not (registry["scheme_si_voluntary"] & registry["scheme_si_compulsory"]).any()
    assert registry["scheme_si_voluntary"].any()
    assert registry["scheme_ui"].sum() > 0.7 * registry["scheme_si_compulsory"].sum()
    # The dead stay registered only where the profile says so.
    dead = set(population.loc[population["is_deceased"], "personal_id"])
    assert (rows["personal_id"].isin(dead) == _tagged(rows, "deceased")).all()


def test_migration_toward_industrial_provinces(nation):
    rows = _joined(nation)
    with_id = rows.loc[rows["personal_id"].notna()]
    born_elsewhere = with_id["personal_id"].str[1:3] != with_id["province_code"]
    binh_duong = with_id["province_code"] == "74"
    assert born_elsewhere[binh_duong].mean() > 0.5
    assert born_elsewhere[with_id["province_code"] == "79"].mean() > 0.3
    assert born_elsewhere.mean() < 0.3
    population = nation.population
    assert (population["personal_id"].str[1:3] != population["province_code"]).mean() > 0.05


def test_names_look_vietnamese(nation):
    population = nation.population
    parts = population["full_name"].str.split(" ")
    family = parts.str[0]
    assert (family == "Nguyễn").mean() == pytest.approx(0.38, abs=0.03)
    top14 = family.value_counts(normalize=True).head(14).sum()
    assert 0.85 < top14 < 0.95
    assert {"Huỳnh", "Võ", "Hoàng", "Vũ"} <= set(family)
    male, female = population["gender"] == "M", population["gender"] == "F"
    assert (parts[male].str[1] == "Văn").mean() > 0.15
    assert (parts[female].str[1] == "Thị").mean() > 0.2
    assert not (parts[male].str[1] == "Thị").any()
    assert parts.str.len().between(2, 5).all()
    assert (parts.str.len() == 3).mean() > 0.6
    assert population["full_name"].map(
        lambda name: unicodedata.is_normalized("NFC", name)).all()
    # Southern-born Hoàng are mostly spelled Huỳnh.
    southern = population["personal_id"].str[1:3].map(
        lambda code: PROVINCES_63[code].region == "south")
    south_family = family[southern]
    assert (south_family == "Huỳnh").sum() > (south_family == "Hoàng").sum()


def test_age_pyramid_and_deaths(nation):
    population = nation.population
    age = 2025 - population["birth_date"].str[:4].astype(int)
    assert (age < 15).mean() == pytest.approx(0.24, abs=0.03)
    assert (age >= 65).mean() == pytest.approx(0.09, abs=0.03)
    assert population["is_deceased"].mean() == pytest.approx(0.018, abs=0.008)
    dead = population.loc[population["is_deceased"]]
    assert (dead["death_date"] >= dead["birth_date"]).all()
    assert (dead["death_date"] <= "2025-07-01").all()


@pytest.mark.parametrize("profile", ["default", "dirty"])
def test_every_error_occurs_at_its_configured_rate(profile, nation, dirty):
    generated = nation if profile == "default" else dirty
    rows = len(generated.truth)
    tags = generated.truth["error_tags"].str.split(",").explode()
    counts = tags.value_counts()
    for tag in ERROR_TAGS:
        rate = ERROR_PROFILES[profile][tag]
        expected, sigma = rows * rate, math.sqrt(rows * rate * (1 - rate))
        assert abs(counts.get(tag, 0) - expected) <= 5 * sigma + 1, (tag, counts.get(tag, 0),
                                                                     expected)
    assert set(tags) - {""} == set(ERROR_TAGS)
    clean_share = (generated.truth["error_tags"] == "").mean()
    if profile == "default":
        assert 0.84 <= clean_share <= 0.90
    else:
        several = generated.truth["error_tags"].str.count(",") >= 1
        assert several.mean() > 0.02
        assert clean_share < 0.7


def test_profiles_name_every_error_once():
    from popsync.synthetic.profiles import FIELD_ERROR_GROUPS, ROW_KINDS

    drawn = [tag for group in FIELD_ERROR_GROUPS for tag in group] + list(ROW_KINDS)
    assert sorted(drawn) == sorted(ERROR_TAGS) and len(set(drawn)) == len(drawn)
    for rates in ERROR_PROFILES.values():
        assert set(rates) == set(ERROR_TAGS)
        assert all(0 <= rate < 0.1 for rate in rates.values())
    default = ERROR_PROFILES["default"]
    assert all(0.003 <= rate <= 0.02 for rate in default.values())


def test_clean_profile_has_no_errors():
    clean = generate_nation(20_000, seed=3, profile="clean")
    assert (clean.truth["error_tags"] == "").all()
    rows = _joined(clean)
    assert (rows["national_id"] == rows["personal_id"]).all()
    for column in ("full_name", "birth_date", "gender"):
        assert (rows[column] == rows[f"{column}_true"]).all(), column


def _strip(name: str) -> str:
    text = unicodedata.normalize("NFD", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text.replace("Đ", "D").replace("đ", "d")


def _only(rows, tag):
    """Rows carrying exactly this one error (plus the harmless row-kind tags)."""
    kinds = {"duplicate", "deceased"}
    return rows.loc[rows["error_tags"].str.split(",").map(
        lambda tags: tag in tags and set(tags) - kinds == {tag})]


def test_each_error_does_what_its_tag_says(dirty):
    rows = _joined(dirty)
    clean = rows.loc[rows["error_tags"].isin(["", "duplicate", "deceased"])]
    assert (clean["national_id"] == clean["personal_id"]).all()
    for column in ("full_name", "birth_date", "gender"):
        assert (clean[column] == clean[f"{column}_true"]).all(), column

    def check(tag, predicate):
        selected = _only(rows, tag)
        assert len(selected) > 20, tag
        assert selected.apply(predicate, axis=1).all(), tag

    check("missing_id", lambda r: pd.isna(r["national_id"]))
    check("old_id", lambda r: r["national_id"] == r["old_id_number"])
    check("id_typo", lambda r: sum(a != b for a, b in zip(r["national_id"], r["personal_id"],
                                                          strict=True)) == 1)
    check("id_transposed", lambda r: _is_adjacent_swap(r["national_id"], r["personal_id"]))
    check("no_diacritics", lambda r: r["full_name"] == _strip(r["full_name_true"])
          and r["full_name"].isascii())
    check("nfd", lambda r: r["full_name"] != r["full_name_true"]
          and unicodedata.normalize("NFC", r["full_name"]) == r["full_name_true"])
    check("upper_case", lambda r: r["full_name"] == r["full_name_true"].upper())
    check("old_tone_style", lambda r: r["full_name"] != r["full_name_true"]
          and _strip(r["full_name"]) == _strip(r["full_name_true"])
          and re.search("o[àáảãạèéẻẽẹ]( |$)|u[ỳýỷỹỵ]( |$)", r["full_name"]) is not None)
    check("name_typo", lambda r: len(r["full_name"]) == len(r["full_name_true"])
          and sum(a != b for a, b in zip(r["full_name"], r["full_name_true"], strict=True)) == 1)
    check("dropped_middle", lambda r: r["full_name"].split()[0] == r["full_name_true"].split()[0]
          and len(r["full_name"].split()) < len(r["full_name_true"].split())
          and r["full_name_true"].endswith(r["full_name"].split(" ", 1)[1]))
    check("swapped_name_order", lambda r: r["full_name"].split()[-1]
          == r["full_name_true"].split()[0]
          and sorted(r["full_name"].split()) == sorted(r["full_name_true"].split()))
    check("birth_year_only", lambda r: r["birth_date"] == r["birth_date_true"][:4])
    check("birth_month_year", lambda r: r["birth_date"] == r["birth_date_true"][:7])
    check("day_month_swapped", lambda r: r["birth_date"] == "-".join(
        [r["birth_date_true"][:4], r["birth_date_true"][8:], r["birth_date_true"][5:7]]))
    check("birth_year_off", lambda r: abs(int(r["birth_date"][:4])
                                          - int(r["birth_date_true"][:4])) == 1)
    check("wrong_gender", lambda r: r["gender"] != r["gender_true"])
    duplicated = rows.loc[_tagged(rows, "duplicate"), "personal_id"]
    assert (rows["personal_id"].value_counts()[duplicated] >= 2).all()


def _is_adjacent_swap(written: str, true: str) -> bool:
    differ = [i for i, (a, b) in enumerate(zip(written, true, strict=True)) if a != b]
    return (len(differ) == 2 and differ[1] == differ[0] + 1
            and written[differ[0]] == true[differ[1]] and written[differ[1]] == true[differ[0]])


def test_same_seed_same_nation_other_seed_other_nation():
    first, second = generate_nation(5000, seed=5), generate_nation(5000, seed=5)
    for name in ("population", "registry", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    other = generate_nation(5000, seed=6)
    assert not first.population["personal_id"].equals(other.population["personal_id"])


def test_chunks_keep_identifiers_unique(monkeypatch):
    from popsync.synthetic import nation as nation_module

    monkeypatch.setattr(nation_module, "CHUNK_PEOPLE", 3000)  # many chunks in a small nation
    chunked = generate_nation(10_000, seed=9)
    assert chunked.population["personal_id"].is_unique
    assert chunked.population["old_id_number"].dropna().is_unique
    assert chunked.registry["vss_code"].is_unique
    assert len(chunked.population) == 10_000
    assert np.all(chunked.truth["vss_code"].to_numpy() == chunked.registry["vss_code"].to_numpy())


@pytest.mark.parametrize("people", [1, 2, 10, 100])
@pytest.mark.parametrize("profile", ["default", "dirty", "clean"])
def test_tiny_nations(people, profile):
    tiny = generate_nation(people, seed=3, profile=profile)
    assert len(tiny.population) == people
    assert len(tiny.registry) == len(tiny.truth)
    assert tuple(tiny.registry.columns) == (*REGISTRY_REQUIRED, *REGISTRY_OPTIONAL)


def test_employers_wards_and_addresses(nation):
    """Every participant has a ward of its office's province, an address in it and a unit:
    compulsory participants an employer of that province (many small, a few big), everyone else
    their ward's collection agent."""
    from popsync.reference.provinces import wards
    from popsync.synthetic.employers import AGENT_PREFIX, EMPLOYER_PREFIX

    registry = nation.registry
    table = wards()
    ward_province = dict(zip(table.ward_code, table.province_code, strict=True))
    assert registry["ward_code"].map(ward_province).eq(registry["province_code"]).all()
    ward_name = dict(zip(table.ward_code, table.ward_name, strict=True))
    assert all(address.endswith(", " + ward_name[ward])
               for address, ward in zip(registry["address"], registry["ward_code"], strict=True))
    compulsory = registry["scheme_si_compulsory"]
    employer = registry.loc[compulsory, "employer_code"]
    assert employer.str.startswith(EMPLOYER_PREFIX).all()
    assert employer.str[2:4].eq(registry.loc[compulsory, "province_code"]).all()
    agent = registry.loc[~compulsory]
    assert agent["employer_code"].eq(AGENT_PREFIX + agent["ward_code"]).all()
    assert agent["employer_name"].eq("Đại lý thu " + agent["ward_code"].map(ward_name)).all()
    assert registry.groupby("employer_code")["employer_name"].nunique().eq(1).all()
    sizes = employer.value_counts()
    assert sizes.median() <= 8  # many small units...
    assert sizes.max() >= 30 * sizes.median()  # ...and a few big ones


def test_employer_sizes_reach_thousands_in_a_full_chunk():
    from popsync.synthetic.employers import MAX_EMPLOYEES, employer_sizes

    sizes = employer_sizes(np.random.default_rng(5), 100_000)
    assert sizes.sum() == 100_000 and sizes.min() >= 1 and sizes.max() <= MAX_EMPLOYEES
    assert np.median(sizes) <= 8 and sizes.max() >= 1_000
    assert 10 <= sizes.mean() <= 40
