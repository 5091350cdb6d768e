"""The night's breakdowns (age band, gender) and coverage add up against the generated nation:
its registry, population and truth file, counted here independently of the night's code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import read_table

from popsync import store
from popsync.reference import to_34

RUN_DATE, RUN_YEAR = "2026-11-20", 2026
BANDS = [(5, "0-5"), (17, "6-17"), (39, "18-39"), (59, "40-59"), (200, "60+")]


def band_of(birth_date: pd.Series) -> pd.Series:
    age = RUN_YEAR - birth_date.str.slice(0, 4).astype(int)
    return pd.Series([next(name for upper, name in BANDS if a <= upper) for a in age],
                     index=birth_date.index)


@pytest.fixture(scope="module")
def nation(nation_dir, published):
    registry = pd.read_parquet(nation_dir / "registry.parquet")
    population = pd.read_parquet(nation_dir / "population.parquet")
    truth = pd.read_parquet(nation_dir / "truth.parquet")
    results = pd.read_parquet(published / store.publication_path(RUN_DATE) / "results.parquet",
                              columns=["vss_code", "status", "personal_id", "office_code"])
    return registry, population, truth, results


def test_breakdowns_add_up_to_the_registry_by_gender_and_age(nation, published):
    registry, _, _, results = nation
    breakdowns = read_table(published, store.breakdowns)
    rows = registry.merge(results, on="vss_code")
    assert len(rows) == len(registry)
    rows["band"] = band_of(rows["birth_date"])  # the generator writes full years here
    for scheme in ("63", "34"):
        unit = rows["office_code"] if scheme == "63" else rows["office_code"].map(to_34)
        mine = breakdowns[(breakdowns.scheme == scheme) & (breakdowns.line == "all")]
        for dimension, column in (("gender", "gender"), ("age_band", "band")):
            expected = rows.assign(unit=unit).groupby(["unit", column]).agg(
                participants=("vss_code", "size"),
                synchronized=("status", lambda s: int((s == "synchronized").sum())))
            got = mine[mine.dimension == dimension].set_index(["province_code", "value"])[
                ["participants", "synchronized"]]
            got.index.names = expected.index.names
            pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(),
                                          check_dtype=False)
    # the health line counts only the rows holding it
    hi = breakdowns[(breakdowns.scheme == "63") & (breakdowns.line == "hi")
                    & (breakdowns.dimension == "gender")]
    assert hi["participants"].sum() == registry["scheme_hi"].sum()
    assert (hi["synchronized"] / hi["participants"]).round(9).equals(hi["sync_rate"].round(9))


def test_coverage_counts_residents_and_links_against_the_truth(nation, published):
    registry, population, truth, results = nation
    coverage = read_table(published, store.coverage)
    living = population[~population["is_deceased"]].assign(
        band=lambda p: band_of(p["birth_date"]))
    linked = results[results.status.isin(["synchronized", "needs_correction"])
                     & results.personal_id.notna()].merge(
        registry[["vss_code", "scheme_hi"]], on="vss_code")
    true_links = truth.dropna(subset=["personal_id"]).merge(
        registry[["vss_code", "scheme_hi"]], on="vss_code")
    both = results.merge(truth, on="vss_code", suffixes=("", "_true"))
    wrong_rows = int((both["personal_id"].fillna("") != both["personal_id_true"].fillna("")).sum())
    got = coverage[(coverage.scheme == "63") & (coverage.line == "hi")].set_index(
        ["province_code", "age_band"])
    # residents: the living population by permanent residence and age band, exactly
    residents = living.groupby(["province_code", "band"]).size()
    totals = living.groupby("province_code").size()
    assert got.xs("all", level="age_band")["residents"].sort_index().tolist() == \
        totals.sort_index().tolist()
    banded = got.drop(index="all", level="age_band")["residents"]
    banded.index.names = residents.index.names
    pd.testing.assert_series_equal(banded.sort_index(), residents.sort_index(),
                                   check_names=False, check_dtype=False)
    # covered: living residents the night linked to a health registration, exactly; against
    # the truth, off by no more than the rows the night linked differently from the truth
    covered = living.personal_id.isin(linked.loc[linked.scheme_hi, "personal_id"])
    truly = living.personal_id.isin(true_links.loc[true_links.scheme_hi, "personal_id"])
    by_province = living.assign(c=covered).groupby("province_code")["c"].sum()
    all_rows = got.xs("all", level="age_band")
    assert all_rows["covered"].sort_index().tolist() == by_province.sort_index().tolist()
    assert abs(int(all_rows["covered"].sum()) - int(truly.sum())) <= wrong_rows
    assert 0.8 < all_rows["covered"].sum() / all_rows["residents"].sum() < 1.0
    # ranked by coverage rate, 1 = best; the 34 scheme adds up the 63
    ranked = all_rows.sort_values("rank")
    assert ranked["coverage_rate"].is_monotonic_decreasing and ranked["rank"].iloc[0] == 1
    unit = coverage[(coverage.scheme == "34") & (coverage.line == "hi")
                    & (coverage.age_band == "all")]
    assert unit["residents"].sum() == len(living) and unit["covered"].sum() == covered.sum()


def test_uninsured_list_holds_exactly_the_provinces_living_residents_without_health(
        nation, published):
    registry, population, _, results = nation
    linked = results[results.status.isin(["synchronized", "needs_correction"])].merge(
        registry[["vss_code", "scheme_hi"]], on="vss_code")
    insured = set(linked.loc[linked.scheme_hi, "personal_id"])
    folder = published / store.publication_path(RUN_DATE)
    for scheme, code in (("63", "79"), ("63", "01"), ("34", "79")):
        provinces = {code} if scheme == "63" else {"74", "77", "79"}
        expected = population[population.province_code.isin(provinces)
                              & ~population.is_deceased
                              & ~population.personal_id.isin(insured)]
        listed = pd.read_csv(folder / store.uninsured_list_path(scheme, code, "csv"),
                             dtype=str, keep_default_na=False)
        assert sorted(listed["Số định danh cá nhân"]) == sorted(expected["personal_id"])
        bands = band_of(listed["Ngày sinh"])
        first_other = int(np.argmax((bands != "0-5").to_numpy())) if len(bands) else 0
        assert (bands.iloc[:first_other] == "0-5").all()  # children under 6 first,
        assert ((listed["Trẻ em dưới 6 tuổi (NSNN đóng)"] == "Có") == (bands == "0-5")).all()
        assert (bands.iloc[first_other:] != "0-5").all()  # flagged, and only they


def test_uninsured_list_goes_by_age_band_then_ward_when_the_population_has_wards(tmp_path):
    from pipeline_helpers import run

    from popsync.synthetic import generate_nation, write_nation

    nation = tmp_path / "nation"
    write_nation(generate_nation(600, seed=4), nation, force=True)
    population = pd.read_parquet(nation / "population.parquet")
    wards = [f"{i % 3:05d}" for i in range(len(population))]
    population.assign(ward_code=wards, address=[f"số {i}" for i in range(len(population))]
                      ).to_parquet(nation / "population.parquet", index=False)
    out = tmp_path / "out"
    assert run(out, nation / "registry.parquet", nation / "population.parquet", RUN_DATE) == 0
    folder = out / store.publication_path(RUN_DATE)
    listed = pd.concat(
        pd.read_csv(folder / store.uninsured_list_path("34", unit, "csv"), dtype=str,
                    keep_default_na=False)
        for unit in ("01", "79", "38"))
    assert len(listed) and set(listed["Mã xã/phường"]) <= {"00000", "00001", "00002"}
    assert listed["Địa chỉ"].str.startswith("số ").all()
    for _, rows in listed.groupby("Mã tỉnh", sort=False):
        band = band_of(rows["Ngày sinh"]).map({b: i for i, (_, b) in enumerate(BANDS)})
        keys = list(zip(band, rows["Mã xã/phường"], strict=True))
        assert keys == sorted(keys)  # by age band (under 6 first), then ward
