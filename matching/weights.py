"""Fellegi-Sunter match weights whose m- and u-probabilities are learned from the data itself.

u: level frequencies among random (registry, population) pairs. m: level frequencies among pairs
known to be the same person without looking at the field being estimated (pairs joined by
personal ID whose other fields agree; for the ID comparison, pairs whose name, birth date and
gender agree), starting from a prior worth a few hundred pairs. The full name and the given name
are weighed as one joint comparison, since one typo moves both. Agreeing name levels are
adjusted by how common the full name is in the population (term frequency), so
"Nguyễn Văn Anh" counts for little and a rare name for much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.compare import MISSING, Comparison, compare, comparisons
from matching.settings import Settings
from matching.tables import Table

# Pseudo-pairs the m estimates start from, distributed like each comparison's m priors, so a
# small registry (or a rare level) does not get extreme weights.
M_PRIOR_PAIRS = 200.0


@dataclass
class Parameters:
    comparisons: dict[str, Comparison]  # the weighed comparisons, in the order they are summed
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior_weight: float  # log2 odds: this very person (one of the population) vs absent
    tf_full_name: np.ndarray  # per population row: share of people with its folded full name
    # per population row: people sharing its name, full birth date and gender (0: one missing)
    namesakes: np.ndarray | None = None

    def weights(self, comparison: str) -> np.ndarray:
        """log2(m/u) per level; the missing level weighs 0."""
        weight = np.log2(self.m[comparison] / self.u[comparison])
        weight[self.comparisons[comparison].index(MISSING)] = 0.0
        return weight

    def as_dict(self) -> dict:
        return {
            "prior_weight": round(self.prior_weight, 3),
            "comparisons": {
                name: {
                    level: {"m": float(f"{self.m[name][i]:.4g}"),
                            "u": float(f"{self.u[name][i]:.4g}"),
                            "weight": round(float(self.weights(name)[i]), 3)}
                    for i, level in enumerate(comparison.level_names) if level != MISSING
                }
                for name, comparison in self.comparisons.items()
            },
        }


def level_shares(codes: np.ndarray, comparison: Comparison, floor: float,
                 prior: np.ndarray | None = None) -> np.ndarray:
    """Share of each non-missing level among pairs (missing excluded), floored; with a prior,
    the counts are added to M_PRIOR_PAIRS pseudo-pairs distributed like the prior."""
    n_levels, missing = len(comparison.levels), comparison.index(MISSING)
    counts = np.bincount(codes, minlength=n_levels).astype(float)
    counts[missing] = 0
    if prior is not None:
        counts = counts + M_PRIOR_PAIRS * prior
    total = counts.sum()
    shares = counts / total if total else np.full(n_levels, 1.0 / n_levels)
    shares = np.maximum(shares, floor)
    shares[missing] = 1.0
    return shares


def agreeing(declared: dict[str, Comparison], codes: dict[str, np.ndarray],
             fields: tuple[str, ...]) -> np.ndarray:
    """Pairs at an ``agrees`` level of every one of ``fields``."""
    n = len(next(iter(codes.values())))
    mask = np.ones(n, bool)
    for field in fields:
        mask &= declared[field].holds(codes[field], "agrees")
    return mask


def estimate_u(registry: Table, population: Table, settings: Settings,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Level shares among random pairs."""
    n = settings.u_sample_pairs
    r = rng.integers(0, len(registry), n)
    p = rng.integers(0, len(population), n)
    codes = compare(registry, population, r, p, settings)
    declared = comparisons(settings)
    # a random pair that shares an ID is (nearly always) a true match: leave it out of u
    same_id = declared["national_id"].holds(codes["national_id"], "same_id")
    codes = {name: values[~same_id] for name, values in codes.items()}
    floor = min(settings.probability_floor, 0.5 / n)
    return {name: level_shares(codes[name], comparison, floor)
            for name, comparison in declared.items()}


def uniform_u(settings: Settings) -> dict[str, np.ndarray]:
    """u of every level 1 (no random pair to learn from: an empty registry or population)."""
    return {name: np.ones(len(c.levels)) for name, c in comparisons(settings).items()}


def estimate_m(codes: dict[str, np.ndarray], settings: Settings,
               fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Level shares among pairs taken as matches, each field under its ``m_learned_under``."""
    declared = comparisons(settings)
    estimates = {}
    for field in fields:
        comparison = declared[field]
        selected = agreeing(declared, codes, comparison.m_learned_under)
        estimates[field] = level_shares(codes[field][selected], comparison,
                                        settings.probability_floor, comparison.m_prior())
    return estimates


def start_id_m(settings: Settings) -> np.ndarray:
    shares = comparisons(settings)["national_id"].m_prior()
    shares[-1] = 1.0  # missing
    return shares


def score(parameters: Parameters, codes: dict[str, np.ndarray], population: Table,
          p: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Match weight of each pair (prior included) and each comparison's contribution."""
    contributions = {}
    for name, comparison in parameters.comparisons.items():
        contribution = parameters.weights(name)[codes[name]]
        adjusted = comparison.holds(codes[name], "term_frequency")
        m = parameters.m[name][codes[name][adjusted]]
        frequency = np.maximum(parameters.tf_full_name[p[adjusted]],
                               1.0 / max(len(population), 1))
        # log2(m/tf): a value shared by many people is weak evidence; never below u-based
        # weight's sign flip (an agreement never counts against a match)
        contribution[adjusted] = np.maximum(np.log2(m / frequency), 0.0)
        contributions[name] = contribution.astype(np.float32)
    if parameters.namesakes is not None:
        _weigh_namesakes(parameters, codes, contributions, len(population), p)
    total = parameters.prior_weight + sum(contributions.values())
    return total.astype(np.float64), contributions


def _weigh_namesakes(parameters: Parameters, codes: dict[str, np.ndarray],
                     contributions: dict[str, np.ndarray], n: int, p: np.ndarray) -> None:
    """A pair agreeing on name, full birth date and gender: the three together are found by
    chance in k / n random pairs, k the people of the population who share them (counted, not
    the product of three separate frequencies, which misses how rare the combination is and
    grows with the population). The name's contribution takes the difference where that weighs
    more than the separate frequencies do."""
    declared = parameters.comparisons
    name_level = declared["name"].holds(codes["name"], "term_frequency")
    date_equal = declared["birth_date"].holds(codes["birth_date"], "equal")
    gender_equal = declared["gender"].holds(codes["gender"], "equal")
    k = parameters.namesakes[p] if len(p) else np.zeros(0, np.int64)
    rows = np.flatnonzero(name_level & date_equal & gender_equal & (k > 0))
    if not len(rows):
        return
    m = (parameters.m["name"][codes["name"][rows]]
         * parameters.m["birth_date"][codes["birth_date"][rows]]
         * parameters.m["gender"][codes["gender"][rows]])
    together = np.log2(m * n / k[rows])
    others = contributions["birth_date"][rows] + contributions["gender"][rows]
    contributions["name"][rows] = np.maximum(together - others, contributions["name"][rows])
