"""Reviewers' decisions as evidence of a link: confirmed pairs are linked as if by exact personal
ID, rejected pairs never, rows decided "not in the population" stay unmatched; and the checks
that send a decision the data now contradicts back to review."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matching.normalize import clean_ids
from matching.population import Population
from matching.tables import InputError, check_columns, text_array
from popsync.contracts import CONFIRMED, DECISION_COLUMNS, DECISIONS, NOT_IN_POPULATION, REJECTED
from popsync.reference.identifiers import mask


def _none() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass
class Decisions:
    """The decisions on one registry's rows, as (registry row, population row) pairs; a
    population row is -1 where the decided person is not in this population."""

    confirmed_r: np.ndarray = field(default_factory=_none)
    confirmed_p: np.ndarray = field(default_factory=_none)
    rejected_r: np.ndarray = field(default_factory=_none)
    rejected_p: np.ndarray = field(default_factory=_none)
    # rows decided not in the population, and the person each decision was made against (the
    # candidate the reviewer was shown, -1 when none or not in this population)
    absent_r: np.ndarray = field(default_factory=_none)
    absent_p: np.ndarray = field(default_factory=_none)

    @classmethod
    def of(cls, decisions: pd.DataFrame | None, vss_codes: pd.Series,
           population: Population) -> Decisions:
        """Check a decisions table (contracts.DECISION_COLUMNS) and keep those on these
        registry rows; decisions on other rows are another registry's (another band's)."""
        if decisions is None or not len(decisions):
            if decisions is not None:
                check_columns(decisions, DECISION_COLUMNS, "decisions")
            return cls()
        check_columns(decisions, DECISION_COLUMNS, "decisions")
        kind = decisions["decision"].astype("str").to_numpy()
        unknown = ~np.isin(kind, DECISIONS)
        if unknown.any():
            rows = np.flatnonzero(unknown)[:5]
            raise InputError(
                f"decisions: column decision holds {sorted(set(kind[unknown]))[:5]} in row(s) "
                f"{', '.join(map(str, rows))}; expected one of {', '.join(DECISIONS)}")
        ids = clean_ids(text_array(decisions["personal_id"]))
        person_needed = kind != NOT_IN_POPULATION
        present = ~decisions["personal_id"].isna().to_numpy()
        bad = (person_needed | present) & ~ids.twelve_digits
        if bad.any():
            rows = np.flatnonzero(bad)[:5]
            raise InputError(
                f"decisions: personal_id is not a 12-digit number in {bad.sum()} row(s), e.g. "
                f"rows {', '.join(map(str, rows))}: confirmed and rejected decisions name a "
                "person by personal ID")
        row = pd.Index(vss_codes.astype("str")).get_indexer(decisions["vss_code"].astype("str"))
        person = np.where(ids.twelve_digits,
                          population.person_of(np.where(ids.twelve_digits, ids.number, -1)), -1)
        mine = row >= 0
        _check_consistent(decisions[mine], kind[mine], ids.number[mine])
        row, person, kind = row[mine], person[mine], kind[mine]

        def pairs(which: str) -> tuple[np.ndarray, np.ndarray]:
            chosen = kind == which
            return row[chosen].astype(np.int64), person[chosen].astype(np.int64)

        return cls(*pairs(CONFIRMED), *pairs(REJECTED), *pairs(NOT_IN_POPULATION))

    def any(self) -> bool:
        return bool(len(self.confirmed_r) or len(self.rejected_r) or len(self.absent_r))

    def confirmed_rows(self, n_registry: int) -> np.ndarray:
        """Per registry row: it has a confirmed person in this population."""
        mask_ = np.zeros(n_registry, bool)
        mask_[self.confirmed_r[self.confirmed_p >= 0]] = True
        return mask_

    def rejected(self, r: np.ndarray, p: np.ndarray, n_population: int) -> np.ndarray:
        """Per pair (r[i], p[i]): a reviewer rejected it."""
        present = self.rejected_p >= 0
        key = self.rejected_r[present] * max(n_population, 1) + self.rejected_p[present]
        return np.isin(r.astype(np.int64) * max(n_population, 1) + p, key)

    def absent_against(self, r: np.ndarray, p: np.ndarray, n_population: int) -> np.ndarray:
        """Per pair (r[i], p[i]): a reviewer rejected it, or decided its row not in the
        population against this very person."""
        against_r = np.concatenate([self.absent_r, self.rejected_r])
        against_p = np.concatenate([self.absent_p, self.rejected_p])
        present = against_p >= 0
        keys = against_r[present] * max(n_population, 1) + against_p[present]
        return np.isin(r.astype(np.int64) * max(n_population, 1) + p, keys)


def _check_consistent(decisions: pd.DataFrame, kind: np.ndarray, number: np.ndarray) -> None:
    """One standing decision per pair, at most one confirmed person per row, and a row confirmed
    is not also decided not in the population."""
    frame = pd.DataFrame({"vss_code": decisions["vss_code"].astype("str").to_numpy(),
                          "person": number, "kind": kind})
    linking = frame[frame["kind"] != NOT_IN_POPULATION]
    pair = linking["vss_code"][linking.duplicated(["vss_code", "person"], keep=False)]
    confirmed = frame[frame["kind"] == CONFIRMED]
    twice = confirmed["vss_code"][confirmed["vss_code"].duplicated()]
    both = set(confirmed["vss_code"]) & set(frame.loc[frame["kind"] == NOT_IN_POPULATION,
                                                      "vss_code"])
    conflicting = sorted(set(pair) | set(twice) | both)
    if conflicting:
        raise InputError(
            f"decisions contradict each other on {len(conflicting)} registry row(s), e.g. VSS "
            f"code(s) {', '.join(mask(code) for code in conflicting[:5])} (masked): a row takes "
            "one standing decision per person, at most one confirmed person, and is not both "
            "confirmed and not in the population; revoke the older decision")


@dataclass
class Outcome:
    """What the decisions did to each registry row of a link."""

    confirmed: np.ndarray  # linked to the person a reviewer confirmed
    absent: np.ndarray  # kept unmatched: decided not in the population, nothing new since
    # a confirmation not applied: the person is now deceased, or another registration now
    # gives the person's personal ID (the row goes to review instead)
    confirmed_deceased: np.ndarray
    confirmed_claimed: np.ndarray
    # a decision the data moved away from: the confirmed person is not in the population any
    # more, or a row decided not in the population has a plausible candidate it was not decided
    # against (the row goes to review, or stays unmatched when nothing is plausible)
    outdated: np.ndarray

    @classmethod
    def nothing(cls, n_registry: int) -> Outcome:
        return cls(*(np.zeros(n_registry, bool) for _ in range(5)))


def claimed_elsewhere(decided: Decisions, exact_r: np.ndarray, exact_p: np.ndarray,
                      n_population: int) -> np.ndarray:
    """Per confirmed decision: another registry row gives its person's personal ID exactly
    (``exact_r``/``exact_p``: the pairs joined at the ``exact`` ID level)."""
    if not len(decided.confirmed_r):
        return np.zeros(0, bool)
    key = np.unique(exact_r.astype(np.int64) * max(n_population, 1) + exact_p)
    claims = np.bincount(key % max(n_population, 1), minlength=n_population)
    present = decided.confirmed_p >= 0
    person = np.maximum(decided.confirmed_p, 0)
    own = np.isin(decided.confirmed_r * max(n_population, 1) + person, key)
    return present & (claims[person] - own > 0)


def apply(decided: Decisions, decision, r: np.ndarray, p: np.ndarray, claimed: np.ndarray,
          deceased: np.ndarray, n_registry: int) -> Outcome:
    """Apply the decisions to a row-level decision (changed in place). A confirmed row's only
    pair is its confirmed person (``link`` puts it there): it links, with probability 1, unless
    the person is now deceased or claimed by another registration's exact ID (then review). A
    row decided not in the population, whose pairs exclude the persons it was decided against,
    stays unmatched unless a candidate is plausible (then review: the decision is outdated)."""
    outcome = Outcome.nothing(n_registry)
    if not (len(decided.confirmed_r) or len(decided.absent_r)):
        return outcome
    best = decision.best
    shown = decision.linked | decision.review
    person = np.where(best >= 0, p[np.maximum(best, 0)] if len(p) else -1, -1)

    present = decided.confirmed_p >= 0
    rows = decided.confirmed_r[present]
    at_person = person[rows] == decided.confirmed_p[present]  # always so; checked, not assumed
    rows = rows[at_person]
    outcome.confirmed_deceased[rows] = deceased[person[rows]]
    outcome.confirmed_claimed[rows] = claimed[present][at_person]
    contradicted = outcome.confirmed_deceased | outcome.confirmed_claimed
    outcome.confirmed[rows] = ~contradicted[rows]
    # the confirmed person is gone from the population: decide as without the decision, but
    # never link on the engine's own say
    outcome.outdated[decided.confirmed_r[~present]] = True

    absent = np.zeros(n_registry, bool)
    absent[decided.absent_r] = True
    outcome.outdated |= absent & shown
    outcome.absent = absent & ~shown

    decision.linked[:] = (decision.linked & ~outcome.outdated & ~contradicted) | outcome.confirmed
    decision.review[:] = ((decision.review | (shown & outcome.outdated) | contradicted)
                          & ~outcome.confirmed & ~outcome.absent)
    decision.ambiguous[outcome.confirmed | contradicted] = False
    decision.probability[outcome.confirmed] = 1.0
    return outcome


def label_agreement(decided: Decisions, own, r: np.ndarray, p: np.ndarray) -> dict:
    """The engine's own decision (before the reviewers' are applied) on the pairs reviewers
    decided, taken as labels: a confirmed pair the engine links is a true link, one it does not
    link a missed link (and a false link too when it links the row to someone else); a rejected
    pair it links is a false link. Pairs whose person is not in this population are left out.
    Counts, so that the night can add them up over its bands; precision and recall as well."""
    person = np.full(len(own.best), -1, np.int64)
    linked = np.flatnonzero(own.linked)
    person[linked] = p[own.best[linked]] if len(p) else -1
    confirmed = decided.confirmed_p >= 0
    rejected = decided.rejected_p >= 0
    linked_to = person[decided.confirmed_r[confirmed]]
    true_links = int((linked_to == decided.confirmed_p[confirmed]).sum())
    elsewhere = int(((linked_to >= 0) & (linked_to != decided.confirmed_p[confirmed])).sum())
    false_links = int((person[decided.rejected_r[rejected]]
                       == decided.rejected_p[rejected]).sum()) + elsewhere
    counts = {"confirmed_pairs": int(confirmed.sum()), "rejected_pairs": int(rejected.sum()),
              "true_links": true_links, "false_links": false_links,
              "missed_links": int(confirmed.sum()) - true_links}
    return {**counts, **precision_recall(counts)}


def precision_recall(counts: dict) -> dict:
    """Precision and recall of label counts (None where nothing was labelled)."""
    linked = counts["true_links"] + counts["false_links"]
    return {"precision": round(counts["true_links"] / linked, 6) if linked else None,
            "recall": (round(counts["true_links"] / counts["confirmed_pairs"], 6)
                       if counts["confirmed_pairs"] else None)}
