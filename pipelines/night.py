"""The night's graph, declared once: its steps, what each takes from which step, and which fan
out. The Airflow DAG (``dags/popsync_nightly.py``), ``popsync run`` (``run_night`` below) and the
benchmarks are all built from ``NIGHT``, so they cannot drift apart.

A step is a function of ``pipelines.steps`` (or of the module FUNCTIONS names before a dot):
``function(work_dir, *outputs of its inputs,
piece=...)``. A step that fans out (``over``) runs once per item of a list: a fixed list, or the
list another step returned; a step that takes a fanned-out step's output gets the list of its
tasks' outputs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

SOURCES = ("registry", "population")


@dataclass(frozen=True)
class Step:
    name: str
    inputs: tuple[str, ...] = ()  # steps whose outputs this one takes, in this order
    over: str | tuple[str, ...] | None = None  # fan out: a step's list, or a fixed list
    doc: str = ""

    @property
    def function(self) -> Callable:
        import importlib  # pandas, GX, DuckDB: not when the DAG file is parsed

        module, _, name = FUNCTIONS[self.name].rpartition(".")
        return getattr(importlib.import_module(f"pipelines.{module or 'steps'}"), name)

    @property
    def upstream(self) -> tuple[str, ...]:
        over = (self.over,) if isinstance(self.over, str) else ()
        return (*over, *self.inputs)


FUNCTIONS = {
    "plan_extract": "plan_extract",
    "extract": "extract_source",
    "check_keys": "check_keys",
    "validate_chunk": "validate_chunk",
    "plan_bands": "plan_bands",
    "gate_inputs": "gate_inputs",
    "prepare_population": "prepare_population",
    "match": "match_cohort",
    "residents": "coverage.copy_residents",
    "split_results": "split_results",
    "resolve": "resolve_partition",
    "count_groups": "breakdowns.count_groups",
    "breakdowns": "breakdowns.merge_groups",
    "coverage": "coverage.count_coverage",
    "check_results": "check_results",
    "corrections": "corrections.write_corrections",
    "gather_lists": "gather_lists",
    "stage_lists": "stage_lists",
    "worklist": "worklist.load_worklist",
    "gather_employers": "employers.gather_employers",
    "stage_employers": "employers.stage_employers",
    "stage": "stage_publication",
    "publish": "publish_run",
}

NIGHT: tuple[Step, ...] = (
    Step("plan_extract",
         doc="Cut each source into pieces extracted apart (a Parquet file by row groups)."),
    Step("extract", over="plan_extract",
         doc="Stream one piece of a source in chunks, mapped to canonical columns."),
    Step("check_keys", ("extract",),
         doc="Unique keys and the volume against the previous night (DuckDB): a failure stops "
             "the night."),
    Step("validate_chunk", over="check_keys",
         doc="Great Expectations row checks on one chunk; bad rows go to quarantine."),
    Step("plan_bands", ("extract",),
         doc="Cut the registry into birth-year bands, grouped into cohorts that share a "
             "population slice (DuckDB)."),
    Step("gate_inputs", ("validate_chunk",),
         doc="The chunks' outcomes as one: stop the night, or write the quarantine."),
    Step("prepare_population", ("gate_inputs", "plan_bands"),
         doc="Sort the linkable persons by birth year; per band, the persons it quotes by ID "
             "from other years (DuckDB)."),
    Step("match", ("prepare_population",), over="plan_bands",
         doc="Link the bands of one cohort to their population slice, normalized once."),
    Step("residents", ("gate_inputs",),
         doc="The living residents out of the population, by province, before it goes "
             "(DuckDB)."),
    Step("split_results", ("match", "residents"),
         doc="Repartition the bands' results by person (DuckDB)."),
    Step("resolve", over="split_results",
         doc="One person, one registration within a partition; its counts and checks."),
    Step("count_groups", over="resolve",
         doc="One partition's status counts by age band and gender."),
    Step("breakdowns", ("count_groups",),
         doc="The partitions' counts by age band and gender added up, with their rates."),
    Step("check_results", ("resolve",),
         doc="Metrics from the counts; result checks across partitions: a failure stops "
             "publication."),
    Step("corrections", ("resolve",),
         doc="The corrections feed: fixes of certain links the core system applies without a "
             "clerk (DuckDB, streamed)."),
    Step("gather_lists", ("resolve",),
         doc="Rows to fix with their registry fields, per province group (DuckDB), dealt "
             "into batches of about chunk_rows rows."),
    Step("stage_lists", over="gather_lists",
         doc="One batch of province groups' Excel and CSV lists into the staging folder."),
    Step("gather_employers", ("resolve", "corrections", "gather_lists"),
         doc="Every row with its registry fields, its person's other VSS codes and whether the "
             "feed fixes it, per office (DuckDB), dealt into batches."),
    Step("stage_employers", over="gather_employers",
         doc="One batch of provinces' employer workbooks (Mẫu 02, Mẫu 01, metadata), a zip "
             "per province, into the staging folder."),
    Step("stage", ("stage_lists", "resolve", "corrections", "stage_employers"),
         doc="Results, quarantine, rankings and manifest into the staging folder."),
    Step("coverage", ("residents", "resolve", "gather_lists"),
         doc="Residents linked to a registration per province and line; per province the "
             "residents without health insurance, listed (DuckDB)."),
    Step("worklist", ("resolve",),
         doc="The rows to fix into the database for the clerks' work list, unseen until "
             "publish (DuckDB, streamed in batches)."),
    Step("publish", ("check_results", "stage", "breakdowns", "coverage", "worklist"),
         doc="Swap the staged publication in and commit its rows to the database."),
)
STEPS = {s.name: s for s in NIGHT}


def levels() -> list[list[Step]]:
    """The steps in waves: each step in the first wave after all its upstream steps. Steps of
    one wave are independent of each other and run side by side."""
    depth: dict[str, int] = {}
    for s in NIGHT:  # declared in an order where upstream steps come first
        depth[s.name] = 1 + max((depth[u] for u in s.upstream), default=-1)
    waves: list[list[Step]] = [[] for _ in range(max(depth.values()) + 1)]
    for s in NIGHT:
        waves[depth[s.name]].append(s)
    return waves


def _call(call: tuple) -> object:
    function, args, kwargs = call
    return function(*args, **kwargs)


def run_night(config, run_date: str, until: str | None = None, quiet: bool = False) -> str:
    """All steps for one run date on this machine, wave by wave: a wave's steps and their
    fanned-out tasks run at once on up to ``config.workers`` forked processes. ``until``: stop
    after that step (benchmarks). Returns the work folder."""
    from pipelines import steps
    from popsync import parallel

    work_dir = steps.start_run(config, run_date)
    say = (lambda *a, **k: None) if quiet else (
        lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True))
    say(f"popsync run {run_date}: work folder {work_dir}")
    outputs: dict[str, object] = {}
    for wave in levels():
        calls, owners = [], []
        for s in wave:
            args = (work_dir, *(outputs[i] for i in s.inputs))
            pieces = outputs[s.over] if isinstance(s.over, str) else s.over
            if pieces is None:
                calls.append((s.function, args, {}))
                owners.append((s.name, None))
            else:
                for piece in pieces:
                    calls.append((s.function, args, {"piece": piece}))
                    owners.append((s.name, piece))
        label = " | ".join(
            s.name if s.over is None else f"{s.name} x{sum(o == s.name for o, _ in owners)}"
            for s in wave)
        say(f"  {label:<40}", end="")
        started = time.perf_counter()
        results = parallel.map_forked(_call, calls, config.workers)
        say(f"done in {time.perf_counter() - started:6.1f} s")
        for s in wave:
            mine = [r for (name, _), r in zip(owners, results, strict=True) if name == s.name]
            outputs[s.name] = mine if s.over is not None else mine[0]
        if until is not None and any(s.name == until for s in wave):
            break
    return work_dir
