"""Every tunable of the matching engine in one frozen dataclass, checked when it is built
(pydantic: types strictly, ranges and orders by the validators below)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from matching.blocking import PASSES
from popsync.validation import key_of, requirement

# Every blocking pass the engine knows, in the order they are declared.
DEFAULT_PASSES = tuple(PASSES)


Positive = Annotated[int, Field(ge=1)]


def _listed(value):
    """YAML and JSON give lists: the settings keep tuples (hashable, frozen)."""
    return tuple(value) if isinstance(value, list) else value


Passes = Annotated[tuple[str, ...], BeforeValidator(_listed)]
Bands = Annotated[tuple[float, ...], BeforeValidator(_listed)]


@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid"))
class Settings:
    """Thresholds, caps and bands of the engine. The probability thresholds act on weights
    learned from the data; ``link_weight``/``review_weight``, when set, replace them."""

    # Decision: a best candidate links when its probability (against the row's other
    # candidates and against absence from the population) reaches ``link_probability`` (or its
    # weight reaches ``link_weight`` when that is set), is reviewed from ``review_probability``
    # (``review_weight``), and is ``ambiguous`` when the runner-up is within ``ambiguity_gap``
    # bits of it.
    link_probability: float = 0.95
    review_probability: float = 0.1
    link_weight: float | None = None
    review_weight: float | None = None
    ambiguity_gap: Annotated[float, Field(ge=0)] = 5.0
    # An ID-linked person is accepted without candidate search when the non-ID fields add at
    # least this many bits (otherwise "the ID looks wrong" and candidates are searched too).
    id_corroboration_weight: float = 0.0
    # Rounds refining the share of searched rows whose person is in the population (the prior).
    prior_iterations: Positive = 3
    # Blocking: passes to run, the largest population block a pass may open, and the most
    # pairs one pass may produce (largest blocks are cut first); both cuts are reported.
    blocking_passes: Passes = DEFAULT_PASSES
    max_block_size: Positive = 300
    max_pairs_per_pass: Positive = 20_000_000
    # RapidFuzz Jaro-Winkler bands (similarity 0..1), highest first.
    full_name_bands: Bands = (0.94, 0.88)
    given_name_bands: Bands = (0.85,)
    # Parameter estimation: random pairs for u-probabilities, the smallest probability any level
    # gets (so an unseen level never weighs infinitely), and the random generator's seed.
    u_sample_pairs: Positive = 300_000
    probability_floor: Annotated[float, Field(gt=0, lt=0.01)] = 1e-6
    seed: int = 20250701

    @classmethod
    def from_mapping(cls, values: dict) -> Settings:
        """Build from a plain mapping (e.g. the run configuration); ValueError names a bad key."""
        if not isinstance(values, dict):
            raise ValueError(f"matching settings must be a mapping, not {type(values).__name__}")
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ValueError(describe(exc.errors()[0])) from None

    @field_validator("link_probability", "review_probability")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError("must be a probability strictly between 0 and 1")
        return value

    @field_validator("link_weight", "review_weight")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number or null")
        return value

    @field_validator("blocking_passes")
    @classmethod
    def _known_passes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from matching.blocking import PASSES

        unknown = [p for p in value if p not in PASSES]
        if unknown or not value:
            raise ValueError(f"unknown pass(es) {unknown}; known: {sorted(PASSES)}")
        return value

    @field_validator("full_name_bands", "given_name_bands")
    @classmethod
    def _bands(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0.0 < b < 1.0 for b in value):
            raise ValueError("every band must be a similarity strictly between 0 and 1")
        if list(value) != sorted(value, reverse=True) or len(set(value)) != len(value):
            raise ValueError("bands must be distinct and listed highest first")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        if self.review_probability > self.link_probability:
            raise _invalid("review_probability", "must not exceed link_probability")
        if (self.link_weight is not None and self.review_weight is not None
                and self.review_weight > self.link_weight):
            raise _invalid("review_weight", "must not exceed link_weight")
        return self


def _invalid(name: str, why: str) -> PydanticCustomError:
    return PydanticCustomError("ordered", "{name}: {why}", {"name": name, "why": why})


def describe(error: dict) -> str:
    """One pydantic error about a setting as one line naming the setting."""
    if error["type"] == "ordered":
        return f"invalid matching setting {error['ctx']['name']!r}: {error['ctx']['why']}"
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown matching setting(s): {key_of(error)}"
    return (f"invalid matching setting {key_of(error)!r}: {requirement(error)}, "
            f"not {error['input']!r}")
