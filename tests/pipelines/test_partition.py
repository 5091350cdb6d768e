"""Birth-year bands: a band reads only the population it can link to, and never less."""

from __future__ import annotations

import pandas as pd

from pipelines import partition


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
        ]
    )
    population_path = tmp_path / "population.parquet"
    partition.write_population(population, population_path)
    registry = pd.DataFrame(
        [
            _participant("0100000001", "1990-01-01", None),
            _participant("0100000002", "1990-02-02", "001060000004"),
        ]
    )
    [spec] = partition.plan(registry, max_rows=10, folder=tmp_path / "bands")
    band, persons = partition.read_band(spec, population_path)
    assert len(band) == 2
    assert set(persons["personal_id"]) == {
        "001090000001", "001091000002", "001060000004", "001085000005"
    }
