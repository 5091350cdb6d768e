"""The matching run: ID stage, learned weights, candidate search, decision, results."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from matching import decisions as reviewed
from matching.arrays import sorted_distinct
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
    labels: dict  # the engine's own decision on the reviewers' pairs
    clock: dict[str, float]


def id_pairs(registry: Table, population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joined on the 12-digit personal ID, then on the old 9-digit ID number (only where
    the old number belongs to one person)."""
    twelve = np.flatnonzero(registry.ids.twelve_digits)
    at = population.person_of(registry.ids.number[twelve])
    r, p = [twelve[at >= 0]], [at[at >= 0]]
    old_rows = np.flatnonzero(registry.ids.kind == ID_OLD)
    at = population.old_id_holder(registry.ids.number[old_rows])
    r.append(old_rows[at >= 0])
    p.append(at[at >= 0])
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

    # ID stage: exact joins, compared on every other field
    id_r, id_p = id_pairs(reg, population)
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
    corroborated = id_weight - id_contributions["national_id"] >= settings.id_corroboration_weight
    id_stage = IdStage(id_r, id_p, id_codes, corroborated)
    clock["id_stage"] = time.perf_counter()

    search = _search(reg, population, id_r[~corroborated], id_p[~corroborated],
                     np.flatnonzero(~_settled(len(reg), id_r, corroborated)), settings)
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
    pairs = ScoredPairs(r_all, p_all, codes_all, weight, contributions)
    # the engine's own decision; then the reviewers', on the pairs their decisions leave
    own = decide(r_all, weight, len(reg), settings)
    decision, outcome = own, reviewed.Outcome.nothing(len(reg))
    if decided.any():
        pairs = _decided_pairs(pairs, decided, reg, population, id_stage, parameters, settings)
        decision = decide(pairs.r, pairs.weight, len(reg), settings)
        outcome = reviewed.apply(decided, decision, pairs.r, pairs.p,
                                 _claimed(decided, id_stage, declared, len(reg), len(pop)),
                                 pop.deceased, len(reg))
    results = assemble(registry, population.text_at, reg, pop, pairs, decision, declared,
                       parameters.prior_weight, outcome)
    clock["decided"] = time.perf_counter()

    trace = Trace(reg, pop, id_stage, search, anchors, parameters, decision, used, decided,
                  outcome, reviewed.label_agreement(decided, own, r_all, p_all), clock)
    return LinkResult(results, _report(trace, results, settings))


def _settled(n_registry: int, id_r: np.ndarray, corroborated: np.ndarray) -> np.ndarray:
    """Rows the ID stage settled: one of their ID pairs is corroborated."""
    settled = np.zeros(n_registry, bool)
    settled[id_r[corroborated]] = True
    return settled


def _search(reg: Table, population: Population, id_r: np.ndarray, id_p: np.ndarray,
            rows: np.ndarray, settings: Settings) -> CandidateSearch:
    """Candidate search for registry ``rows``; the ID pairs given (the uncorroborated ones)
    stay candidates beside those found by blocking."""
    n = max(len(population), 1)
    cand_r, cand_p, outcomes = candidate_pairs(
        reg, rows, population, settings.blocking_passes, settings.max_block_size,
        settings.max_pairs_per_pass,
    )
    key = sorted_distinct(np.concatenate([cand_r * len(population) + cand_p,
                                          id_r * len(population) + id_p]))
    cand_r, cand_p = key // n, key % n
    codes = compare(reg, population.table, cand_r, cand_p, settings)
    return CandidateSearch(rows, cand_r, cand_p, codes, outcomes)


def _decided_pairs(pairs: ScoredPairs, decided: reviewed.Decisions, reg: Table,
                   population: Population, id_stage: IdStage, parameters: Parameters,
                   settings: Settings) -> ScoredPairs:
    """The pairs the decisions leave, weighed as the engine weighs its own: a confirmed row's
    only pair is its confirmed person; pairs rejected, or a row was decided not in the
    population against, are dropped; a row the ID stage settled on a rejected pair is searched
    now. Rows without a decision keep their pairs and weights as they are."""
    n_reg, n_pop = len(reg), len(population)
    confirmed = decided.confirmed_rows(n_reg)
    keep = ~confirmed[pairs.r] & ~decided.absent_against(pairs.r, pairs.p, n_pop)
    dropped = decided.absent_against(id_stage.r, id_stage.p, n_pop)
    still = _settled(n_reg, id_stage.r[~dropped], id_stage.corroborated[~dropped]) | confirmed
    unsettled = _settled(n_reg, id_stage.r, id_stage.corroborated & dropped) & ~still
    found_r = found_p = np.zeros(0, np.int64)
    if unsettled.any():  # a search reads every blocking pass of the population: only if needed
        search = _search(reg, population, found_r, found_p, np.flatnonzero(unsettled), settings)
        found = ~decided.absent_against(search.r, search.p, n_pop)
        found_r, found_p = search.r[found], search.p[found]
    present = decided.confirmed_p >= 0
    new_r = np.concatenate([found_r, decided.confirmed_r[present]])
    new_p = np.concatenate([found_p, decided.confirmed_p[present]])
    codes = compare(reg, population.table, new_r, new_p, settings)
    # as the engine's own pairs: their evidence, then the prior added in float64
    evidence, contributions = score(replace(parameters, prior_weight=0.0), codes,
                                    population.table, new_p)
    return ScoredPairs(
        np.concatenate([pairs.r[keep], new_r]), np.concatenate([pairs.p[keep], new_p]),
        _concat(_take(pairs.codes, keep), codes),
        np.concatenate([pairs.weight[keep], evidence + parameters.prior_weight]),
        _concat(_take(pairs.contributions, keep), contributions))


def _claimed(decided: reviewed.Decisions, id_stage: IdStage, declared: dict[str, Comparison],
             n_registry: int, n_population: int) -> np.ndarray:
    """Per confirmed decision: another row gives its person's personal ID exactly (not a row
    that rejected the person, nor one whose own confirmed person is someone else)."""
    exact = (declared["national_id"].is_level(id_stage.codes["national_id"], "exact")
             & ~decided.absent_against(id_stage.r, id_stage.p, n_population)
             & ~decided.confirmed_rows(n_registry)[id_stage.r])
    return reviewed.claimed_elsewhere(decided, id_stage.r[exact], id_stage.p[exact],
                                      n_population)


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
            "labels": trace.labels,
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


def resolve(results: pd.DataFrame, settings: Settings | None = None,
            decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Re-apply one person = one registration over concatenated partition results; with the
    decisions the links were made with, a confirmation contested by another registration's
    exact personal ID goes back to review."""
    del settings  # the rule has no tunables today; the parameter keeps the interface stable
    return resolve_duplicates(results, decisions)


def reconcile(registry: pd.DataFrame, population: pd.DataFrame,
              settings: Settings | None = None,
              decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """``resolve(link(...).results)``: the results table for one registry."""
    return resolve(link(registry, population, settings, decisions).results, settings,
                   decisions)
