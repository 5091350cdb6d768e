"""Birth-year bands: a band reads only the population it can link to, and never less."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from pipelines import partition


def _chunks(frame: pd.DataFrame, folder, size: int = 2) -> list[str]:
    """``frame`` as the night's extract writes it: chunks with source rows and birth years."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(frame), size):
        paths.append(str(folder / f"part-{start:05d}.parquet"))
        pq.write_table(partition.chunk_table(frame.iloc[start:start + size], start + 1),
                       paths[-1])
    return paths


def _registry(spec: dict) -> pd.DataFrame:
    """A band's registry rows, read as a cohort of its own."""
    [cohort] = partition.cohorts([spec], {}, max_persons=1)
    return partition.cohort_registry(cohort)[spec["index"]].to_pandas()


def _person(personal_id: str, birth_date: str | None) -> dict:
    return {
        "personal_id": personal_id, "full_name": "Nguyễn Văn An", "birth_date": birth_date,
        "gender": "M", "old_id_number": None, "province_code": "01", "is_deceased": False,
        "death_date": None,
    }


def _participant(vss_code: str, birth_date: str, national_id: str | None) -> dict:
    return {
        "vss_code": vss_code, "full_name": "Nguyễn Văn An", "birth_date": birth_date,
        "gender": "M", "national_id": national_id, "province_code": "01",
        "scheme_si_compulsory": False, "scheme_si_voluntary": False, "scheme_hi": True,
        "scheme_ui": False,
    }


def test_a_band_reads_its_years_plus_margin_quoted_ids_and_persons_without_a_year(tmp_path):
    population = pd.DataFrame(
        [
            _person("001090000001", "1990-05-01"),  # in the band
            _person("001091000002", "1991-05-01"),  # within the one-year margin
            _person("001070000003", "1970-05-01"),  # far away, not quoted
            _person("001060000004", "1960-05-01"),  # far away but its ID is quoted
            _person("001085000005", None),  # no readable year: could be anyone's match
            # quoted, far away, and its birth date disagrees with the year its ID encodes
            _person("001080000006", "1950-05-01"),
            {**_person("001040000007", "1940-05-01"), "old_id_number": "123456789"},
            _person("001090000008", "1962-05-01"),  # ID says 1990, born far away: not quoted
        ]
    )
    persons_chunks = _chunks(population, tmp_path / "persons")
    registry = pd.DataFrame(
        [
            _participant("0100000001", "1990-01-01", None),
            _participant("0100000002", "1990-02-02", "001060000004"),
            _participant("0100000003", "1990-03-03", "001080000006"),
            _participant("0100000004", "1990-04-04", "123456789"),  # an old ID number
        ]
    )
    registry_chunks = _chunks(registry, tmp_path / "registry")
    with duckdb.connect() as sql:
        [spec] = partition.plan(sql, registry_chunks, max_rows=10)
        partition.quoted_persons(sql, [spec], registry_chunks, persons_chunks,
                                 tmp_path / "quoted")
    [cohort] = partition.cohorts([spec], {}, max_persons=10)
    persons, reads = partition.read_cohort(cohort, persons_chunks, tmp_path / "quoted")
    persons = persons.iloc[reads[spec["index"]]]
    assert len(_registry(spec)) == 4
    assert set(persons["personal_id"]) == {
        "001090000001", "001091000002", "001060000004", "001085000005", "001080000006",
        "001040000007",
    }
    assert persons["personal_id"].is_unique


def test_birth_year_reads_full_and_partial_dates_and_nothing_else():
    dates = pd.Series(
        ["1990-05-01", "1985-07", "1970", "31/12/1990", "abcd", None, "1800-01-01", "2026"],
        dtype="string",
    )
    assert partition.birth_year(dates).to_pylist() == [1990, 1985, 1970, None, None, None, None,
                                                       2026]


def test_plan_cuts_bands_by_birth_year_with_unreadable_years_last(tmp_path):
    years = [1990, 1950, None, 1970, 1960, 1980, None, 2000]
    registry = pd.DataFrame(
        [
            _participant(f"01000000{i:02d}", f"{y}-01-01" if y else "unknown", None)
            for i, y in enumerate(years)
        ]
    )
    registry_chunks = _chunks(registry, tmp_path / "registry", size=3)
    with duckdb.connect() as sql:
        specs = partition.plan(sql, registry_chunks, max_rows=3)
    assert [(s["rows"], s["year_min"], s["year_max"]) for s in specs] == [
        (3, 1950, 1970), (3, 1980, 2000), (2, None, None)
    ]
    bands = [_registry(s) for s in specs]
    # the bands hold their rows in birth-year order, with the contract's columns
    assert [b["birth_date"].tolist() for b in bands[:2]] == [
        ["1950-01-01", "1960-01-01", "1970-01-01"], ["1980-01-01", "1990-01-01", "2000-01-01"]]
    assert list(bands[0].columns) == list(registry.columns)
    assert set(bands[2]["birth_date"]) == {"unknown"}
    # every registry row in exactly one band
    every = pd.concat(bands)
    assert sorted(every["vss_code"]) == sorted(registry["vss_code"])


def test_a_row_without_a_readable_birth_date_is_banded_by_the_year_its_id_encodes(tmp_path):
    population = pd.DataFrame([
        _person("001090000001", "1990-05-01"),  # born in the year the ID says
        _person("001070000003", "1970-05-01"),
        _person("001050000009", None),
    ])
    persons_chunks = _chunks(population, tmp_path / "persons")
    registry = pd.DataFrame([
        _participant("0100000001", "unknown", "001190000001"),  # ID says: 1990, female
        _participant("0100000002", "unknown", None),  # neither: only year-less persons
    ])
    registry_chunks = _chunks(registry, tmp_path / "registry")
    with duckdb.connect() as sql:
        specs = partition.plan(sql, registry_chunks, max_rows=1)
        partition.quoted_persons(sql, specs, registry_chunks, persons_chunks,
                                 tmp_path / "quoted")
    assert [(s["rows"], s["year_min"], s["year_max"]) for s in specs] == [
        (1, 1990, 1990), (1, None, None)]
    cohorts = partition.cohorts(specs, {}, max_persons=10)
    assert len(cohorts) == 2  # rows without a year are a cohort of their own
    slices = []
    for cohort in cohorts:
        persons, reads = partition.read_cohort(cohort, persons_chunks, tmp_path / "quoted")
        slices += [persons.iloc[reads[band["index"]]] for band in cohort["bands"]]
    assert sorted(slices[0]["personal_id"]) == ["001050000009", "001090000001"]
    assert slices[1]["personal_id"].tolist() == ["001050000009"]


def _band(index: int, year_min: int | None, year_max: int | None) -> dict:
    return {"index": index, "rows": 10, "max_rows": 10, "chunks": [],
            "year_min": year_min, "year_max": year_max}


def test_cohorts_group_bands_of_two_years_while_their_population_fits():
    bands = [_band(0, 1930, 1960), _band(1, 1980, 1980), _band(2, 1980, 1981),
             _band(3, 1981, 1981), _band(4, 1982, 1982), _band(5, 1983, 1983),
             _band(6, None, None), _band(7, None, None)]
    persons = {1979: 10, 1980: 10, 1981: 10, 1982: 10, 1983: 500, 1984: 10, None: 5}
    groups = [[b["index"] for b in c["bands"]] for c in partition.cohorts(bands, persons, 100)]
    # 1980-1981 share a slice of 45 persons; 1982 would make it three years; 1983's slice
    # (1982-1984 and the yearless: 525 persons) is over the cap, so it stays alone; rows
    # without a year are never grouped
    assert groups == [[0], [1, 2, 3], [4], [5], [6], [7]]
    # with a cap no slice fits, bands share only the slice one of them reads alone: 1980 and
    # 1981 join the band across them (it reads 1979-1982)
    groups = [[b["index"] for b in c["bands"]] for c in partition.cohorts(bands, persons, 1)]
    assert groups == [[0], [1, 2, 3], [4], [5], [6], [7]]
    assert len(partition.cohorts([bands[1], bands[3]], persons, 1)) == 2
    assert len(partition.cohorts(bands, persons, 0)) == len(bands)  # 0: no cohorts


def test_a_band_reads_the_same_persons_in_a_cohort_as_alone(tmp_path):
    # two bands of 1990 and one of 1991, each quoting someone born far away; the 1990 bands
    # quote the same person, and band 2 quotes someone within band 0's years
    population = pd.DataFrame([
        _person("001089000001", "1989-05-01"),
        _person("001090000002", "1990-05-01"),
        _person("001092000003", "1992-05-01"),
        _person("001060000004", "1960-05-01"),
        _person("001050000005", "1950-05-01"),
        _person("001070000006", None),
        _person("001088000007", "1988-05-01"),
    ])
    persons_chunks = _chunks(population, tmp_path / "persons")
    registry = pd.DataFrame([
        _participant("0100000001", "1990-01-01", "001060000004"),
        _participant("0100000002", "1990-02-02", "001060000004"),
        _participant("0100000003", "1991-03-03", "001088000007"),
        _participant("0100000004", "1991-04-04", "001050000005"),
    ])
    registry_chunks = _chunks(registry, tmp_path / "registry")
    with duckdb.connect() as sql:
        specs = partition.plan(sql, registry_chunks, max_rows=1)
        partition.quoted_persons(sql, specs, registry_chunks, persons_chunks,
                                 tmp_path / "quoted")
    [shared] = partition.cohorts(specs, {}, max_persons=100)
    persons, reads = partition.read_cohort(shared, persons_chunks, tmp_path / "quoted")
    assert persons["personal_id"].is_unique  # a person quoted by two bands is read once
    for spec in specs:
        [alone] = partition.cohorts([spec], {}, max_persons=100)
        own, own_reads = partition.read_cohort(alone, persons_chunks, tmp_path / "quoted")
        assert own_reads[spec["index"]].tolist() == list(range(len(own)))
        pd.testing.assert_frame_equal(
            persons.iloc[reads[spec["index"]]].reset_index(drop=True), own)
    assert len(reads[specs[0]["index"]]) < len(persons)


def test_error_estimates_add_the_probabilities_up_per_office_and_nation():
    """fastLink-style estimates: a link of probability p is false with 1 - p; a row not
    linked is missed with the sum of its candidates' probabilities (its best's without)."""
    import json

    import pandas as pd

    from pipelines import metrics

    one = pd.DataFrame({
        "office_code": ["79", "79", "01", "01", "01"],
        "status": ["synchronized", "needs_correction", "synchronized", "needs_review",
                   "unmatched"],
        "match_probability": [1.0, 0.9, 0.8, 0.5, 0.1],
        "candidates": [None, None, None, json.dumps([{"probability": 0.5},
                                                     {"probability": 0.4}]), None],
    })
    two = pd.DataFrame({"office_code": ["79"], "status": ["unmatched"],
                        "match_probability": [float("nan")], "candidates": [None]})
    rates = metrics.error_rates([metrics.expected_errors(one), metrics.expected_errors(two)])
    assert rates["provinces"]["79"] == {
        "links": 2, "expected_false": 0.1, "expected_missed": 0.0,
        "false_link_rate": 0.05, "missed_link_rate": 0.0}
    assert rates["provinces"]["01"]["expected_missed"] == 1.0  # 0.5 + 0.4, and 0.1
    nation = rates["nation"]
    assert (nation["links"], nation["expected_false"]) == (3, 0.3)
    assert nation["false_link_rate"] == 0.1
    assert nation["missed_link_rate"] == round(1.0 / (2.7 + 1.0), 6)
