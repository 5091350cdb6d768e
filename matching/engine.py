"""The matching run: ID stage, learned weights, candidate search, decision, results."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from matching import decisions as reviewed
from matching.arrays import counts_per_row, sorted_distinct
from matching.blocking import PASS_SURVIVES, PassOutcome, candidate_pairs
from matching.compare import Comparison, compare, comparisons
from matching.decide import Decision, ScoredPairs, assemble, decide, resolve_duplicates
from matching.normalize import ID_INVALID, ID_MISSING, ID_OLD
from matching.population import Population
from matching.settings import Settings
from matching.tables import Table, prepare_registry
from matching.weights import (
    Parameters,
    estimate_m,
    estimate_u,
    level_shares,
    score,
    start_id_m,
    uniform_u,
)
from popsync.contracts import STATUSES

NON_ID_FIELDS = ("name", "birth_date", "gender", "province")


@dataclass
class LinkResult:
    """``results``: one row per registry row (contracts.RESULT_COLUMNS); ``report``: plain
    JSON-able figures of the run (pairs per pass, cuts, thresholds, m/u, counts per status)."""

    results: pd.DataFrame
    report: dict = field(default_factory=dict)


@dataclass
class IdStage:
    """Pairs joined on the personal ID or the old ID number, compared on every field; a pair
    is corroborated when its other fields add evidence (the ID looks right), and its row is then
    settled without candidate search."""

    r: np.ndarray
    p: np.ndarray
    codes: dict[str, np.ndarray]
    corroborated: np.ndarray
    confirmed: np.ndarray  # the pair is a reviewer's confirmation


@dataclass
class CandidateSearch:
    """The registry rows searched by blocking, and the pairs found (with the uncorroborated ID
    pairs), compared on every field."""

    rows: np.ndarray
    r: np.ndarray
    p: np.ndarray
    codes: dict[str, np.ndarray]
    outcomes: list[PassOutcome]


@dataclass
class Trace:
    """What a link went through, for its report."""

    registry: Table
    population: Table
    id_stage: IdStage
    search: CandidateSearch
    anchors: np.ndarray  # per scored pair: it taught the ID comparison's m
    parameters: Parameters
    decision: Decision
    present_share: float  # share of searched rows whose person is in the population
    decided: reviewed.Decisions
    outcome: reviewed.Outcome
    clock: dict[str, float]


def id_pairs(registry: Table, population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joined on the 12-digit personal ID, then on the old 9-digit ID number (only where
    the old number belongs to one person)."""
    twelve = np.flatnonzero(registry.ids.twelve_digits)
    at = population.person_of(registry.ids.number[twelve])
    r, p = [twelve[at >= 0]], [at[at >= 0]]
    holders = np.flatnonzero(population.table.old_id >= 0)
    single = holders[counts_per_row(population.table.old_id[holders]) == 1]
    old_rows = np.flatnonzero(registry.ids.kind == ID_OLD)
    at = pd.Index(population.table.old_id[single]).get_indexer(registry.ids.number[old_rows])
    r.append(old_rows[at >= 0])
    p.append(single[at[at >= 0]])
    return np.concatenate(r).astype(np.int64), np.concatenate(p).astype(np.int64)


def _take(codes: dict[str, np.ndarray], mask) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in codes.items()}


def _concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def link(registry: pd.DataFrame, population: pd.DataFrame | Population,
         settings: Settings | None = None, decisions: pd.DataFrame | None = None) -> LinkResult:
    """Link every registry row to at most one person of the population (see design.md).
    ``population``: a table, or one normalized once (:class:`Population`) to link several
    registries to it. ``decisions``: reviewers' decisions (contracts.DECISION_COLUMNS; those on
    other registries' rows are ignored): a confirmed pair links as if by exact personal ID, its
    fields still compared; a rejected pair never links; a row decided not in the population
    stays unmatched. A decision the data now contradicts sends its row to review, with a reason
    saying why."""
    settings = settings or Settings()
    clock = {"start": time.perf_counter()}
    if not isinstance(population, Population):
        population = Population.of(population)
    pop = population.table
    reg = prepare_registry(registry, pop)
    decided = reviewed.Decisions.of(decisions, registry["vss_code"], population)
    declared = comparisons(settings)
    scored = {name: c for name, c in declared.items() if c.scored}
    rng = np.random.default_rng(settings.seed)
    clock["normalized"] = time.perf_counter()

    # ID stage: exact joins and confirmed pairs, compared on every other field
    id_r, id_p, confirmed = _decided_id_pairs(reg, population, decided)
    id_codes = compare(reg, pop, id_r, id_p, settings)
    u = estimate_u(reg, pop, settings, rng) if len(reg) and len(pop) else uniform_u(settings)
    id_exact = declared["national_id"].is_level(id_codes["national_id"], "exact")
    m = estimate_m(_take(id_codes, id_exact), settings, NON_ID_FIELDS)
    m["national_id"] = start_id_m(settings)
    parameters = Parameters(scored, m, u, prior_weight=0.0,
                            tf_full_name=population.name_frequencies(),
                            namesakes=population.namesakes())
    id_weight, id_contributions = score(parameters, id_codes, pop, id_p)
    # the ID looks right when the other fields add evidence; otherwise search candidates too
    corroborated = (id_weight - id_contributions["national_id"]
                    >= settings.id_corroboration_weight) | confirmed
    id_stage = IdStage(id_r, id_p, id_codes, corroborated, confirmed)
    clock["id_stage"] = time.perf_counter()

    search = _search(reg, population, id_stage, settings, decided)
    clock["candidates"] = time.perf_counter()

    # m of the ID comparison: pairs whose name, birth date and gender agree (one per row)
    r_all = np.concatenate([id_r[corroborated], search.r])
    p_all = np.concatenate([id_p[corroborated], search.p])
    codes_all = _concat(_take(id_codes, corroborated), search.codes)
    anchors = _anchor_pairs(declared, codes_all, r_all)
    national_id = declared["national_id"]
    parameters.m["national_id"] = level_shares(
        codes_all["national_id"][anchors], national_id, settings.probability_floor,
        national_id.m_prior())

    # prior: a searched row's person is in the population with some share, and is then one of
    # len(pop) people. The share starts at the searched rows that found an unmistakable
    # candidate (a lower bound) and is refined as the mean posterior of being present.
    searched = np.zeros(len(reg), bool)
    searched[search.rows] = True
    anchored = np.zeros(len(reg), bool)
    anchored[r_all[anchors]] = True
    present = (anchored & searched).sum() / max(searched.sum(), 1)
    parameters.prior_weight = 0.0
    evidence, contributions = score(parameters, codes_all, pop, p_all)
    for _ in range(settings.prior_iterations):
        present = float(np.clip(present, 0.5, 0.999))
        prior = math.log2(present / ((1.0 - present) * max(len(pop), 1)))
        present, used = _mean_presence(r_all, evidence + prior, searched), present
    parameters.prior_weight = prior
    weight = evidence + prior
    decision = decide(r_all, weight, len(reg), settings)
    exact = declared["national_id"].is_level(id_codes["national_id"], "exact")
    claimed = reviewed.claimed_elsewhere(decided, id_r[exact], id_p[exact], len(pop))
    outcome = reviewed.apply(decided, decision, r_all, p_all, claimed, pop.deceased, len(reg))
    pairs = ScoredPairs(r_all, p_all, codes_all, weight, contributions)
    results = assemble(registry, population.text_at, reg, pop, pairs, decision, declared,
                       parameters.prior_weight, outcome)
    clock["decided"] = time.perf_counter()

    trace = Trace(reg, pop, id_stage, search, anchors, parameters, decision, used, decided,
                  outcome, clock)
    return LinkResult(results, _report(trace, results, settings))


def _decided_id_pairs(reg: Table, population: Population, decided: reviewed.Decisions
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ID stage's pairs: those joined on an ID, less the rejected ones and those of rows
    with a confirmed person, whose confirmed pair takes their place; and which are confirmed."""
    id_r, id_p = id_pairs(reg, population)
    keep = ~decided.confirmed_rows(len(reg))[id_r] & ~decided.rejected(id_r, id_p,
                                                                      len(population))
    present = decided.confirmed_p >= 0
    confirmed = np.concatenate([np.zeros(int(keep.sum()), bool), np.ones(present.sum(), bool)])
    return (np.concatenate([id_r[keep], decided.confirmed_r[present]]),
            np.concatenate([id_p[keep], decided.confirmed_p[present]]), confirmed)


def _search(reg: Table, population: Population, id_stage: IdStage, settings: Settings,
            decided: reviewed.Decisions) -> CandidateSearch:
    """Candidate search for every row the ID stage did not settle; the uncorroborated ID pair
    stays a candidate beside those found by blocking. Pairs a reviewer rejected, or decided a
    row not in the population against, are left out."""
    n = max(len(population), 1)
    settled = np.zeros(len(reg), bool)
    settled[id_stage.r[id_stage.corroborated]] = True
    rows = np.flatnonzero(~settled)
    cand_r, cand_p, outcomes = candidate_pairs(
        reg, rows, population, settings.blocking_passes, settings.max_block_size,
        settings.max_pairs_per_pass,
    )
    extra = ~id_stage.corroborated
    key = sorted_distinct(np.concatenate([cand_r * len(population) + cand_p,
                                          id_stage.r[extra] * len(population)
                                          + id_stage.p[extra]]))
    cand_r, cand_p = key // n, key % n
    kept = ~decided.absent_against(cand_r, cand_p, len(population))
    cand_r, cand_p = cand_r[kept], cand_p[kept]
    codes = compare(reg, population.table, cand_r, cand_p, settings)
    return CandidateSearch(rows, cand_r, cand_p, codes, outcomes)


def _histogram(weights: np.ndarray) -> dict[str, int]:
    """Rows per 4-bit band of their best candidate's weight: where the thresholds cut."""
    weights = weights[np.isfinite(weights)]
    if not len(weights):
        return {}
    bands = np.floor(np.clip(weights, -40, 60) / 4).astype(int) * 4
    values, counts = np.unique(bands, return_counts=True)
    return {f"[{v},{v + 4})": int(c) for v, c in zip(values, counts, strict=True)}


def _mean_presence(r: np.ndarray, weight: np.ndarray, searched: np.ndarray) -> float:
    """Mean over searched rows of P(the row's person is among its candidates)."""
    if not searched.any():
        return 1.0
    with np.errstate(over="ignore"):
        odds = np.bincount(r, weights=np.exp2(np.minimum(weight, 60)), minlength=len(searched))
    return float((odds / (1.0 + odds))[searched].mean())


def _anchor_pairs(declared: dict[str, Comparison], codes: dict[str, np.ndarray],
                  r: np.ndarray) -> np.ndarray:
    """Pairs at an ``anchors`` level of name, birth date and gender, one per registry row."""
    strong = (declared["full_name"].holds(codes["full_name"], "anchors")
              & declared["birth_date"].holds(codes["birth_date"], "anchors")
              & declared["gender"].holds(codes["gender"], "anchors"))
    strong_per_row = np.bincount(r[strong], minlength=int(r.max()) + 1 if len(r) else 0)
    return strong & (strong_per_row[r] == 1)


def _report(trace: Trace, results: pd.DataFrame, settings: Settings) -> dict:
    reg, pop, decision = trace.registry, trace.population, trace.decision
    id_stage, search = trace.id_stage, trace.search
    id_level = np.array(comparisons(settings)["national_id"].level_names)[
        id_stage.codes["national_id"]]
    counts = results["status"].value_counts()
    reasons = results["reasons"].explode().value_counts()
    times = list(trace.clock.items())
    return {
        "registry_rows": len(reg),
        "population_rows": len(pop),
        "status_counts": {s: int(counts.get(s, 0)) for s in STATUSES},
        "reason_counts": {str(k): int(v) for k, v in reasons.items()},
        "bad_input": {
            "id_missing": int((reg.ids.kind == ID_MISSING).sum()),
            "id_invalid": int((reg.ids.kind == ID_INVALID).sum()),
            "id_old_number": int((reg.ids.kind == ID_OLD).sum()),
            "birth_date_unparsable": int(reg.dates.unparsable.sum()),
            "name_empty": int(reg.names.empty.sum()),
            "gender_unknown": int(reg.genders.unknown.sum()),
            "province_unknown": int(reg.province_unknown.sum()),
        },
        "id_stage": {
            "pairs_by_id": int(len(id_level)),
            "pairs_by_old_id": int((id_level == "old_exact").sum()),
            "corroborated": int(id_stage.corroborated.sum()),
            "sent_to_candidate_search": int((~id_stage.corroborated).sum()),
        },
        "candidate_search": {
            "registry_rows": int(len(search.rows)),
            "distinct_pairs": int(len(search.r)),
            "passes": [dict(o.as_dict(), survives=PASS_SURVIVES[o.name])
                       for o in search.outcomes],
            "caps": {"max_block_size": settings.max_block_size,
                     "max_pairs_per_pass": settings.max_pairs_per_pass},
        },
        "id_m_anchor_pairs": int(trace.anchors.sum()),
        "decisions": {
            "confirmed": int(len(trace.decided.confirmed_r)),
            "rejected": int(len(trace.decided.rejected_r)),
            "not_in_population": int(len(trace.decided.absent_r)),
            "links_confirmed": int(trace.outcome.confirmed.sum()),
            "kept_unmatched": int(trace.outcome.absent.sum()),
            "contradicted": int((trace.outcome.confirmed_deceased
                                 | trace.outcome.confirmed_claimed
                                 | trace.outcome.outdated).sum()),
        },
        "thresholds": decision.thresholds,
        "best_weight_histogram": _histogram(decision.best_weight),
        "searched_rows_present_share": round(trace.present_share, 4),
        "parameters": trace.parameters.as_dict(),
        "seconds": {name: round(t - times[i - 1][1], 3)
                    for i, (name, t) in enumerate(times) if i},
        "settings": {k: (list(v) if isinstance(v, tuple) else v)
                     for k, v in asdict(settings).items()},
    }


def resolve(results: pd.DataFrame, settings: Settings | None = None) -> pd.DataFrame:
    """Re-apply one person = one registration over concatenated partition results."""
    del settings  # the rule has no tunables today; the parameter keeps the interface stable
    return resolve_duplicates(results)


def reconcile(registry: pd.DataFrame, population: pd.DataFrame,
              settings: Settings | None = None,
              decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """``resolve(link(...).results)``: the results table for one registry."""
    return resolve(link(registry, population, settings, decisions).results, settings)
