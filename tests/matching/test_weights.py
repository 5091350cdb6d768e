"""Learned weights, term frequencies and the row-level decision."""

import json

import numpy as np
import pandas as pd

import matching
from matching.decide import decide
from matching.settings import Settings


def test_common_names_count_for_little_and_rare_ones_for_much(make_registry, make_population):
    common = [{"personal_id": f"0010900{i:05d}", "full_name": "Nguyễn Văn Anh",
               "birth_date": f"19{50 + i % 50}-0{i % 9 + 1}-1{i % 9}", "gender": "M"}
              for i in range(300)]
    others = [{"personal_id": f"0020900{i:05d}", "full_name": f"Trần Thị Hoa {i}",
               "birth_date": "1970-01-01", "gender": "F"} for i in range(2000)]
    rare = {"personal_id": "001090099999", "full_name": "Lã Thị Huyền Trang",
            "birth_date": "1991-03-04", "gender": "F"}
    population = make_population([*common, *others, rare])
    registry = make_registry([
        {"full_name": "Nguyễn Văn Anh", "birth_date": common[7]["birth_date"], "gender": "M",
         "national_id": None},
        {"full_name": "Lã Thị Huyền Trang", "birth_date": "1991-03-04", "gender": "F",
         "national_id": None},
    ])
    results = matching.reconcile(registry, population)
    weight = [json.loads(text)["name"][1] for text in results["explanation"]]
    assert results["personal_id"].tolist() == [common[7]["personal_id"], rare["personal_id"]]
    assert weight[1] > weight[0] + 5  # 1 in 2301 vs 300 in 2301: log2(300) ~ 8 bits apart


def test_m_and_u_are_learned_from_the_data(make_registry, make_population):
    people = [{"personal_id": f"0{i % 90 + 1:02d}0{i % 100:02d}{i:06d}",
               "full_name": f"Phạm Văn Người{i}", "birth_date": f"19{i % 100:02d}-05-06",
               "gender": "M"} for i in range(3000)]
    registry = make_registry([{"full_name": p["full_name"], "birth_date": p["birth_date"],
                               "gender": "M", "national_id": p["personal_id"]}
                              for p in people[:1000]])
    report = matching.link(registry, make_population(people)).report
    gender = report["parameters"]["comparisons"]["gender"]
    assert gender["agree"]["m"] > 0.9  # every ID-linked pair agrees
    assert 0.95 < gender["agree"]["u"] <= 1.0  # everyone is male: random pairs agree too
    assert gender["agree"]["weight"] < 0.1  # so gender tells nothing here
    assert report["parameters"]["comparisons"]["birth_date"]["exact"]["weight"] > 5


def test_decision_weighs_the_best_candidate_against_the_others():
    settings = Settings()
    r = np.array([0, 1, 1, 2])
    weight = np.array([20.0, 20.0, 20.0, -10.0])  # row 1 has two equally good candidates
    decision = decide(r, weight, 4, settings)
    assert decision.linked.tolist() == [True, False, False, False]
    assert decision.review.tolist() == [False, True, False, False]
    assert decision.ambiguous[1] and decision.probability[1] <= 0.5
    assert decision.best[3] == -1 and np.isnan(decision.probability[3])
    assert pd.isna(decision.probability[3])
