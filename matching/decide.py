"""From scored pairs to the results table: best candidate per registry row, status, reasons,
suggested corrections, explanation; and the one-person-one-registration rule (``resolve``)."""

from __future__ import annotations

import gc
import math
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.arrays import factorize
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


def decide(r: np.ndarray, weight: np.ndarray, n_registry: int, settings) -> dict:
    """Best candidate per registry row and whether it links, goes to review or neither.

    A row's probability weighs its best candidate against all its other candidates and against
    the person being absent from the population (the prior in the weights), so two equally good
    candidates can never both look certain."""
    best, second = best_candidates(r, weight, n_registry)
    has = best >= 0
    best_weight = np.full(n_registry, -np.inf)
    best_weight[has] = weight[best[has]]
    with np.errstate(over="ignore", invalid="ignore"):
        relative = np.exp2(weight - best_weight[r])
        others = np.bincount(r, weights=relative, minlength=n_registry)
        probability = np.where(has, 1.0 / (np.exp2(-best_weight) + others), np.nan)
        gap = np.where(np.isfinite(second), best_weight - second, np.inf)
    close = gap < settings.ambiguity_gap
    if settings.link_weight is not None:
        linked = best_weight >= settings.link_weight
    else:
        linked = probability >= settings.link_probability
    if settings.review_weight is not None:
        plausible = best_weight >= settings.review_weight
    else:
        plausible = probability >= settings.review_probability
    review_weight = settings.review_weight if settings.review_weight is not None else (
        math.log2(settings.review_probability / (1 - settings.review_probability)))
    linked = has & linked & ~close
    ambiguous = has & close & (second >= review_weight)
    review = has & ~linked & (plausible | ambiguous)
    thresholds = {
        "link": {"weight": settings.link_weight} if settings.link_weight is not None
        else {"probability": settings.link_probability},
        "review": {"weight": settings.review_weight} if settings.review_weight is not None
        else {"probability": settings.review_probability},
        "ambiguity_gap_bits": settings.ambiguity_gap,
        # without a competing candidate, probability p is reached at weight log2(p / (1 - p))
        "link_weight_alone": settings.link_weight if settings.link_weight is not None
        else round(math.log2(settings.link_probability / (1 - settings.link_probability)), 3),
        "review_weight_alone": round(review_weight, 3),
    }
    return {"best": best, "linked": linked, "review": review, "ambiguous": ambiguous,
            "probability": probability, "best_weight": best_weight, "thresholds": thresholds}


@contextmanager
def _no_gc():
    """Creating a million small lists triggers the cyclic GC hundreds of times for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reason_lists(flags: dict[str, np.ndarray], n: int) -> list[list[str]]:
    """Python lists of reason codes per row, in the order of contracts.REASONS."""
    pattern = np.zeros(n, np.int64)
    for bit, reason in enumerate(REASONS):
        if reason in flags:
            pattern |= flags[reason].astype(np.int64) << bit
    inverse, unique = factorize(pattern)
    lists = [[reason for bit, reason in enumerate(REASONS) if code >> bit & 1] for code in unique]
    with _no_gc():
        return [lists[i].copy() for i in inverse.tolist()]


def _strings(column: pd.Series) -> pa.Array:
    array = pa.array(column.astype("string"), from_pandas=True).cast(pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _pick(values: pa.Array, rows: np.ndarray, show: np.ndarray) -> pd.Series:
    """values[rows] where show, else null, as a pandas string column."""
    if not show.any():
        return pd.Series(pa.nulls(len(show), pa.string()), dtype="str")
    taken = values.take(pa.array(np.where(show, rows, 0)))
    return pd.Series(pc.if_else(pa.array(show), taken, pa.scalar(None, pa.string())),
                     dtype="str")


def _explanations(levels: dict[str, tuple[str, ...]], codes: dict[str, np.ndarray],
                  contributions: dict[str, np.ndarray], prior: float) -> pa.Array:
    """Short JSON per pair: each comparison's level and its weight contribution in bits."""
    n = len(next(iter(codes.values())))
    pieces = [pa.array(np.full(n, f'{{"prior":{prior:.2f}'))]
    for name, names in levels.items():
        code, weight = codes[name], contributions[name].astype(np.float64)
        level_weight = np.zeros(len(names))
        level_weight[code] = weight  # one weight per level unless term frequencies adjust it
        if name != "name" or np.allclose(level_weight[code], weight):
            table = [f',"{name}":["{level}",{w:.2f}]' for level, w in zip(names, level_weight,
                                                                          strict=True)]
            pieces.append(pa.array(table).take(pa.array(code)))
        else:
            level = pa.array(list(names)).take(pa.array(code))
            text = pc.cast(pc.round(pa.array(weight), 2), pa.string())
            pieces += [pa.scalar(f',"{name}":["'), level, pa.scalar('",'), text, pa.scalar("]")]
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
    scored: dict[str, tuple[str, ...]],
    prior: float,
) -> pd.DataFrame:
    """The results table: one row per registry row, columns RESULT_COLUMNS."""
    n = len(registry)
    best, linked, review = decision["best"], decision["linked"], decision["review"]
    has = best >= 0
    shown = linked | review  # rows that name a person
    b = np.where(has, best, 0)

    def at_best(values: np.ndarray, default) -> np.ndarray:
        if not len(values):  # no candidate pair at all
            return np.full(n, default, dtype=np.asarray(values).dtype)
        return np.where(has, values[b], default)

    p = np.where(shown, at_best(pairs["p"], 0), 0)
    codes = {name: np.where(shown, at_best(values, 0), 0)
             for name, values in pairs["codes"].items()}

    def level_is(comparison: str, level: str) -> np.ndarray:
        return codes[comparison] == levels[comparison].index(level)

    name_agrees = shown & level_is("full_name", "exact")
    date_agrees = shown & level_is("birth_date", "exact")
    gender_agrees = shown & level_is("gender", "agree")
    id_agrees = shown & level_is("national_id", "exact")
    date_partial = level_is("birth_date", "partial_compatible")
    deceased = shown & (population.deceased[p] if len(population) else False)
    kind = registry.ids.kind
    partial = (registry.dates.precision < FULL) & ~registry.dates.unparsable
    synchronized = linked & name_agrees & date_agrees & gender_agrees & id_agrees & ~deceased

    flags = {
        "missing_id": kind == ID_MISSING,
        "old_id_number": kind == ID_OLD,
        "id_invalid": kind == ID_INVALID,
        "id_not_found": (kind != ID_MISSING) & (kind != ID_OLD) & (kind != ID_INVALID)
        & ~id_agrees,
        "name_mismatch": (shown & ~name_agrees) | (~shown & registry.names.empty),
        "birth_date_partial": shown & ~date_agrees & partial
        & date_partial,
        "birth_date_mismatch": (shown & ~date_agrees
                                & ~(date_partial & partial))
        | (~shown & registry.dates.unparsable),
        "gender_mismatch": (shown & ~gender_agrees) | (~shown & registry.genders.unknown),
        "deceased": deceased,
        "ambiguous": review & decision["ambiguous"],
        "no_candidate": ~shown,
    }
    flags = {k: v & ~synchronized for k, v in flags.items()}

    weight = at_best(pairs["weight"].astype(np.float64), np.nan)
    person = _strings(population_frame["personal_id"])

    def suggestion(column: str, agrees: np.ndarray) -> pd.Series:
        values = person if column == "personal_id" else _strings(population_frame[column])
        return _pick(values, p, shown & ~agrees)

    def nullable(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="boolean").where(shown, pd.NA)

    explanation = pa.nulls(n, pa.string())
    if shown.any():
        rows = np.flatnonzero(shown)
        text = _explanations(
            scored,
            {k: v[rows] for k, v in codes.items()},
            {k: v[b[rows]] for k, v in pairs["contributions"].items()},
            prior,
        )
        explanation = _pick(text, np.cumsum(shown) - 1, shown)
    status_code = np.select([synchronized, linked, review], [0, 1, 2], 3)
    status_names = pa.array([SYNCHRONIZED, NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED])

    results = pd.DataFrame({
        "vss_code": registry_frame["vss_code"].astype("str").to_numpy(),
        "province_code": registry_frame["province_code"].astype("str").to_numpy(),
        "status": pd.Series(status_names.take(pa.array(status_code)), dtype="str"),
        "reasons": _reason_lists(flags, n),
        "personal_id": _pick(person, p, shown),
        "match_weight": weight,
        "match_probability": np.where(has, decision["probability"], np.nan),
        "name_agrees": nullable(name_agrees),
        "birth_date_agrees": nullable(date_agrees),
        "gender_agrees": nullable(gender_agrees),
        "id_agrees": nullable(id_agrees),
        "suggested_full_name": suggestion("full_name", name_agrees),
        "suggested_birth_date": suggestion("birth_date", date_agrees),
        "suggested_gender": suggestion("gender", gender_agrees),
        "suggested_national_id": suggestion("personal_id", id_agrees),
        "explanation": explanation if isinstance(explanation, pd.Series)
        else pd.Series(explanation, dtype="str"),
    })
    return results[list(RESULT_COLUMNS)]


def resolve_duplicates(results: pd.DataFrame) -> pd.DataFrame:
    """One person, one registration: among linked rows of the same person the best-weighted
    keeps its status; the others become needs_correction with reason duplicate_registration.
    Works from the results alone, so it can be (re)applied after concatenating partitions."""
    results = results.reset_index(drop=True)
    if len(results) and not all(isinstance(r, list) for r in results["reasons"].iloc[:100]):
        # read back from Parquet the lists are arrays: the contract says Python lists
        results = results.copy()
        with _no_gc():
            results["reasons"] = [list(r) for r in results["reasons"]]
    linked = results["status"].isin(LINKED).to_numpy() & results["personal_id"].notna().to_numpy()
    person = _strings(results["personal_id"].where(linked, None))
    person = pc.dictionary_encode(person).indices.to_numpy(zero_copy_only=False)
    person = np.where(linked, np.nan_to_num(person, nan=-1), -1).astype(np.int64)
    counts = np.bincount(person[person >= 0], minlength=1)
    shared = linked & (counts[np.maximum(person, 0)] > 1)
    flagged = np.fromiter((DUPLICATE in reasons for reasons in results["reasons"]), bool,
                          len(results))
    if not shared.any() and not flagged.any():
        return results
    results = results.copy()
    rows = np.flatnonzero(shared)
    chosen = pd.DataFrame({
        "row": rows,
        "person": person[rows],
        "weight": results["match_weight"].to_numpy()[rows],
        "vss_code": results["vss_code"].astype(str).to_numpy()[rows],
    }).sort_values(["person", "weight", "vss_code"], ascending=[True, False, True],
                   na_position="last")
    ordered = chosen["row"].to_numpy()
    group = chosen["person"].to_numpy()
    keeper = np.ones(len(ordered), bool)
    keeper[1:] = group[1:] != group[:-1]
    reasons = results["reasons"].tolist()
    status = results["status"].to_numpy(dtype=object).copy()
    for row in ordered[~keeper]:
        if DUPLICATE not in reasons[row]:
            reasons[row] = sorted([*reasons[row], DUPLICATE], key=REASONS.index)
        status[row] = NEEDS_CORRECTION
    # a row flagged in an earlier pass that is now its person's best keeps no duplicate flag
    keepers = np.zeros(len(results), bool)
    keepers[ordered[keeper]] = True
    for row in np.flatnonzero(flagged & linked & ~(shared & ~keepers)):
        reasons[row] = [x for x in reasons[row] if x != DUPLICATE]
        if not reasons[row]:
            status[row] = SYNCHRONIZED
    results["reasons"] = reasons
    results["status"] = pd.Series(status, dtype="str")
    return results
