"""The reference: the same generated nation linked by Splink 5 on DuckDB (run in .venv-splink).

    .venv-splink/bin/python bench/splink_reference.py bench/data/n100000_s1_default

Splink gets the same information as the engine: folded full name, family and given name, birth
date (and year), gender, personal ID / old ID number, province; name, given-name, birth-date,
gender, ID and province comparisons with term frequencies on the names; blocking on the ID, old
ID, name + birth year, birth date + given name and full name. Its parameters are trained as
Splink's documentation recommends (u by random sampling, m by EM on two blocking rules); each
registry row keeps its best pair, and the reported figures are those of the best of three
probability thresholds, so the reference is given every advantage. Prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
import unicodedata
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_matching import evaluate  # noqa: E402

THRESHOLDS = (0.5, 0.9, 0.99)


def fold(text: str | None) -> str | None:
    if text is None or text != text:
        return None
    text = unicodedata.normalize("NFD", text.lower().replace("ð", "đ").replace("Ð", "đ"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("đ", "d")
    return " ".join(text.split()) or None


def prepared(frame: pd.DataFrame, id_column: str, old_id: pd.Series, key: str) -> pd.DataFrame:
    names = frame["full_name"].map(fold)
    parts = names.str.split(" ")
    birth = frame["birth_date"].astype("string")
    return pd.DataFrame({
        "unique_id": frame[key].astype(str),
        "full_name": names,
        "family_name": parts.str[0],
        "given_name": parts.str[-1],
        "birth_date": birth,
        "birth_year": birth.str.slice(0, 4),
        "gender": frame["gender"],
        "id_number": frame[id_column].where(frame[id_column].str.len() == 12),
        "old_id": old_id,
        "province_code": frame["province_code"],
    })


def link(registry: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    left = prepared(registry, "national_id",
                    registry["national_id"].where(registry["national_id"].str.len() == 9),
                    "vss_code")
    right = prepared(population, "personal_id", population["old_id_number"], "personal_id")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("full_name", jaro_winkler_thresholds=[0.94, 0.88]).configure(
                term_frequency_adjustments=True),
            cl.NameComparison("given_name", jaro_winkler_thresholds=[0.9, 0.8]).configure(
                term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("birth_date", [1, 2]),
            cl.ExactMatch("birth_year"),
            cl.ExactMatch("gender"),
            cl.DamerauLevenshteinAtThresholds("id_number", [1]),
            cl.ExactMatch("old_id"),
            cl.ExactMatch("province_code"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("id_number"),
            block_on("old_id"),
            block_on("given_name", "family_name", "birth_year"),
            block_on("birth_date", "given_name"),
            block_on("full_name"),
        ],
        retain_matching_columns=False,
    )
    db = DuckDBAPI()
    linker = Linker([db.register(left, dataset_display_name="registry"),
                     db.register(right, dataset_display_name="population")], settings,
                    log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number", "birth_date")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("id_number"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    predictions = linker.inference.predict(threshold_match_probability=min(THRESHOLDS))
    pairs = predictions.as_pandas_dataframe()
    # Splink names the two sides by source dataset; keep registry -> population orientation
    left_is_registry = pairs["source_dataset_l"] == "registry"
    best = pd.DataFrame({
        "vss_code": pairs["unique_id_l"].where(left_is_registry, pairs["unique_id_r"]),
        "personal_id": pairs["unique_id_r"].where(left_is_registry, pairs["unique_id_l"]),
        "probability": pairs["match_probability"],
    }).sort_values("probability", ascending=False).drop_duplicates("vss_code")
    return best


def main() -> int:
    folder = Path(sys.argv[1])
    registry = pd.read_parquet(folder / "registry.parquet")
    population = pd.read_parquet(folder / "population.parquet")
    truth = pd.read_parquet(folder / "truth.parquet")
    start = time.perf_counter()
    best = link(registry, population)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcomes = []
    for threshold in THRESHOLDS:
        chosen = best[best["probability"] >= threshold]
        results = registry[["vss_code"]].merge(chosen, on="vss_code", how="left")
        results["status"] = results["personal_id"].notna().map(
            {True: "needs_correction", False: "unmatched"})
        outcomes.append(dict(evaluate(results, truth), threshold=threshold))
    figures = max(outcomes, key=lambda o: o["f1"])
    print(json.dumps({"engine": "splink", "registry_rows": len(registry),
                      "population_rows": len(population), "wall_s": wall, "peak_mib": peak,
                      **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
