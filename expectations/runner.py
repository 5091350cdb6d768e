"""Run one Great Expectations suite on a pandas frame and sort its findings into hard failures
(stop the night) and row-level failures (quarantine the rows, carry on).

Each expectation carries GX's own ``severity`` (``critical``: a hard failure; ``warning``: a row
failure) and ``meta = {"reason": <quarantine reason>}``; the suites in this package are lists of
such expectations, made by ``hard`` and ``row`` below and kept as code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from expectations import quiet_great_expectations
from popsync.reference.identifiers import mask

HARD = "hard"
ROW = "row"
# GX's FailureSeverity values for them (a str enum: compared as text)
GX_SEVERITY = {HARD: "critical", ROW: "warning"}


def hard(expectation_cls, reason: str, **kwargs):
    """An expectation whose failure stops the night."""
    return expectation_cls(severity=GX_SEVERITY[HARD], meta={"reason": reason}, **kwargs)


def row(expectation_cls, reason: str, **kwargs):
    """An expectation whose unexpected rows are quarantined, the night going on."""
    return expectation_cls(severity=GX_SEVERITY[ROW], meta={"reason": reason}, **kwargs)
SAMPLE_SIZE = 5
# Samples of these columns are masked in reports (personal data never appears in full).
PERSONAL_COLUMNS = frozenset(
    {
        "vss_code",
        "full_name",
        "birth_date",
        "national_id",
        "personal_id",
        "old_id_number",
        "hi_card_number",
        "address",
        "death_date",
    }
)


@dataclass
class Finding:
    """One expectation's outcome, small enough for a JSON report (samples are masked)."""

    expectation: str
    column: str | None
    severity: str
    reason: str
    success: bool
    unexpected_count: int
    unexpected_percent: float | None
    observed: Any
    expected: str  # the expectation's bounds, e.g. "min_value=700", for messages and the report
    samples: list[str]
    rows: np.ndarray = field(repr=False)  # frame positions of the unexpected rows (row checks)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rows"}


@dataclass
class SuiteOutcome:
    suite: str
    rows: int
    findings: list[Finding]
    seconds: float

    @property
    def hard_failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.success and f.severity == HARD]

    @property
    def row_failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.success and f.severity == ROW]

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "success": not self.hard_failures,
            "findings": [f.as_dict() for f in self.findings],
        }


def _context():
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch below HASH_THRESHOLD bytes (hash_pandas_object + md5)
    # for a batch marker popsync never reads: 40 % of validation time at a million rows. GX has
    # no switch for it; its threshold is the one knob (tests/pipelines/test_expectations.py
    # fails if a GX upgrade drops it).
    pandas_execution_engine.HASH_THRESHOLD = 0
    quiet_great_expectations()  # now that GX's modules are imported
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return gx, context


def _columns_of(expectation) -> tuple[str, ...] | None:
    """The columns an expectation reads; None for ``ExpectColumnToExist`` (reads only names)."""
    if type(expectation).__name__ == "ExpectColumnToExist":
        return None
    kwargs = expectation.configuration.kwargs
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return ()  # table level: row counts


def run_suite(
    name: str, frame: pd.DataFrame, expectations: list, complete: bool = True, workers: int = 1
) -> SuiteOutcome:
    """Validate ``frame`` (positional RangeIndex) against ``expectations``.

    Each group of expectations on the same columns runs on a frame of only those columns: GX
    filters the whole batch frame for every column expectation, so a wide frame of a million
    rows costs seconds per expectation while a narrow one costs a fraction.
    ``complete``: return every unexpected row (needed to quarantine rows); otherwise GX returns
    counts and a few samples, much faster when a check fails on millions of rows.
    ``workers``: the groups are shared among that many forked processes.
    """
    import time

    from popsync.parallel import map_forked

    started = time.perf_counter()
    frame = frame.reset_index(drop=True)
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for position, expectation in enumerate(expectations):
        groups.setdefault(_columns_of(expectation), []).append(position)
    # Bigger groups first, dealt round-robin, so the workers finish at about the same time.
    ordered = sorted(groups.items(), key=lambda item: -len(item[0] or ()) * len(item[1]))
    shares = [ordered[i::workers] for i in range(max(1, min(workers, len(ordered))))]
    _forked.update(name=name, frame=frame, expectations=expectations, complete=complete)
    try:
        found = map_forked(_run_groups, shares, len(shares))
    finally:
        _forked.clear()
    findings = {position: finding for share in found for position, finding in share.items()}
    return SuiteOutcome(
        name, len(frame), [findings[p] for p in range(len(expectations))],
        time.perf_counter() - started,
    )


# The suite's frame and expectations, set before the workers fork so they share them uncopied.
_forked: dict = {}


def _run_groups(share: list[tuple[tuple[str, ...] | None, list[int]]]) -> dict[int, Finding]:
    """Run some groups of the suite in ``_forked``; their findings by expectation position."""
    name, frame, complete = _forked["name"], _forked["frame"], _forked["complete"]
    gx, context = _context()
    source = context.data_sources.add_pandas(name)
    findings = {}
    for columns, positions in share:
        if columns is None:
            part = frame.iloc[:0]  # names only
        else:
            present = [c for c in columns if c in frame.columns]
            part = frame[present or list(frame.columns[:1])]
        label = f"{name}-{positions[0]}"
        group = [_forked["expectations"][p] for p in positions]
        batch = source.add_dataframe_asset(label).add_batch_definition_whole_dataframe(label)
        suite = context.suites.add(gx.ExpectationSuite(name=label, expectations=group))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=label, data=batch, suite=suite)
        )
        outcome = definition.run(
            batch_parameters={"dataframe": part},
            result_format={"result_format": "COMPLETE" if complete else "SUMMARY"},
        )
        by_id = {result.expectation_config.id: result for result in outcome.results}
        for position, expectation in zip(positions, group, strict=True):
            findings[position] = _finding(by_id[expectation.id])
    return findings


def _finding(result) -> Finding:
    config = result.expectation_config
    meta = config.meta or {}
    details = result.result or {}
    column = config.kwargs.get("column")
    unexpected = details.get("unexpected_list") or details.get("partial_unexpected_list") or []
    if result.exception_info and result.exception_info.get("raised_exception"):
        # An expectation that could not run is a hard failure whatever its severity.
        message = result.exception_info.get("exception_message", "expectation raised")
        return Finding(
            config.type,
            column,
            HARD,
            meta.get("reason", config.type),
            False,
            0,
            None,
            message,
            _bounds(config.kwargs),
            [],
            np.array([], dtype=np.int64),
        )
    return Finding(
        expectation=config.type,
        column=column,
        severity=ROW if config.severity == GX_SEVERITY[ROW] else HARD,
        reason=meta.get("reason", config.type),
        success=bool(result.success),
        unexpected_count=int(details.get("unexpected_count") or 0),
        unexpected_percent=details.get("unexpected_percent"),
        observed=_plain(details.get("observed_value")),
        expected=_bounds(config.kwargs),
        samples=[_sample(v, column) for v in unexpected[:SAMPLE_SIZE]],
        rows=np.asarray(details.get("unexpected_index_list") or [], dtype=np.int64),
    )


def _bounds(kwargs: dict) -> str:
    keys = ("min_value", "max_value", "value")
    return ", ".join(f"{k}={kwargs[k]}" for k in keys if kwargs.get(k) is not None)


def _sample(value: Any, column: str | None) -> str:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return "<missing>"
    return mask(str(value)) if column in PERSONAL_COLUMNS else str(value)[:40]


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)) and len(value) > 20:
        return f"{len(value)} values"
    return value
