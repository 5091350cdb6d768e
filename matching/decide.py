"""From scored pairs to the results table: best candidate per registry row, status, reasons,
suggested corrections, explanation; and the one-person-one-registration rule (``resolve``)."""

from __future__ import annotations

import functools
import gc
import json
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.arrays import factorize, first_rows, repeated
from matching.compare import Comparison
from matching.decisions import Outcome
from matching.normalize import FULL, ID_INVALID, ID_MISSING, ID_OLD
from matching.tables import InputError, Table, text_array
from popsync import reasons as reason_rules
from popsync.contracts import (
    CONFIRMED,
    NEEDS_CORRECTION,
    NEEDS_REVIEW,
    REASONS,
    RESULT_COLUMNS,
    SYNCHRONIZED,
    UNMATCHED,
)

DUPLICATE = "duplicate_registration"
DUPLICATE_BIT = 1 << REASONS.index(DUPLICATE)  # reasons travel as bit patterns, bit i = REASONS[i]
CLAIMED = "confirmed_person_claimed"
CLAIMED_BIT = 1 << REASONS.index(CLAIMED)
REASON_CODES = pa.array(REASONS)
LINKED = (SYNCHRONIZED, NEEDS_CORRECTION)


@dataclass
class ScoredPairs:
    """Candidate pairs and their scores, aligned: registry row ``r``, population row ``p``, the
    level code of every comparison, the match weight (prior included) and each weighed
    comparison's contribution to it."""

    r: np.ndarray
    p: np.ndarray
    codes: dict[str, np.ndarray]
    weight: np.ndarray
    contributions: dict[str, np.ndarray]


@dataclass
class Decision:
    """Per registry row: its best pair, and whether it links, goes to review or neither."""

    best: np.ndarray  # index of the row's best pair, -1 when it has none
    linked: np.ndarray
    review: np.ndarray
    ambiguous: np.ndarray  # the runner-up is close to the best and itself plausible
    probability: np.ndarray  # of the best pair (NaN when none)
    best_weight: np.ndarray  # -inf when none
    thresholds: dict  # the thresholds as applied, for the report


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


def decide(r: np.ndarray, weight: np.ndarray, n_registry: int, settings) -> Decision:
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
    return Decision(best, linked, review, ambiguous, probability, best_weight, thresholds)


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


def _reason_pattern(flags: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Reason flags as one bit pattern per row (bit i = contracts.REASONS[i])."""
    pattern = np.zeros(n, np.int64)
    for bit, reason in enumerate(REASONS):
        if reason in flags:
            pattern |= flags[reason].astype(np.int64) << bit
    return pattern


def _reason_lists(pattern: np.ndarray) -> np.ndarray:
    """Python lists of reason codes per row, in the order of contracts.REASONS, as an object
    array; built once per distinct pattern and copied, so no two rows share a list."""
    lists = np.empty(1 << len(REASONS), object)
    for code in np.flatnonzero(np.bincount(pattern, minlength=1)).tolist():
        lists[code] = [reason for bit, reason in enumerate(REASONS) if code >> bit & 1]
    with _no_gc():
        return np.fromiter(map(list.copy, lists[pattern]), object, len(pattern))


def _read_reasons(reasons: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reasons column (Python lists, arrays read back from Parquet, or an Arrow list column)
    as one Arrow pass: each row's bit pattern, whether it holds duplicate_registration, and
    whether its list is exactly the one its pattern gives back (known codes, each once, in
    REASONS order; the engine writes no other). Other rows are left as they are."""
    lists = pa.array(reasons, type=pa.list_(pa.string()), from_pandas=True)
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if lists.null_count:
        rows = np.flatnonzero(~np.array(lists.is_valid(), bool))[:5]
        raise InputError(
            f"results have no reasons list in {lists.null_count} row(s), e.g. rows "
            f"{', '.join(map(str, rows))}: each row needs one (empty when synchronized)"
        )
    n = len(lists)
    row = pc.list_parent_indices(lists).to_numpy()
    code = pc.index_in(pc.list_flatten(lists), value_set=REASON_CODES)
    known = code.is_valid().to_numpy(zero_copy_only=False)
    code = code.fill_null(0).to_numpy().astype(np.int64)
    pattern = np.bincount(row, weights=(1 << code) * known, minlength=n).astype(np.int64)
    duplicate = np.zeros(n, bool)
    duplicate[row[known & (code == REASONS.index(DUPLICATE))]] = True
    out_of_order = np.zeros(len(row), bool)
    out_of_order[1:] = (row[1:] == row[:-1]) & (code[1:] <= code[:-1])
    regular = np.array(lists.is_valid(), bool)
    regular[row[~known | out_of_order]] = False
    return pattern, duplicate, regular


def _one_registration(linked: np.ndarray, person: np.ndarray, weight: np.ndarray,
                      vss_code: pd.Series, flagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One person, one registration, on arrays: among linked rows of the same person (equal
    ``person`` codes) the best-weighted keeps its status, ties to the smaller vss_code.
    Returns the rows that become duplicates, and the rows ``flagged`` duplicate earlier that no
    longer are (now their person's best, or their person's only linked row)."""
    rows = np.flatnonzero(linked)
    rows = rows[repeated(person[rows])]
    chosen = pd.DataFrame({
        "row": rows,
        "person": person[rows],
        "weight": weight[rows],
        "vss_code": vss_code.iloc[rows].astype(str).to_numpy(),
    }).sort_values(["person", "weight", "vss_code"], ascending=[True, False, True],
                   na_position="last")
    ordered = chosen["row"].to_numpy()
    group = chosen["person"].to_numpy()
    keeper = np.ones(len(ordered), bool)
    keeper[1:] = group[1:] != group[:-1]
    duplicates = ordered[~keeper]
    kept = np.ones(len(linked), bool)
    kept[duplicates] = False
    return duplicates, np.flatnonzero(flagged & linked & kept)


def _person_codes(personal_id: pa.Array) -> np.ndarray:
    """Equal int64 codes for equal personal IDs: the number itself when every ID is 12 digits,
    as the engine writes them (a cast, where hashing a million strings takes a tenth of a
    second), else a code from a hash table."""
    if not len(personal_id):
        return np.zeros(0, np.int64)
    twelve_digits = pc.and_(pc.ascii_is_decimal(personal_id),
                            pc.equal(pc.binary_length(personal_id), 12))
    if pc.all(twelve_digits).as_py():
        return pc.cast(personal_id, pa.int64()).to_numpy()
    return pc.dictionary_encode(personal_id).indices.to_numpy().astype(np.int64)


def _pick(values: pa.Array | Callable[[pa.Array], pa.Array], rows: np.ndarray,
          show: np.ndarray) -> pd.Series:
    """values[rows] where show, else null, as a pandas string column (``values``: an array, or
    a function taking rows)."""
    if not show.any():
        return pd.Series(pa.nulls(len(show), pa.string()), dtype="str")
    take = values if callable(values) else values.take
    return pd.Series(take(pa.array(rows, mask=~show)), dtype="str")


def _explanations(scored: dict[str, Comparison], codes: dict[str, np.ndarray],
                  contributions: dict[str, np.ndarray], prior: float
                  ) -> tuple[pa.Array, np.ndarray]:
    """Short JSON per pair: each comparison's level and its weight contribution in bits.
    Returns the distinct texts and, per pair, which one is its: a few thousand texts serve a
    million pairs, so the strings are built once per text, not once per pair."""
    levels = {name: comparison.level_names for name, comparison in scored.items()}
    n = len(next(iter(codes.values())))
    tables, rounded = {}, {}
    key = np.zeros(n, np.int64)  # the levels of every comparison, and any per-pair weight
    for name, names in levels.items():
        code, weight = codes[name], contributions[name].astype(np.float64)
        level_weight = np.zeros(len(names))
        level_weight[code] = weight  # one weight per level unless term frequencies adjust it
        key = key * len(names) + code
        if name != "name" or np.allclose(level_weight[code], weight):
            tables[name] = [f',"{name}":["{level}",{w:.2f}]'
                            for level, w in zip(names, level_weight, strict=True)]
        else:
            rounded[name] = pc.round(pa.array(weight), 2)
            # the bits, not the value: -0.0 and 0.0 print differently
            bits = rounded[name].to_numpy(zero_copy_only=False).view(np.int64)
            which, distinct = factorize(bits)
            key = key * len(distinct) + which
    which, distinct = factorize(key)
    first = pa.array(first_rows(which, len(distinct)))
    pieces = [pa.array(np.full(len(distinct), f'{{"prior":{prior:.2f}'))]
    for name, names in levels.items():
        code = pa.array(codes[name]).take(first)
        if name in tables:
            pieces.append(pa.array(tables[name]).take(code))
        else:
            level = pa.array(list(names)).take(code)
            text = pc.cast(rounded[name].take(first), pa.string())
            pieces += [pa.scalar(f',"{name}":["'), level, pa.scalar('",'), text, pa.scalar("]")]
    pieces.append(pa.scalar("}"))
    return pc.binary_join_element_wise(*pieces, ""), which


CANDIDATES = 5  # the candidates a row in review lists for its reviewer


def top_pairs(r: np.ndarray, weight: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The pairs of the registry rows ``rows`` (a mask over the registry), at most ``k`` a row,
    best-weighted first: pair indices grouped by row."""
    selected = np.flatnonzero(rows[r]) if len(r) else np.zeros(0, np.int64)
    order = selected[np.lexsort((-weight[selected], r[selected]))]
    row = r[order]
    first = np.ones(len(order), bool)
    first[1:] = row[1:] != row[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    return order[np.arange(len(order)) - starts < k]


def _candidates(pairs: ScoredPairs, decision: Decision, rows: np.ndarray,
                population_text: Callable[[str, pa.Array], pa.Array],
                scored: dict[str, Comparison], prior: float) -> pd.Series:
    """Per registry row in ``rows``, its best candidates (up to CANDIDATES) as JSON: each
    person's personal ID, name, birth date and gender, the probability the row is that person
    (its weight against all the row's candidates and against absence, as ``decide`` does for
    the best), its weight and the comparison levels with their weights; null elsewhere."""
    column = np.full(len(rows), None, object)
    chosen = top_pairs(pairs.r, pairs.weight, rows, CANDIDATES)
    if not len(chosen):
        return pd.Series(pa.array(column, pa.string()), dtype="str")
    r, w = pairs.r[chosen], pairs.weight[chosen]
    # decide() gave the best 2**best / (1 + sum of 2**w over the row's candidates); another
    # candidate's share of the same sum is its odds against the best times that
    probability = np.exp2(w - decision.best_weight[r]) * decision.probability[r]
    texts, which = _explanations(scored, {k: v[chosen] for k, v in pairs.codes.items()},
                                 {k: v[chosen] for k, v in pairs.contributions.items()}, prior)
    explanation = np.asarray(texts.to_pylist(), object)[which]
    persons = pa.array(pairs.p[chosen])
    fields = {c: population_text(c, persons).to_pylist()
              for c in ("personal_id", "full_name", "birth_date", "gender")}
    listed: dict[int, list] = {}
    for i, row in enumerate(r.tolist()):
        listed.setdefault(row, []).append(
            f'{{"personal_id":{json.dumps(fields["personal_id"][i])},'
            f'"full_name":{json.dumps(fields["full_name"][i], ensure_ascii=False)},'
            f'"birth_date":{json.dumps(fields["birth_date"][i])},'
            f'"gender":{json.dumps(fields["gender"][i])},'
            f'"probability":{float(probability[i]):.4f},"weight":{float(w[i]):.2f},'
            f'"explanation":{explanation[i]}}}')
    column[np.fromiter(listed, np.int64, len(listed))] = [
        "[" + ",".join(items) + "]" for items in listed.values()]
    return pd.Series(pa.array(column, pa.string()), dtype="str")


def assemble(
    registry_frame: pd.DataFrame,
    population_text: Callable[[str, pa.Array], pa.Array],
    registry: Table,
    population: Table,
    pairs: ScoredPairs,
    decision: Decision,
    comparisons: dict[str, Comparison],
    prior: float,
    decided: Outcome,
) -> pd.DataFrame:
    """The results table: one row per registry row, columns RESULT_COLUMNS, with one person,
    one registration already applied within it (as ``resolve_duplicates`` would)."""
    n = len(registry)
    best, linked, review = decision.best, decision.linked, decision.review
    has = best >= 0
    shown = linked | review  # rows that name a person
    b = np.where(has, best, 0)

    def at_best(values: np.ndarray, default) -> np.ndarray:
        if not len(values):  # no candidate pair at all
            return np.full(n, default, dtype=np.asarray(values).dtype)
        return np.where(has, values[b], default)

    p = np.where(shown, at_best(pairs.p, 0), 0)
    codes = {name: np.where(shown, at_best(values, 0), 0)
             for name, values in pairs.codes.items()}

    def equal(comparison: str) -> np.ndarray:
        return shown & comparisons[comparison].holds(codes[comparison], "equal")

    kind = registry.ids.kind
    evidence = reason_rules.Evidence(
        shown=shown,
        review=review,
        ambiguous=decision.ambiguous,
        id_missing=kind == ID_MISSING,
        id_old=kind == ID_OLD,
        id_invalid=kind == ID_INVALID,
        id_equal=equal("national_id"),
        name_equal=equal("full_name"),
        birth_date_equal=equal("birth_date"),
        gender_equal=equal("gender"),
        birth_date_fits_partially=(registry.dates.precision < FULL) & ~registry.dates.unparsable
        & comparisons["birth_date"].is_level(codes["birth_date"], "partial_compatible"),
        name_empty=registry.names.empty,
        birth_date_unparsable=registry.dates.unparsable,
        gender_unknown=registry.genders.unknown,
        province_unknown=registry.province_unknown,
        deceased=shown & (population.deceased[p] if len(population) else False),
        decided_absent=decided.absent,
        confirmed_deceased=decided.confirmed_deceased,
        confirmed_claimed=decided.confirmed_claimed,
        decision_outdated=decided.outdated,
    )
    synchronized = (linked & evidence.name_equal & evidence.birth_date_equal
                    & evidence.gender_equal & evidence.id_equal & ~evidence.deceased)
    flags = {k: v & ~synchronized for k, v in reason_rules.flags(evidence).items()}

    weight = at_best(pairs.weight.astype(np.float64), np.nan)
    def suggestion(column: str, agrees: np.ndarray) -> pd.Series:
        return _pick(functools.partial(population_text, column), p, shown & ~agrees)

    def nullable(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="boolean").where(shown, pd.NA)

    scored = {name: c for name, c in comparisons.items() if c.scored}
    explanation, which = pa.nulls(0, pa.string()), np.zeros(n, np.int64)
    if shown.any():
        rows = np.flatnonzero(shown)
        explanation, which[rows] = _explanations(
            scored,
            {k: v[rows] for k, v in codes.items()},
            {k: v[b[rows]] for k, v in pairs.contributions.items()},
            prior,
        )
    # one person, one registration within this table (resolve_duplicates does it across tables)
    status_code = np.select([synchronized, linked, review], [0, 1, 2], 3)
    pattern = _reason_pattern(flags, n)
    vss_code = pd.Series(registry_frame["vss_code"].astype("str").array)
    duplicates, _ = _one_registration(linked, p, weight, vss_code, np.zeros(n, bool))
    pattern[duplicates] |= DUPLICATE_BIT
    status_code[duplicates] = 1
    status_names = pa.array([SYNCHRONIZED, NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED])

    results = pd.DataFrame({
        "vss_code": vss_code,
        "province_code": pd.Series(registry_frame["province_code"].astype("str").array),
        "status": pd.Series(status_names.take(pa.array(status_code)), dtype="str"),
        "reasons": _reason_lists(pattern),
        "personal_id": _pick(functools.partial(population_text, "personal_id"), p, shown),
        "match_weight": weight,
        "match_probability": np.where(has, decision.probability, np.nan),
        "name_agrees": nullable(evidence.name_equal),
        "birth_date_agrees": nullable(evidence.birth_date_equal),
        "gender_agrees": nullable(evidence.gender_equal),
        "id_agrees": nullable(evidence.id_equal),
        "suggested_full_name": suggestion("full_name", evidence.name_equal),
        "suggested_birth_date": suggestion("birth_date", evidence.birth_date_equal),
        "suggested_gender": suggestion("gender", evidence.gender_equal),
        "suggested_national_id": suggestion("personal_id", evidence.id_equal),
        "explanation": _pick(explanation, which, shown),
        "candidates": _candidates(pairs, decision, review & ~linked, population_text, scored,
                                  prior),
    })
    return results[list(RESULT_COLUMNS)]


def _contested(results: pd.DataFrame, linked: np.ndarray,
               decisions: pd.DataFrame | None) -> np.ndarray:
    """Rows linked to the person a reviewer confirmed for them while another linked row gives
    that person's personal ID exactly (``link`` sees this within one registry; results of
    several registries, e.g. the bands of a night, only show it together)."""
    contested = np.zeros(len(results), bool)
    if decisions is None or not len(decisions):
        return contested
    confirmed = decisions[decisions["decision"].astype("str") == CONFIRMED]
    pairs = pd.MultiIndex.from_arrays([results["vss_code"].astype("str"),
                                       results["personal_id"].astype("str")])
    is_confirmed = linked & pairs.isin(pd.MultiIndex.from_arrays(
        [confirmed["vss_code"].astype("str"), confirmed["personal_id"].astype("str")]))
    if not is_confirmed.any():
        return contested
    person = results["personal_id"].astype("str")
    exact = linked & results["id_agrees"].fillna(False).to_numpy(bool)
    claims = person.map(person[exact].value_counts()).fillna(0).to_numpy()
    return is_confirmed & (claims - exact > 0)  # a claim by another row than the confirmed one


def resolve_duplicates(results: pd.DataFrame,
                       decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """One person, one registration: among linked rows of the same person the best-weighted
    keeps its status; the others become needs_correction with reason duplicate_registration.
    A row linked by a reviewer's confirmation to a person another linked row gives the exact
    personal ID of goes back to review (``decisions``: as ``link`` takes them).
    Works from the results alone, so it can be (re)applied after concatenating partitions.
    ``reasons`` comes back as Python lists (the contract), whatever list type came in."""
    results = results.reset_index(drop=True)
    n = len(results)
    if not n:
        return results
    pattern, flagged, regular = _read_reasons(results["reasons"])
    status = text_array(results["status"])
    linked = (pc.is_in(status, value_set=pa.array(LINKED)).to_numpy(zero_copy_only=False)
              & results["personal_id"].notna().to_numpy())
    contested = _contested(results, linked, decisions)
    if contested.any():
        linked &= ~contested
        flagged &= ~contested
        pattern[contested] = (pattern[contested] & ~DUPLICATE_BIT) | CLAIMED_BIT
        status = pc.if_else(pa.array(contested), NEEDS_REVIEW, status)
    person = np.full(n, -1, np.int64)
    rows = np.flatnonzero(linked)
    person[rows] = _person_codes(text_array(results["personal_id"]).take(pa.array(rows)))
    duplicates, cleared = _one_registration(
        linked, person, results["match_weight"].to_numpy(), results["vss_code"], flagged)
    pattern[duplicates] |= DUPLICATE_BIT
    pattern[cleared] &= ~DUPLICATE_BIT
    emptied = np.zeros(n, bool)
    emptied[cleared] = pattern[cleared] == 0
    reasons = _reason_lists(pattern)
    # a list the engine did not write (unknown or repeated codes, other order) is kept as it
    # is, changed the same way, in Python: such rows are rare or absent
    irregular = np.flatnonzero(~regular)
    gained, lost = set(duplicates.tolist()), set(cleared.tolist())
    for row in irregular.tolist():
        reason_list = list(results["reasons"].iat[row])
        if contested[row]:
            reason_list = [x for x in reason_list if x != DUPLICATE] + [CLAIMED]
        if row in gained and DUPLICATE not in reason_list:
            reason_list = sorted([*reason_list, DUPLICATE], key=REASONS.index)
        if row in lost:
            reason_list = [x for x in reason_list if x != DUPLICATE]
            emptied[row] = not reason_list
        reasons[row] = reason_list
    if not len(duplicates) and not flagged.any():
        if contested.any():
            return results.assign(status=pd.Series(status, dtype="str"), reasons=reasons)
        return results.assign(reasons=reasons)
    becomes_duplicate = np.zeros(n, bool)
    becomes_duplicate[duplicates] = True
    status = pc.if_else(pa.array(becomes_duplicate), NEEDS_CORRECTION,
                        pc.if_else(pa.array(emptied), SYNCHRONIZED, status))
    return results.assign(status=pd.Series(status, dtype="str"), reasons=reasons)
