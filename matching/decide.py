"""From scored pairs to the results table: best candidate per registry row, status, reasons,
suggested corrections, explanation; and the one-person-one-registration rule (``resolve``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.normalize import FULL, ID_INVALID, ID_MISSING, ID_OLD
from matching.tables import Table
from popsync.contracts import (
    NEEDS_CORRECTION,
    NEEDS_REVIEW,
    REASONS,
    RESULT_COLUMNS,
    SYNCHRONIZED,
    UNMATCHED,
)

DUPLICATE = "duplicate_registration"
LINKED = (SYNCHRONIZED, NEEDS_CORRECTION)


def best_candidates(r: np.ndarray, weight: np.ndarray, n_registry: int):
    """Per registry row: index of its best pair (-1 when none) and the runner-up's weight."""
    order = np.lexsort((-weight, r))
    r_sorted = r[order]
    first = np.ones(len(order), bool)
    first[1:] = r_sorted[1:] != r_sorted[:-1]
    best = np.full(n_registry, -1, np.int64)
    best[r_sorted[first]] = order[first]
    second_weight = np.full(n_registry, -np.inf)
    second = np.zeros(len(order), bool)
    second[1:] = first[:-1] & ~first[1:]
    second_weight[r_sorted[second]] = weight[order[second]]
    return best, second_weight


def probability(weight: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp2(-weight))


def _reason_lists(flags: dict[str, np.ndarray], n: int) -> list[list[str]]:
    """Python lists of reason codes per row, in the order of contracts.REASONS."""
    pattern = np.zeros(n, np.int64)
    for bit, reason in enumerate(REASONS):
        if reason in flags:
            pattern |= flags[reason].astype(np.int64) << bit
    unique, inverse = np.unique(pattern, return_inverse=True)
    lists = [[reason for bit, reason in enumerate(REASONS) if code >> bit & 1] for code in unique]
    return [list(lists[i]) for i in inverse]


def _explanations(levels: dict[str, tuple[str, ...]], codes: dict[str, np.ndarray],
                  contributions: dict[str, np.ndarray], prior: float) -> pa.Array:
    """Short JSON per pair: each comparison's level and its weight contribution in bits."""
    pieces = [pa.array(np.full(len(next(iter(codes.values()))), f'{{"prior":{prior:.2f}'))]
    for name, names in levels.items():
        level = pa.array(np.array(names, dtype=object)).take(pa.array(codes[name]))
        weight = pc.cast(pc.round(pa.array(contributions[name].astype(np.float64)), 2),
                         pa.string())
        pieces += [pa.scalar(f',"{name}":["'), level, pa.scalar('",'), weight, pa.scalar("]")]
    pieces.append(pa.scalar("}"))
    return pc.binary_join_element_wise(*pieces, "")


def assemble(
    registry_frame: pd.DataFrame,
    population_frame: pd.DataFrame,
    registry: Table,
    population: Table,
    pairs: dict,
    decision: dict,
    levels: dict[str, tuple[str, ...]],
    prior: float,
) -> pd.DataFrame:
    """The results table: one row per registry row, columns RESULT_COLUMNS."""
    n = len(registry)
    best, linked, review = decision["best"], decision["linked"], decision["review"]
    has = best >= 0
    shown = linked | review  # rows that name a person
    r = np.arange(n)
    b = np.where(has, best, 0)
    p = np.where(shown, pairs["p"][b], 0)
    codes = {name: np.where(shown, values[b], 0) for name, values in pairs["codes"].items()}
    level = {name: np.array(names)[codes[name]] for name, names in levels.items()}

    name_agrees = shown & (level["full_name"] == "exact")
    date_agrees = shown & (level["birth_date"] == "exact")
    gender_agrees = shown & (level["gender"] == "agree")
    id_agrees = shown & (level["national_id"] == "exact")
    deceased = shown & population.deceased[p]
    kind = registry.ids.kind
    partial = registry.dates.precision < FULL
    synchronized = linked & name_agrees & date_agrees & gender_agrees & id_agrees & ~deceased

    flags = {
        "missing_id": kind == ID_MISSING,
        "old_id_number": kind == ID_OLD,
        "id_invalid": kind == ID_INVALID,
        "id_not_found": (kind != ID_MISSING) & (kind != ID_OLD) & (kind != ID_INVALID)
        & ~id_agrees,
        "name_mismatch": (shown & ~name_agrees) | (~shown & registry.names.empty),
        "birth_date_partial": shown & ~date_agrees & partial
        & (level["birth_date"] == "partial_compatible"),
        "birth_date_mismatch": (shown & ~date_agrees
                                & (level["birth_date"] != "partial_compatible"))
        | (~shown & registry.dates.unparsable),
        "gender_mismatch": (shown & ~gender_agrees) | (~shown & registry.genders.unknown),
        "deceased": deceased,
        "ambiguous": review & decision["ambiguous"],
        "no_candidate": ~shown,
    }
    flags = {k: v & ~synchronized for k, v in flags.items()}
    status = np.select([synchronized, linked, review], [SYNCHRONIZED, NEEDS_CORRECTION,
                                                       NEEDS_REVIEW], UNMATCHED)

    weight = np.where(has, pairs["weight"][b], np.nan)
    person = population_frame["personal_id"].astype("string").to_numpy(dtype=object)
    pop_name = population_frame["full_name"].astype("string").to_numpy(dtype=object)
    pop_date = population_frame["birth_date"].astype("string").to_numpy(dtype=object)
    pop_gender = population_frame["gender"].astype("string").to_numpy(dtype=object)

    def suggestion(values: np.ndarray, agrees: np.ndarray) -> np.ndarray:
        out = np.full(n, None, dtype=object)
        show = shown & ~agrees
        out[show] = values[p[show]]
        return out

    def nullable(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="boolean").where(shown, pd.NA)

    explanation = np.full(n, None, dtype=object)
    if shown.any():
        rows = np.flatnonzero(shown)
        text = _explanations(
            levels,
            {k: v[rows] for k, v in codes.items()},
            {k: v[b[rows]] for k, v in pairs["contributions"].items()},
            prior,
        )
        explanation[rows] = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)

    results = pd.DataFrame({
        "vss_code": registry_frame["vss_code"].astype("string").to_numpy(dtype=object),
        "province_code": registry_frame["province_code"].astype("string").to_numpy(dtype=object),
        "status": status,
        "reasons": _reason_lists(flags, n),
        "personal_id": np.where(shown, person[p], None),
        "match_weight": weight,
        "match_probability": probability(weight),
        "name_agrees": nullable(name_agrees),
        "birth_date_agrees": nullable(date_agrees),
        "gender_agrees": nullable(gender_agrees),
        "id_agrees": nullable(id_agrees),
        "suggested_full_name": suggestion(pop_name, name_agrees),
        "suggested_birth_date": suggestion(pop_date, date_agrees),
        "suggested_gender": suggestion(pop_gender, gender_agrees),
        "suggested_national_id": suggestion(person, id_agrees),
        "explanation": explanation,
    }, index=r)
    return results[list(RESULT_COLUMNS)]


def resolve_duplicates(results: pd.DataFrame) -> pd.DataFrame:
    """One person, one registration: among linked rows of the same person the best-weighted
    keeps its status; the others become needs_correction with reason duplicate_registration.
    Works from the results alone, so it can be (re)applied after concatenating partitions."""
    results = results.reset_index(drop=True).copy()
    linked = results["status"].isin(LINKED).to_numpy() & results["personal_id"].notna().to_numpy()
    rows = np.flatnonzero(linked)
    if not len(rows):
        return results
    chosen = pd.DataFrame({
        "row": rows,
        "person": results["personal_id"].iloc[rows].astype(str).to_numpy(),
        "weight": results["match_weight"].iloc[rows].fillna(-np.inf).to_numpy(),
        "vss_code": results["vss_code"].iloc[rows].astype(str).to_numpy(),
    }).sort_values(["person", "weight", "vss_code"], ascending=[True, False, True])
    ordered = chosen["row"].to_numpy()
    person = chosen["person"].to_numpy()
    keeper = np.ones(len(ordered), bool)
    keeper[1:] = person[1:] != person[:-1]
    reasons = results["reasons"].tolist()
    status = results["status"].to_numpy(dtype=object).copy()
    for row in ordered[~keeper]:
        if DUPLICATE not in reasons[row]:
            reasons[row] = sorted([*reasons[row], DUPLICATE], key=REASONS.index)
        status[row] = NEEDS_CORRECTION
    for row in ordered[keeper]:
        # a row flagged in an earlier pass that is now the best keeps no duplicate flag
        if DUPLICATE in reasons[row]:
            reasons[row] = [x for x in reasons[row] if x != DUPLICATE]
            if not reasons[row]:
                status[row] = SYNCHRONIZED
    results["reasons"] = reasons
    results["status"] = status
    return results
