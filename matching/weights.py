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

from matching.compare import MISSING, compare, comparison_levels, name_tf_levels
from matching.settings import Settings
from matching.tables import Table

# Levels taken as "this field agrees" when selecting pairs to learn another field's m from.
AGREEING = {
    "full_name": ("exact", "folded", "reordered", "family_given"),
    "birth_date": ("exact", "partial_compatible", "day_month_swapped", "year_off"),
    "gender": ("agree",),
}
# Which agreeing fields a comparison's m is learned under (never the field itself or its kin).
M_CONDITIONS = {
    "name": ("birth_date", "gender"),
    "birth_date": ("full_name", "gender"),
    "gender": ("full_name", "birth_date"),
    "province": ("full_name", "birth_date"),
    "national_id": ("full_name", "birth_date", "gender"),
}
# What true matches look like before any evidence: the m estimates start from these, worth
# M_PRIOR_PAIRS pairs, so a small registry (or a rare level) does not get extreme weights.
M_PRIOR = {
    "full_name": {"exact": 0.85, "folded": 0.05, "reordered": 0.01, "family_given": 0.02,
                  "different": 0.01},
    "given_name": {"exact": 0.9, "folded": 0.04, "one_edit": 0.02, "different": 0.01},
    "birth_date": {"exact": 0.9, "partial_compatible": 0.05, "day_month_swapped": 0.01,
                   "year_off": 0.01, "different": 0.03},
    "gender": {"agree": 0.98, "different": 0.02},
    "national_id": {"exact": 0.9, "old_exact": 0.03, "one_edit": 0.03,
                    "gender_year_consistent": 0.01, "old_different": 0.01, "different": 0.02},
    "province": {"same": 0.7, "different": 0.3},
}
M_PRIOR_BAND = 0.02  # each similarity band of a name
M_PRIOR_PAIRS = 200.0


@dataclass
class Parameters:
    levels: dict[str, tuple[str, ...]]
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior_weight: float  # log2 odds: this very person (one of the population) vs absent
    tf_full_name: np.ndarray  # per population row: share of people with its folded full name
    # per population row: people sharing its name, full birth date and gender (0: one missing)
    namesakes: np.ndarray | None = None

    def weights(self, comparison: str) -> np.ndarray:
        """log2(m/u) per level; the missing level weighs 0."""
        weight = np.log2(self.m[comparison] / self.u[comparison])
        weight[self.levels[comparison].index(MISSING)] = 0.0
        return weight

    def as_dict(self) -> dict:
        return {
            "prior_weight": round(self.prior_weight, 3),
            "comparisons": {
                name: {
                    level: {"m": float(f"{self.m[name][i]:.4g}"),
                            "u": float(f"{self.u[name][i]:.4g}"),
                            "weight": round(float(self.weights(name)[i]), 3)}
                    for i, level in enumerate(levels) if level != MISSING
                }
                for name, levels in self.levels.items()
            },
        }


def m_prior(comparison: str, levels: tuple[str, ...]) -> np.ndarray:
    """The starting m of every level (missing gets 0), normalized to sum 1."""
    if comparison == "name":  # the full-name prior, split over the given-name levels it allows
        start = np.array([0.0 if level == MISSING else _name_prior(*level.split("/"))
                          for level in levels])
        return start / start.sum()
    known = M_PRIOR[comparison]
    start = np.array([0.0 if level == MISSING else known.get(level, M_PRIOR_BAND)
                      for level in levels])
    return start / start.sum()


def _name_prior(full: str, given: str) -> float:
    """Prior m of a joint name level: the full-name level's, shared among the given-name
    levels that usually come with it (a folded full name has an exact or folded given name)."""
    usual = {"exact": ("exact",), "folded": ("exact", "folded"),
             "family_given": ("exact", "folded")}.get(full)
    if usual is None:  # reordered, bands, different: the given name can be anything
        usual = ("exact", "folded", "one_edit", "different")
    share = M_PRIOR["full_name"].get(full, M_PRIOR_BAND)
    return share / len(usual) if given in usual else share * 1e-3


def level_shares(codes: np.ndarray, levels: tuple[str, ...], floor: float,
                 prior: np.ndarray | None = None) -> np.ndarray:
    """Share of each non-missing level among pairs (missing excluded), floored; with a prior,
    the counts are added to M_PRIOR_PAIRS pseudo-pairs distributed like the prior."""
    counts = np.bincount(codes, minlength=len(levels)).astype(float)
    counts[levels.index(MISSING)] = 0
    if prior is not None:
        counts = counts + M_PRIOR_PAIRS * prior
    total = counts.sum()
    shares = counts / total if total else np.full(len(levels), 1.0 / len(levels))
    shares = np.maximum(shares, floor)
    shares[levels.index(MISSING)] = 1.0
    return shares


def agreeing(levels: dict[str, tuple[str, ...]], codes: dict[str, np.ndarray],
             fields: tuple[str, ...]) -> np.ndarray:
    n = len(next(iter(codes.values())))
    mask = np.ones(n, bool)
    for field in fields:
        accepted = [levels[field].index(level) for level in AGREEING[field]]
        mask &= np.isin(codes[field], accepted)
    return mask


def estimate_u(registry: Table, population: Table, settings: Settings,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Level shares among random pairs."""
    n = settings.u_sample_pairs
    r = rng.integers(0, len(registry), n)
    p = rng.integers(0, len(population), n)
    codes = compare(registry, population, r, p, settings)
    levels = comparison_levels(settings)
    # a random pair that shares an ID is (nearly always) a true match: leave it out of u
    same_id = np.isin(codes["national_id"], [levels["national_id"].index(x)
                                             for x in ("exact", "old_exact")])
    codes = {name: values[~same_id] for name, values in codes.items()}
    floor = min(settings.probability_floor, 0.5 / n)
    return {name: level_shares(codes[name], levels[name], floor) for name in levels}


def estimate_m(codes: dict[str, np.ndarray], settings: Settings,
               fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Level shares among pairs taken as matches, each field under its M_CONDITIONS."""
    levels = comparison_levels(settings)
    estimates = {}
    for field in fields:
        selected = agreeing(levels, codes, M_CONDITIONS[field])
        estimates[field] = level_shares(codes[field][selected], levels[field],
                                        settings.probability_floor,
                                        m_prior(field, levels[field]))
    return estimates


def start_id_m(settings: Settings) -> np.ndarray:
    shares = m_prior("national_id", comparison_levels(settings)["national_id"])
    shares[-1] = 1.0  # missing
    return shares


def score(parameters: Parameters, codes: dict[str, np.ndarray], population: Table,
          p: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Match weight of each pair (prior included) and each comparison's contribution."""
    contributions = {}
    for name in parameters.levels:
        contribution = parameters.weights(name)[codes[name]]
        if name == "name":
            adjusted = np.isin(codes[name], name_tf_levels(parameters.levels))
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
    levels = parameters.levels
    name_level = np.isin(codes["name"], name_tf_levels(levels))
    date_exact = codes["birth_date"] == levels["birth_date"].index("exact")
    gender_agrees = codes["gender"] == levels["gender"].index("agree")
    k = parameters.namesakes[p] if len(p) else np.zeros(0, np.int64)
    rows = np.flatnonzero(name_level & date_exact & gender_agrees & (k > 0))
    if not len(rows):
        return
    m = (parameters.m["name"][codes["name"][rows]]
         * parameters.m["birth_date"][codes["birth_date"][rows]]
         * parameters.m["gender"][codes["gender"][rows]])
    together = np.log2(m * n / k[rows])
    others = contributions["birth_date"][rows] + contributions["gender"][rows]
    contributions["name"][rows] = np.maximum(together - others, contributions["name"][rows])
