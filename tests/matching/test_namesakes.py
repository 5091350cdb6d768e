"""At national density a common name is shared by thousands: a row without a personal ID whose
name, birth date and gender belong to one person only is still that person; two such people
are for a clerk to tell apart."""

import json

import numpy as np
import pandas as pd

import matching
from popsync.contracts import NEEDS_REVIEW, SYNCHRONIZED

COMMON = "Nguyễn Thị Hương"  # a fifth of this population's women of these birth years
TARGET = {"full_name": COMMON, "birth_date": "1990-04-15", "gender": "F"}


def _crowd(make_population, people: int = 100_000, twins: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    days = pd.Timestamp("1989-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, people), "D")
    family = np.array(["Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"])
    given = np.array(["An", "Bình", "Chi", "Dung", "Giang", "Hà", "Lan", "Mai", "Nam", "Oanh",
                      "Phúc", "Quân", "Sơn", "Tâm", "Uyên", "Vy", "Xuân", "Yến"])
    names = [f"{family[i % 9]} Văn {given[(i // 9) % 18]} {given[(i // 162) % 18]}"
             for i in range(people)]
    frame = pd.DataFrame({
        "personal_id": [f"0791{90 + i % 3:02d}{i:06d}" for i in range(people)],
        "full_name": names,
        "birth_date": days.strftime("%Y-%m-%d"),
        "gender": np.where(np.arange(people) % 2 == 0, "M", "F"),
    })
    common = frame.index[(frame["gender"] == "F")][: people // 5]
    frame.loc[common, "full_name"] = COMMON
    # the namesakes are born on any day but the target's
    frame.loc[common[frame.loc[common, "birth_date"] == TARGET["birth_date"]],
              "birth_date"] = "1990-04-16"
    for twin in range(twins):
        frame.loc[len(frame)] = {"personal_id": f"079190{900000 + twin:06d}", **TARGET}
    return make_population(frame.to_dict("records"))


def _registry(make_registry, population: pd.DataFrame) -> pd.DataFrame:
    # participants registered with their personal ID (what the engine learns m from), and the
    # row under test, registered without one
    known = population.sample(3000, random_state=1)
    rows = [{"full_name": p.full_name, "birth_date": p.birth_date, "gender": p.gender,
             "national_id": p.personal_id} for p in known.itertuples()]
    return make_registry([*rows, {**TARGET, "national_id": None}])


def test_the_only_person_with_that_name_date_and_gender_is_linked(make_registry,
                                                                    make_population):
    population = _crowd(make_population)
    registry = _registry(make_registry, population)
    row = matching.link(registry, population).results.iloc[-1]
    assert row["personal_id"] == "079190900000"
    assert row["status"] not in (NEEDS_REVIEW, SYNCHRONIZED)  # linked, to correct: no ID
    assert row["reasons"] == ["missing_id"] and row["match_probability"] >= 0.95


def test_two_people_with_that_name_date_and_gender_go_to_review(make_registry,
                                                                 make_population):
    population = _crowd(make_population, twins=2)
    registry = _registry(make_registry, population)
    row = matching.link(registry, population).results.iloc[-1]
    assert row["status"] == NEEDS_REVIEW and "ambiguous" in row["reasons"]
    # the reviewer sees both twins, equally likely, each with its weight field by field
    listed = json.loads(row["candidates"])
    assert {c["personal_id"] for c in listed[:2]} == {"079190900000", "079190900001"}
    assert 1 < len(listed) <= 5
    assert abs(listed[0]["probability"] - listed[1]["probability"]) < 1e-3
    assert listed[0]["probability"] == round(row["match_probability"], 4)
    assert sum(c["probability"] for c in listed) <= 1.0 + 1e-3
    assert all(c["full_name"] == COMMON and c["birth_date"] == TARGET["birth_date"]
               for c in listed[:2])
    assert listed[0]["explanation"]["birth_date"][0] == "exact"
    assert [c["weight"] for c in listed] == sorted((c["weight"] for c in listed), reverse=True)


def test_only_rows_in_review_list_candidates(make_registry, make_population):
    population = _crowd(make_population, people=20_000, twins=2)
    results = matching.link(_registry(make_registry, population), population).results
    review = results["status"] == NEEDS_REVIEW
    assert review.any() and results.loc[review, "candidates"].notna().all()
    assert results.loc[~review, "candidates"].isna().all()
