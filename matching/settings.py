"""Every tunable of the matching engine in one frozen dataclass, checked when it is built."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from matching.blocking import PASSES

# Every blocking pass the engine knows, in the order they are declared.
DEFAULT_PASSES = tuple(PASSES)


@dataclass(frozen=True)
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
    ambiguity_gap: float = 5.0
    # An ID-linked person is accepted without candidate search when the non-ID fields add at
    # least this many bits (otherwise "the ID looks wrong" and candidates are searched too).
    id_corroboration_weight: float = 0.0
    # Rounds refining the share of searched rows whose person is in the population (the prior).
    prior_iterations: int = 3
    # Blocking: passes to run, the largest population block a pass may open, and the most
    # pairs one pass may produce (largest blocks are cut first); both cuts are reported.
    blocking_passes: tuple[str, ...] = DEFAULT_PASSES
    max_block_size: int = 300
    max_pairs_per_pass: int = 20_000_000
    # RapidFuzz Jaro-Winkler bands (similarity 0..1), highest first.
    full_name_bands: tuple[float, ...] = (0.94, 0.88)
    given_name_bands: tuple[float, ...] = (0.85,)
    # Parameter estimation: random pairs for u-probabilities, the smallest probability any level
    # gets (so an unseen level never weighs infinitely), and the random generator's seed.
    u_sample_pairs: int = 300_000
    probability_floor: float = 1e-6
    seed: int = 20250701

    @classmethod
    def from_mapping(cls, values: dict) -> Settings:
        """Build from a plain mapping (e.g. the run configuration); ValueError names a bad key."""
        if not isinstance(values, dict):
            raise ValueError(f"matching settings must be a mapping, not {type(values).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown matching setting(s): {', '.join(unknown)}")
        coerced = {name: _coerce(name, value, cls) for name, value in values.items()}
        return cls(**coerced)

    def __post_init__(self) -> None:
        _check(self)


def _coerce(name: str, value, cls):
    default = next(f.default for f in fields(cls) if f.name == name)
    if isinstance(default, tuple):
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise ValueError(f"matching setting {name!r} must be a list")
        return tuple(value)
    if isinstance(default, bool) or isinstance(value, bool):
        raise ValueError(f"matching setting {name!r} must be a number")
    if isinstance(default, int):
        if not isinstance(value, int):
            raise ValueError(f"matching setting {name!r} must be an integer")
        return value
    if value is None:
        return None
    if not isinstance(value, int | float):
        raise ValueError(f"matching setting {name!r} must be a number")
    return float(value)


def _check(settings: Settings) -> None:
    def fail(name: str, why: str) -> None:
        raise ValueError(f"invalid matching setting {name!r}: {why}")

    for name in ("link_probability", "review_probability"):
        value = getattr(settings, name)
        if not isinstance(value, float | int) or not 0.0 < value < 1.0:
            fail(name, "must be a probability strictly between 0 and 1")
    if settings.review_probability > settings.link_probability:
        fail("review_probability", "must not exceed link_probability")
    for name in ("link_weight", "review_weight"):
        value = getattr(settings, name)
        if value is not None and (not isinstance(value, float | int) or not math.isfinite(value)):
            fail(name, "must be a finite number or null")
    if (
        settings.link_weight is not None
        and settings.review_weight is not None
        and settings.review_weight > settings.link_weight
    ):
        fail("review_weight", "must not exceed link_weight")
    if not settings.ambiguity_gap >= 0:
        fail("ambiguity_gap", "must be >= 0")
    unknown = [p for p in settings.blocking_passes if p not in PASSES]
    if unknown or not settings.blocking_passes:
        fail("blocking_passes", f"unknown pass(es) {unknown}; known: {sorted(PASSES)}")
    if not isinstance(settings.prior_iterations, int) or settings.prior_iterations < 1:
        fail("prior_iterations", "must be a positive integer")
    for name in ("max_block_size", "max_pairs_per_pass", "u_sample_pairs"):
        if not isinstance(getattr(settings, name), int) or getattr(settings, name) < 1:
            fail(name, "must be a positive integer")
    for name in ("full_name_bands", "given_name_bands"):
        bands = getattr(settings, name)
        if not all(isinstance(b, float | int) and 0.0 < b < 1.0 for b in bands):
            fail(name, "every band must be a similarity strictly between 0 and 1")
        if list(bands) != sorted(bands, reverse=True) or len(set(bands)) != len(bands):
            fail(name, "bands must be distinct and listed highest first")
    if not 0.0 < settings.probability_floor < 0.01:
        fail("probability_floor", "must be between 0 and 0.01")

